"""Token rows of preference pairs and how they are batched and packed for a reward model.

A pair packs into one row: the prompt once, then the chosen tail, then the rejected tail, which a
4-D attention mask hides from the chosen tail and whose positions restart after the prompt, so
each reward is exactly that of its own plain sequence. Rows of similar length share a batch.
"""

from __future__ import annotations

import random

import torch

PAD_TO_MULTIPLE = 32
"""Batch widths are rounded up to this: oneDNN (PyTorch's CPU kernels) keeps compiled kernels per
tensor shape, and with a new width every batch its cache grew a LoRA run on HH past 15 GB; 32
bounds the shapes (measured: 6.2 GB flat instead of 8.2 GB and rising after 25 steps) and costs
a few percent of padding, which the cached kernels more than win back."""


def encode_pair_text(tokenizer, prompts: list[str], responses: list[str], max_length: int,
                     overlong: str = "truncate") -> list[tuple[list[int], bool] | None]:
    """Token ids of prompt + response for each row, with a 'was truncated' flag.

    None for an overlong row when ``overlong == 'skip'``. Without truncation the ids are exactly
    ``tokenizer(prompt + response, add_special_tokens=False).input_ids``.
    """
    if not prompts:
        return []
    texts = [p + r for p, r in zip(prompts, responses)]
    fast = getattr(tokenizer, "is_fast", False)
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=fast)
    out = []
    budget = max_length
    for i, ids in enumerate(enc["input_ids"]):
        ids = list(ids) or [tokenizer.eos_token_id]  # an empty text still needs one token
        if len(ids) <= budget:
            out.append((ids, False))
            continue
        if overlong == "skip":
            out.append(None)
            continue
        if fast:  # tokens that start inside the prompt belong to the prompt
            plen = len(prompts[i])
            split = sum(1 for start, _ in enc["offset_mapping"][i] if start < plen)
        else:
            split = len(tokenizer(prompts[i], add_special_tokens=False)["input_ids"])
        prompt_ids, response_ids = ids[:split], ids[split:]
        # The response keeps at least half the budget; the prompt keeps its end.
        keep_response = min(len(response_ids), max(budget - len(prompt_ids), budget // 2))
        keep_prompt = budget - keep_response
        kept = prompt_ids[len(prompt_ids) - keep_prompt:] if keep_prompt else []
        kept = kept + response_ids[:keep_response]
        out.append((kept, True))
    return out


def encode_pairs(tokenizer, pairs, max_length: int, overlong: str, distill_weight: float = 0.0):
    """(chosen_ids, rejected_ids, target, margin, loss_target, prompt) per kept pair, and the
    truncated/skipped counts. target is the label (metrics count accuracy on it); loss_target
    mixes in the pair's teacher probability, if it has one, with weight ``distill_weight``;
    prompt groups the probe's folds."""
    prompts = [p.prompt.text for p in pairs]
    chosen = encode_pair_text(tokenizer, prompts, [p.chosen.text for p in pairs], max_length, overlong)
    rejected = encode_pair_text(tokenizer, prompts, [p.rejected.text for p in pairs], max_length, overlong)
    rows, truncated, skipped = [], 0, 0
    for pair, c, r in zip(pairs, chosen, rejected):
        if c is None or r is None:
            skipped += 1
            continue
        truncated += int(c[1] or r[1])
        target = float(getattr(pair, "target", 1.0))
        teacher = getattr(pair, "teacher", None)
        loss_target = target if teacher is None else (1 - distill_weight) * target + distill_weight * teacher
        rows.append((c[0], r[0], target, float(getattr(pair, "margin", 0.0)), loss_target, pair.prompt.text))
    return rows, truncated, skipped


def encode_rated(tokenizer, items, max_length: int, overlong: str, scale: tuple[float, float]):
    """Rows for the regression objective, one per rated response: (ids, ids, z, 0, z, prompt), z the
    standardised rating. A row whose chosen and rejected are the same sequence packs to that one
    sequence, so the pair machinery scores it once."""
    mean, std = scale
    encoded = encode_pair_text(tokenizer, [it.prompt.text for it in items], [it.response.text for it in items],
                               max_length, overlong)
    rows, truncated, skipped = [], 0, 0
    for item, enc in zip(items, encoded):
        if enc is None:
            skipped += 1
            continue
        truncated += int(enc[1])
        z = (item.rating - mean) / std
        rows.append((enc[0], enc[0], z, 0.0, z, item.prompt.text))
    return rows, truncated, skipped


def shift_targets(rows, offset: float):
    """Regression rows with targets moved by ``offset`` (the probe's constant, see fit_probe_head)."""
    return [(a, b, t + offset, m, lt + offset, g) for a, b, t, m, lt, g in rows] if offset else rows


def shared_length(chosen: list[int], rejected: list[int]) -> int:
    """How many leading token ids chosen and rejected share (their prompt, as the tokens tell)."""
    return next((i for i, (a, b) in enumerate(zip(chosen, rejected)) if a != b), min(len(chosen), len(rejected)))


def _padded_width(longest: int) -> int:
    return -(-longest // PAD_TO_MULTIPLE) * PAD_TO_MULTIPLE


def pad_rows(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = _padded_width(max(len(s) for s in seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids.to(device), mask.to(device)


def last_scored(ids: list[int], pad_id: int) -> int:
    """Where Hugging Face's sequence classifier reads the reward: the last token that is not pad."""
    for i in range(len(ids) - 1, -1, -1):
        if ids[i] != pad_id:
            return i
    return 0


def pack_pairs(batch, pad_id: int, device, float_mask: bool):
    """One row per pair: shared prefix + chosen tail + rejected tail, so the prompt runs once.

    The rejected tail sees the prefix but not the chosen tail (a 4-D mask) and its positions
    restart where the prefix ends, so each reward equals the one from its own plain sequence.
    Returns input_ids, 4-D mask, position_ids, and the packed index of each chosen/rejected reward.
    """
    rows, positions, at_chosen, at_rejected, shared = [], [], [], [], []
    for chosen, rejected, *_ in batch:
        common = shared_length(chosen, rejected)
        rows.append(chosen + rejected[common:])
        positions.append(list(range(len(chosen))) + list(range(common, len(rejected))))
        at_chosen.append(last_scored(chosen, pad_id))
        last = last_scored(rejected, pad_id)
        at_rejected.append(last if last < common else len(chosen) + last - common)
        shared.append((common, len(chosen), len(rows[-1])))
    width = _padded_width(max(len(r) for r in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    allow = torch.tril(torch.ones(width, width, dtype=torch.bool)).repeat(len(rows), 1, 1)
    for i, (row, (common, end_chosen, end)) in enumerate(zip(rows, shared)):
        ids[i, :end] = torch.tensor(row)
        pos[i, :end] = torch.tensor(positions[i])
        allow[i, end_chosen:end, common:end_chosen] = False  # rejected never sees chosen
        allow[i, end:, :] = False
        allow[i, end:, end:] = torch.eye(width - end, dtype=torch.bool)  # padding sees itself: no NaN
    mask = allow[:, None]
    if float_mask:  # eager attention adds the mask to the scores
        mask = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    return (ids.to(device), mask.to(device), pos.to(device),
            torch.tensor(at_chosen, device=device), torch.tensor(at_rejected, device=device))


def epoch_batches(rows, batch_size: int, seed: int, epoch: int, length_grouped: bool,
                   packed: bool = False) -> list[list[int]]:
    """Row indices per batch for one epoch; a pure function of (seed, epoch) so resume replays it."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(rows)))
    rng.shuffle(order)
    if length_grouped:
        # As HF's LengthGroupedSampler: sort within mega-batches, keep the batch order random.
        mega = batch_size * 50
        length = [len(r[0]) + len(r[1]) if packed else max(len(r[0]), len(r[1])) for r in rows]
        order = [i for k in range(0, len(order), mega)
                 for i in sorted(order[k:k + mega], key=lambda j: -length[j])]
    batches = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    if length_grouped:
        rng.shuffle(batches)
    return batches
