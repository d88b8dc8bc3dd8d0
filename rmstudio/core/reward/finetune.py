"""Fine-tune a reward model (LoRA or full) on preference pairs, with our own training loop.

Why not TRL's RewardTrainer: it runs chosen and rejected as two rows padded to the longest of the
batch, so the prompt they share (about 3/4 of HH tokens) is computed twice; it turns on gradient
checkpointing by default (a second forward pass per step) and orders batches at random, so short
pairs pay for long ones. This loop packs each pair into one row (prompt once, then the chosen
tail, then the rejected tail, which a 4-D attention mask hides from the chosen tail and whose
positions restart after the prompt: the rewards are exactly those of the two plain sequences),
groups rows of similar length into a batch and never recomputes activations. It logs TRL's
metric names (loss, accuracy, margin, mean_reward, num_tokens). benchmarks/reward_speed.py
measures both.

Scoring format (training, score_texts and the exported model agree on it):
    input_ids = tokenizer(prompt + response, add_special_tokens=False).input_ids
and the reward is the single logit of AutoModelForSequenceClassification, which Hugging Face
reads at the last token that is not the pad token. That is exactly how TRL's GRPOTrainer calls a
reward model (plain prompt + completion text, no special tokens), so an exported model scores
the same there. No EOS is appended: with pad == eos (SmolLM2 and many others) the classifier
would skip it anyway. An overlong pair keeps the END of the prompt and the START of the response.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import contextmanager
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rmstudio.core.errors import RmstudioError
from rmstudio.core.models import ModelError, ModelSource, ensure_embedded_cache, pick_device
from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.reward.finetune_config import DEFAULT_LR, HEAD_INITS, METHODS, OVERLONG, FinetuneConfig  # noqa: F401
from rmstudio.core.reward.losses import bradley_terry_loss, pair_metrics

KEEP_CHECKPOINTS = 2
PAD_TO_MULTIPLE = 32
"""Batch widths are rounded up to this: oneDNN (PyTorch's CPU kernels) keeps compiled kernels per
tensor shape, and with a new width every batch its cache grew a LoRA run on HH past 15 GB; 32
bounds the shapes (measured: 6.2 GB flat instead of 8.2 GB and rising after 25 steps) and costs
a few percent of padding, which the cached kernels more than win back."""
_STATS_KEY = "rmstudio"


class FinetuneError(RmstudioError):
    """A fine-tuning run that cannot start, or failed on the way (out of memory, bad data)."""


# ---------------------------------------------------------------- tokenising

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


def _encode_pairs(tokenizer, pairs, max_length: int, overlong: str, distill_weight: float = 0.0):
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


def _encode_rated(tokenizer, items, max_length: int, overlong: str, scale: tuple[float, float]):
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


def _shifted(rows, offset: float):
    """Regression rows with targets moved by ``offset`` (the probe's constant, see _fit_probe_head)."""
    return [(a, b, t + offset, m, lt + offset, g) for a, b, t, m, lt, g in rows] if offset else rows


def _loss_and_metrics(rc, rr, target, margin, loss_target, center: float, regression: bool):
    """The objective's loss and the metrics logged for it (TRL's names for pairs)."""
    from .instant import regression_metrics

    if regression:
        loss = torch.nn.functional.mse_loss(rc.float(), loss_target.float())
        return loss, {**regression_metrics(rc, target), "loss": loss.item()}
    loss = bradley_terry_loss(rc, rr, loss_target, margin, center)
    return loss, {"loss": loss.item(), **pair_metrics(rc, rr, target)}


def _shared_length(chosen: list[int], rejected: list[int]) -> int:
    """How many leading token ids chosen and rejected share (their prompt, as the tokens tell)."""
    return next((i for i, (a, b) in enumerate(zip(chosen, rejected)) if a != b), min(len(chosen), len(rejected)))


def _padded_width(longest: int) -> int:
    return -(-longest // PAD_TO_MULTIPLE) * PAD_TO_MULTIPLE


def _pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = _padded_width(max(len(s) for s in seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids.to(device), mask.to(device)


def _last_scored(ids: list[int], pad_id: int) -> int:
    """Where Hugging Face's sequence classifier reads the reward: the last token that is not pad."""
    for i in range(len(ids) - 1, -1, -1):
        if ids[i] != pad_id:
            return i
    return 0


def _pack(batch, pad_id: int, device, float_mask: bool):
    """One row per pair: shared prefix + chosen tail + rejected tail, so the prompt runs once.

    The rejected tail sees the prefix but not the chosen tail (a 4-D mask) and its positions
    restart where the prefix ends, so each reward equals the one from its own plain sequence.
    Returns input_ids, 4-D mask, position_ids, and the packed index of each chosen/rejected reward.
    """
    rows, positions, at_chosen, at_rejected, shared = [], [], [], [], []
    for chosen, rejected, *_ in batch:
        common = _shared_length(chosen, rejected)
        rows.append(chosen + rejected[common:])
        positions.append(list(range(len(chosen))) + list(range(common, len(rejected))))
        at_chosen.append(_last_scored(chosen, pad_id))
        last = _last_scored(rejected, pad_id)
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


def _head_io(model, bf16: bool, **inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(score head input, per-token rewards) of one forward pass, read by a hook on the head."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    device = next(model.parameters()).device
    captured = {}
    hook = getattr(inner, _head_name(inner)).register_forward_hook(
        lambda module, args, output: captured.update(hidden=args[0], scores=output))
    try:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            model(**inputs, use_cache=False)
    finally:
        hook.remove()
    return captured["hidden"], captured["scores"][..., 0].float()


def _pair_outputs(model, batch, pad_id: int, bf16: bool, pack: bool):
    """(r_chosen, r_rejected, h_chosen, h_rejected): rewards and the states the head read them from."""
    device = next(model.parameters()).device
    if pack:  # the prompt computed once per pair
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        impl = getattr(inner.config, "_attn_implementation", "sdpa")
        ids, mask, pos, at_c, at_r = _pack(batch, pad_id, device, float_mask=impl == "eager")
        hidden, scores = _head_io(model, bf16, input_ids=ids, attention_mask=mask, position_ids=pos)
        rows = torch.arange(len(batch), device=device)
        return scores[rows, at_c], scores[rows, at_r], hidden[rows, at_c], hidden[rows, at_r]
    seqs = [b[0] for b in batch] + [b[1] for b in batch]
    ids, mask = _pad(seqs, pad_id, device)
    hidden, scores = _head_io(model, bf16, input_ids=ids, attention_mask=mask)
    rows = torch.arange(len(seqs), device=device)
    at = torch.tensor([_last_scored(s, pad_id) for s in seqs], device=device)
    r, h, n = scores[rows, at], hidden[rows, at], len(batch)
    return r[:n], r[n:], h[:n], h[n:]


def _pair_rewards(model, batch, pad_id: int, bf16: bool, pack: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return _pair_outputs(model, batch, pad_id, bf16, pack)[:2]


def _can_pack(model) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(inner.config, "_attn_implementation", "sdpa") in ("sdpa", "eager")


@torch.no_grad()
def _packing_agrees(model, rows, pad_id: int) -> bool:
    """Packed rewards equal plain ones on a few real pairs (an architecture that ignores custom
    4-D masks or position ids would differ); one small forward, in float32."""
    was_training = model.training
    model.eval()
    try:
        packed = _pair_rewards(model, rows, pad_id, False, pack=True)
        plain = _pair_rewards(model, rows, pad_id, False, pack=False)
        return all(torch.allclose(a, b, atol=1e-3, rtol=1e-3) for a, b in zip(packed, plain))
    except Exception:  # noqa: BLE001 - any failure means: do not pack
        return False
    finally:
        model.train(was_training)


def _epoch_batches(rows, batch_size: int, seed: int, epoch: int, length_grouped: bool,
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


# ---------------------------------------------------------------- model

def resolve_bf16(setting: bool | None, device: str) -> bool:
    """bf16 autocast where it is fast: CUDA with bf16 support, CPUs with AMX or AVX512-BF16."""
    if setting is not None:
        return bool(setting)
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text(errors="ignore")
        except OSError:
            return False
        return any(f in flags.split() for f in ("amx_bf16", "avx512_bf16"))
    return False


def _model_folder(base: str) -> str:
    source = ModelSource.parse(base)
    if source.kind == "embedded":
        return str(ensure_embedded_cache())
    if source.kind == "gguf":
        raise ModelError("fine-tuning needs a Hugging Face model directory or 'embedded', not a GGUF file")
    return source.location


def load_reward_model(base: str, seed: int = 0):
    """AutoModelForSequenceClassification(num_labels=1) + tokenizer (right padding, pad = eos if missing)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = _model_folder(base)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        torch.manual_seed(seed)  # the new score head is initialised from this
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, dtype=torch.float32)
    except Exception as exc:
        raise ModelError(f"could not load {base!r} as a reward model: {exc}") from exc
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(f"the tokenizer of {base!r} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        tokenizer.eos_token = tokenizer.pad_token
    tokenizer.padding_side = "right"
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _head_name(model) -> str:
    for name in ("score", "classifier", "classification_head", "v_head"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return name
    raise ModelError(f"cannot find the score head of {type(model).__name__}")


def _wrap_lora(model, config: FinetuneConfig):
    from peft import LoraConfig, TaskType, get_peft_model

    head = _head_name(model)
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=config.lora_target_modules,
                      exclude_modules=[head], modules_to_save=[head])
    return get_peft_model(model, lora)


def _rewards(model, ids, mask, bf16: bool) -> torch.Tensor:
    with torch.autocast(device_type=ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(input_ids=ids, attention_mask=mask, use_cache=False)
    return out.logits[:, 0].float()


@torch.no_grad()
def score_texts(model, tokenizer, prompts: list[str], responses: list[str], max_length: int,
                batch_size: int = 16) -> np.ndarray:
    """Rewards for prompt + response, in float32, formatted as in training (see module docstring)."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    if not prompts:
        return np.zeros(0, dtype=np.float32)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    encoded = [e[0] for e in encode_pair_text(tokenizer, list(prompts), list(responses), max_length)]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    scores = np.zeros(len(encoded), dtype=np.float32)
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        ids, mask = _pad([encoded[i] for i in idx], tokenizer.pad_token_id, device)
        scores[idx] = _rewards(model, ids, mask, False).cpu().numpy()
    model.train(was_training)
    return scores


@torch.no_grad()
def _evaluate(model, rows, pad_id: int, batch_size: int, bf16: bool, center: float,
              pack: bool = True, regression: bool = False) -> dict[str, float]:
    if not rows:
        return {}
    model.eval()
    pack = pack and _can_pack(model)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
    rc, rr, tg, mg = [], [], [], []
    for k in range(0, len(order), batch_size):
        batch = [rows[i] for i in order[k:k + batch_size]]
        chosen, rejected = _pair_rewards(model, batch, pad_id, bf16, pack)
        rc.append(chosen)
        rr.append(rejected)
        tg += [b[2] for b in batch]
        mg += [b[3] for b in batch]
    model.train()
    rc, rr = torch.cat(rc), torch.cat(rr)
    target = torch.tensor(tg, device=rc.device)
    _, metrics = _loss_and_metrics(rc, rr, target, torch.tensor(mg, device=rc.device), target, center, regression)
    return metrics


@torch.no_grad()
def _probe_states(model, rows, pad_id: int, bf16: bool, pack: bool, batch_size: int, sink: ProgressSink,
                  on_batch=None):
    """The frozen model's last-token states (the score head's inputs) of each pair, float32 numpy;
    None when the sink asks to stop."""
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
    h_c = h_r = None
    for k in range(0, len(order), batch_size):
        if sink.should_stop():
            model.train()
            return None
        idx = order[k:k + batch_size]
        _, _, hc, hr = _pair_outputs(model, [rows[i] for i in idx], pad_id, bf16, pack)
        if h_c is None:
            h_c = np.zeros((len(rows), hc.shape[-1]), dtype=np.float32)
            h_r = np.zeros_like(h_c)
        h_c[idx], h_r[idx] = hc.float().cpu().numpy(), hr.float().cpu().numpy()
        if on_batch:
            on_batch(min(k + batch_size, len(order)))
    model.train()
    return h_c, h_r


def _fit_probe_head(model, rows, val_rows, pad_id: int, bf16: bool, pack: bool,
                    config: FinetuneConfig, sink: ProgressSink) -> dict:
    """Set the score head to a logistic regression (ridge regression for ratings) fitted on
    frozen last-token states.

    The L2 strength is chosen by 4-fold cross-validation on the training sample (grouped by
    prompt); the probe is then scored on (up to probe_pairs/2) validation pairs. The probe's feature standardisation is folded into the head's weight; its constant
    offset is dropped, which changes no pairwise comparison. Returns the probe's metrics, or None
    when cancelled (the head is then left as it was).
    """
    from .instant import l2_by_folds, train_instant, train_instant_regression
    from .instant_config import InstantConfig

    sample = random.Random(config.seed).sample(rows, min(len(rows), config.probe_pairs))
    val_sample = val_rows[:max(1, config.probe_pairs // 2)] if val_rows else []
    total = len(sample) + len(val_sample)

    def progress(done):
        sink.log(0, {"stage": "probe", "done": done, "total": total})

    states = _probe_states(model, sample, pad_id, bf16, pack, config.batch_size * 2, sink, progress)
    if states is None:
        return None
    regression = config.objective == "regression"

    def arrays(rows_, states_, target_at):
        target = np.array([r[target_at] for r in rows_], np.float32)
        if regression:  # one response per row: its state and its standardised rating
            return states_[0], target
        return (*states_, target, np.array([r[3] for r in rows_], np.float32))

    train = arrays(sample, states, 4)
    val = None
    if val_sample:
        v_states = _probe_states(model, val_sample, pad_id, bf16, pack, config.batch_size * 2, sink,
                                 lambda done: progress(len(sample) + done))
        if v_states is None:
            return None
        val = arrays(val_sample, v_states, 2)
    sink.log(0, {"stage": "fit"})
    # The L2 strength comes from folds of the training sample, not from validation: picked there,
    # the probe's step-0 validation loss would be the best of six tries, and keep_best would then
    # favour the untrained head over every fine-tuned step measured honestly.
    probe_config = InstantConfig(head="linear", seed=config.seed)
    fit = train_instant_regression if regression else train_instant
    l2, _ = l2_by_folds(train, [r[5] for r in sample], probe_config, fit=fit)
    fitted = fit(train, val, dataclasses.replace(probe_config, l2_grid=(l2,), ridge_grid=(l2,)))
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = getattr(inner, _head_name(inner))
    weight = fitted.head.net.weight.detach() / fitted.head.feature_std
    if not isinstance(head, torch.nn.Linear) or head.weight.shape != weight.shape:
        raise FinetuneError(f"head_init='probe' needs a linear score head of shape {tuple(weight.shape)}, "
                            f"found {head}; use head_init='random'")
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight))
        if head.bias is not None:
            head.bias.zero_()
    # The head reads w·h/std; the probe predicted w·(h - mean)/std. For pairs the constant cancels;
    # a regression's targets move by it instead, so the model starts exactly at the probe.
    offset = float(weight.double() @ fitted.head.feature_mean.double()) if regression else 0.0
    return {"l2": fitted.l2, "pairs": len(sample), "val_pairs": len(val_sample), "target_offset": offset,
            "covers_val": len(val_sample) == len(val_rows),
            **{f"train/{k}": v for k, v in fitted.train_metrics.items()},
            **{f"val/{k}": v for k, v in fitted.val_metrics.items()}}


# ---------------------------------------------------------------- checkpoints

def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def _written_atomically(final: Path, prefix: str):
    """Yield a temp folder beside ``final``; on success it replaces ``final`` in one rename, so a
    crash never leaves half a checkpoint or model behind."""
    temp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    try:
        yield temp
        if final.exists():
            shutil.rmtree(final)
        os.replace(temp, final)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def _save_checkpoint(out_dir: Path, model, optimizer, scheduler, meta: dict) -> Path:
    """Write checkpoints/step-N via a temp dir + rename, so a crash never leaves half a checkpoint."""
    from safetensors.torch import save_file

    root = out_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{meta['step']}"
    with _written_atomically(final, prefix=f".tmp-step-{meta['step']}-") as temp:
        save_file(_trainable_state(model), str(temp / "trainable.safetensors"))
        if meta["config"]["method"] == "lora":
            model.save_pretrained(temp / "adapter")  # a standard PEFT adapter (+ score head)
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": _rng_state()}, temp / "state.pt")
        (temp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    for old in list_checkpoints(out_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _save_best(out_dir: Path, model, step: int, val: dict) -> None:
    """best/ = the trainable weights of the best validation so far, with its step and metrics."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    with _written_atomically(out_dir / "best", prefix=".tmp-best-") as temp:
        save_file(_trainable_state(model), str(temp / "trainable.safetensors"))
        (temp / "meta.json").write_text(json.dumps({"step": step, "val": val}), encoding="utf-8")


def _best_meta(out_dir: Path) -> dict | None:
    path = out_dir / "best" / "meta.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _load_best(out_dir: Path, model) -> None:
    from safetensors.torch import load_file

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in load_file(str(out_dir / "best" / "trainable.safetensors")).items():
            params[name].copy_(tensor.to(params[name].device))


def list_checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints (renamed into place, with meta.json), oldest first."""
    root = Path(out_dir) / "checkpoints"
    found = []
    for path in root.glob("step-*") if root.is_dir() else []:
        suffix = path.name.removeprefix("step-")
        if suffix.isdigit() and (path / "meta.json").is_file():
            found.append((int(suffix), path))
    return [p for _, p in sorted(found)]


def _load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    from safetensors.torch import load_file

    state = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in state]
    if missing:
        raise FinetuneError(f"checkpoint {path} does not match this model (missing {missing[:3]})")
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor.to(params[name].device))
    other = torch.load(path / "state.pt", weights_only=False)  # our own file, written above
    optimizer.load_state_dict(other["optimizer"])
    scheduler.load_state_dict(other["scheduler"])
    _set_rng_state(other["rng"])
    return json.loads((path / "meta.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- export

def save_reward_stats(model_dir, mean: float, std: float, **extra: float) -> None:
    """Store the training rewards' mean/std in config.json under 'rmstudio' (normalise: (r - mean) / std),
    with ``extra`` statistics (a regression's rating_mean/rating_std)."""
    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.setdefault(_STATS_KEY, {}).update({"reward_mean": float(mean), "reward_std": float(std),
                                             **{k: float(v) for k, v in extra.items()}})
    temp = path.with_suffix(".json.tmp")
    temp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temp, path)


def _model_card(base: str, config: FinetuneConfig, result: dict) -> str:
    def table(metrics):
        lines = [f"| {k} | {v:.4f} |" for k, v in metrics.items() if isinstance(v, float)]
        return "\n".join(lines) or "| - | - |"

    return f"""---
library_name: transformers
tags: [reward-model, rmstudio]
---
# Reward model trained with rmstudio

Base model: `{base}`; method: {config.method}; steps: {result['steps']}{_best_note(result)}; pairs truncated:
{result['truncated']}, skipped: {result['skipped']}.{_distill_note(result, config)}{_regression_note(result)}

## How to score

A single-logit `AutoModelForSequenceClassification` (num_labels=1). Format exactly as in training:

```python
ids = tokenizer(prompt + response, add_special_tokens=False).input_ids
reward = model(torch.tensor([ids])).logits[0, 0]
```

Prompt and response are concatenated as plain text: no chat template, no special tokens, no
EOS (as TRL's GRPOTrainer passes prompt + completion to a reward model, so this directory works
as `reward_funcs="path/to/model"`). The reward is read at the last token that is not the pad
token. Longer inputs ({config.max_length} tokens in training) keep
the end of the prompt and the start of the response. `config.json` → `rmstudio.reward_mean` /
`reward_std` hold the training rewards' statistics, to normalise scores: `(r - mean) / std`.

## Validation (the exported weights)

| metric | value |
|---|---|
{table(result['val'])}

## Training (last step)

| metric | value |
|---|---|
{table(result['train'])}

## Configuration

```json
{json.dumps(asdict(config), indent=2)}
```
"""


def _regression_note(result: dict) -> str:
    if result.get("objective") != "regression":
        return ""
    return (f" Trained by regression (MSE) on ratings: the reward predicts the rating, "
            f"rating ≈ reward × {result['rating_std']:.4f} + {result['rating_mean']:.4f} "
            "(also in `config.json` → `rmstudio.rating_mean` / `rating_std`).")


def _distill_note(result: dict, config: FinetuneConfig) -> str:
    if not result.get("distilled"):
        return ""
    return (f" Training targets were distilled from rmstudio's instant reward model: "
            f"{1 - config.distill_weight:g} × label + {config.distill_weight:g} × its probability.")


def _best_note(result: dict) -> str:
    best = result.get("best_step")
    if best is None or best == result["steps"]:
        return ""
    return (f" (the weights are step {best}'s, the best validation loss"
            f"{'; step 0 is the probed head before any step' if best == 0 else ''})")


def _export(model, tokenizer, base, config, result, rows, out_dir: Path, pack: bool, bf16: bool) -> Path:
    """Merge LoRA, write out_dir/model (atomically) with tokenizer, reward stats and a model card."""
    # Reward statistics over (up to 256) training pairs, spread over the data (rows are in input
    # order), computed prompt-once and in the training precision: bf16 moves a mean or a spread
    # by far less than it matters, and float32 is 3-6x slower on CPU.
    sample = rows[::max(1, len(rows) // 256)][:256]
    rewards = []
    model.eval()
    with torch.no_grad():
        for k in range(0, len(sample), 16):
            chosen, rejected = _pair_rewards(model, sample[k:k + 16], tokenizer.pad_token_id, bf16, pack)
            rewards += [chosen.cpu(), rejected.cpu()]
    rewards = torch.cat(rewards) if rewards else torch.zeros(1)
    merged = model.merge_and_unload() if config.method == "lora" else model
    merged.config.pad_token_id = tokenizer.pad_token_id
    merged.config.num_labels = 1
    target = out_dir / "model"
    out_dir.mkdir(parents=True, exist_ok=True)
    with _written_atomically(target, prefix=".tmp-model-") as temp:
        merged.save_pretrained(temp, safe_serialization=True)
        tokenizer.save_pretrained(temp)
        save_reward_stats(temp, rewards.mean().item(), rewards.std().item() if rewards.numel() > 1 else 1.0,
                          **({k: result[k] for k in ("rating_mean", "rating_std")} if "rating_mean" in result else {}))
        (temp / "README.md").write_text(_model_card(base, config, {**result, "model_dir": str(target)}),
                                        encoding="utf-8")
    return target


# ---------------------------------------------------------------- training

def train_finetune(base: str, train_pairs, val_pairs, config: FinetuneConfig, out_dir,
                   sink: ProgressSink | None = None, resume: bool = False, monitor_pairs=(),
                   rating_scale: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Train a reward model on ``train_pairs`` (TrainingPair-like), validate on ``val_pairs``.

    Logs ``train/{loss,accuracy,margin,mean_reward,num_tokens}``, ``epoch``, ``total_steps`` every
    step and ``val/{loss,accuracy,margin}`` every ``eval_every_steps`` and at the end. Polls
    ``sink.should_stop()`` between forward passes; on cancel it saves a checkpoint and returns.
    ``resume=True`` continues from the latest complete checkpoint in ``out_dir/checkpoints``.
    ``monitor_pairs`` (a held-out test set) are scored at every validation and logged as
    ``test/{loss,accuracy,margin}``: a curve to watch, never used to choose anything.
    With ``config.objective == 'regression'`` the pairs are rated responses, the target is
    (rating - mean) / std for ``rating_scale = (mean, std)``, and the logs are mse/pearson;
    ``result['rating_mean']``/``['rating_std']`` map a reward back to the rating's scale.
    """
    sink = sink or NullSink()
    out_dir = Path(out_dir)
    device = pick_device(config.device)
    bf16 = resolve_bf16(config.bf16, device)
    model, tokenizer = load_reward_model(base, config.seed)
    train_pairs = list(train_pairs)
    distilled = bool(config.distill_weight) and any(getattr(p, "teacher", None) is not None for p in train_pairs)
    regression = config.objective == "regression"
    if regression:
        rows, truncated, skipped = _encode_rated(tokenizer, train_pairs, config.max_length, config.overlong,
                                                 rating_scale)
        val_rows, _, _ = _encode_rated(tokenizer, list(val_pairs), config.max_length, "truncate", rating_scale)
    else:
        rows, truncated, skipped = _encode_pairs(tokenizer, train_pairs, config.max_length, config.overlong,
                                                 config.distill_weight)
        val_rows, _, _ = _encode_pairs(tokenizer, list(val_pairs), config.max_length, "truncate")
    monitor_rows, _, _ = _encode_pairs(tokenizer, list(monitor_pairs), config.max_length, "truncate")
    if not rows:
        raise FinetuneError(f"no training pairs left ({len(train_pairs)} given, {skipped} longer than "
                            f"max_length={config.max_length} skipped)")
    model.to(device)
    model.train()
    pad_id = tokenizer.pad_token_id
    center = config.center_rewards_coefficient or 0.0
    pack = config.share_prompt and _can_pack(model) and _packing_agrees(model, rows[:2], pad_id)
    resuming = resume and bool(list_checkpoints(out_dir))
    probe, probe_seconds, target_offset = None, 0.0, 0.0
    if config.head_init == "probe" and not resuming:  # a resumed run has its head in the checkpoint
        started = time.perf_counter()
        probe = _fit_probe_head(model, rows, val_rows, pad_id, bf16, pack, config, sink)
        probe_seconds = time.perf_counter() - started  # counted as training time: it is part of it
        if probe is None:  # cancelled before any step: nothing to keep, a new start probes again
            return {"status": "cancelled", "steps": 0, "total_steps": 0, "train": {}, "val": {},
                    "truncated": truncated, "skipped": skipped, "model_dir": None, "checkpoint": None,
                    "tokens_per_s": 0.0, "train_seconds": probe_seconds, "probe": None}
        target_offset = probe["target_offset"]
    if config.method == "lora":
        model = _wrap_lora(model, config)  # after the probe: the head's trainable copy starts from it

    batches_per_epoch = math.ceil(len(rows) / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / total_steps))

    step, num_tokens, train_seconds = 0, 0, probe_seconds
    train_metrics: dict[str, float] = {}
    val_metrics: dict[str, float] = {}
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    if resume:
        found = list_checkpoints(out_dir)
        if found:
            meta = _load_checkpoint(found[-1], model, optimizer, scheduler)
            saved = meta["config"]
            for key in ("method", "batch_size", "grad_accum", "epochs", "seed", "max_length", "overlong"):
                if saved.get(key) != getattr(config, key):
                    raise FinetuneError(f"cannot resume from {found[-1]}: it was trained with {key}="
                                        f"{saved.get(key)!r}, this run has {getattr(config, key)!r}")
            target_offset = meta.get("target_offset", 0.0)
            step, num_tokens = meta["step"], meta["num_tokens"]
            train_seconds, train_metrics = meta.get("train_seconds", 0.0), meta.get("train", {})
            probe_seconds = meta.get("probe_seconds", 0.0)
            val_metrics = meta.get("val", {})

    rows, val_rows = _shifted(rows, target_offset), _shifted(val_rows, target_offset)

    def meta() -> dict:
        return {"step": step, "num_tokens": num_tokens, "train_seconds": train_seconds,
                "probe_seconds": probe_seconds, "base": base, "target_offset": target_offset,
                "config": {**asdict(config), "learning_rate": config.lr, "bf16": bf16, "device": device,
                           "share_prompt": pack},
                "train": train_metrics, "val": val_metrics, "total_steps": total_steps,
                "truncated": truncated, "skipped": skipped}

    best = (_best_meta(out_dir) if resuming else None) if config.keep_best else None
    if not resuming:
        shutil.rmtree(out_dir / "best", ignore_errors=True)  # a stale best from an earlier start

    def note_best() -> None:
        nonlocal best
        loss = val_metrics.get("loss")
        if config.keep_best and loss is not None and not math.isnan(loss) and (
                best is None or loss < best["val"]["loss"]):
            _save_best(out_dir, model, step, val_metrics)
            best = {"step": step, "val": dict(val_metrics)}

    def watch_monitor() -> None:
        if monitor_rows:
            watched = _evaluate(model, monitor_rows, pad_id, config.batch_size * 2, bf16, center, pack)
            sink.log(step, {f"test/{k}": v for k, v in watched.items()} | {"total_steps": total_steps})

    def validate() -> None:
        nonlocal val_metrics
        if val_rows:
            val_metrics = _evaluate(model, val_rows, pad_id, config.batch_size * 2, bf16, center, pack, regression)
            sink.log(step, {f"val/{k}": v for k, v in val_metrics.items()} | {"total_steps": total_steps})
            note_best()
        watch_monitor()

    status = "finished"
    sink.log(step, {"total_steps": total_steps, "truncated": truncated, "skipped": skipped})
    if probe is not None:
        sink.log(0, {"probe/l2": probe["l2"], "train/seconds": train_seconds, "total_steps": total_steps})
        if probe["covers_val"] and "val/accuracy" in probe:  # the probe scored every validation pair
            val_metrics = {k.removeprefix("val/"): v for k, v in probe.items() if k.startswith("val/")}
            sink.log(0, {f"val/{k}": v for k, v in val_metrics.items()} | {"total_steps": total_steps})
            note_best()
            watch_monitor()
        else:
            validate()
    try:
        while step < total_steps and status == "finished":
            epoch = step // steps_per_epoch
            batches = _epoch_batches(rows, config.batch_size, config.seed, epoch, config.length_grouped, pack)
            first = (step % steps_per_epoch) * config.grad_accum
            for start in range(first, len(batches), config.grad_accum):
                group = batches[start:start + config.grad_accum]
                started = time.perf_counter()
                sums: dict[str, float] = {}
                for micro in group:
                    if sink.should_stop():
                        status = "cancelled"
                        break
                    batch = [rows[i] for i in micro]
                    rc, rr = _pair_rewards(model, batch, pad_id, bf16, pack)
                    target = torch.tensor([b[2] for b in batch], device=rc.device)
                    margin = torch.tensor([b[3] for b in batch], device=rc.device)
                    loss_target = torch.tensor([b[4] for b in batch], device=rc.device)
                    loss, metrics = _loss_and_metrics(rc, rr, target, margin, loss_target, center, regression)
                    (loss / len(group)).backward()
                    for k, value in metrics.items():
                        sums[k] = sums.get(k, 0.0) + (0.0 if math.isnan(value) else value) / len(group)
                    # TRL's num_tokens: tokens of chosen + rejected, however we batch them
                    num_tokens += sum(len(b[0]) if regression else len(b[0]) + len(b[1]) for b in batch)
                if status == "cancelled":
                    optimizer.zero_grad(set_to_none=True)  # drop the half-accumulated step
                    break
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                train_seconds += time.perf_counter() - started
                train_metrics = {**sums, "num_tokens": float(num_tokens)}
                sink.log(step, {f"train/{k}": v for k, v in train_metrics.items()}
                         | {"epoch": step / steps_per_epoch, "total_steps": total_steps,
                            "train/seconds": train_seconds,
                            "train/learning_rate": scheduler.get_last_lr()[0]})
                if config.eval_every_steps and step % config.eval_every_steps == 0 and step < total_steps:
                    validate()
                if config.save_every_steps and step % config.save_every_steps == 0 and step < total_steps:
                    _save_checkpoint(out_dir, model, optimizer, scheduler, meta())
                if sink.should_stop():
                    status = "cancelled"
                    break
    except torch.OutOfMemoryError as exc:
        raise FinetuneError(f"out of memory at step {step + 1} (batch_size={config.batch_size}, "
                            f"max_length={config.max_length}); lower batch_size or max_length and raise "
                            "grad_accum to keep the effective batch") from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower():
            raise FinetuneError(f"out of memory at step {step + 1} (batch_size={config.batch_size}, "
                                f"max_length={config.max_length}); lower batch_size or max_length") from exc
        raise FinetuneError(f"training failed at step {step + 1}: {exc}") from exc

    mean, std = rating_scale
    result = {"status": status, "steps": step, "total_steps": total_steps, "train": train_metrics,
              "distilled": distilled, "objective": config.objective,
              # reward = (rating - mean) / std + offset, so rating = (reward - offset) * std + mean
              **({"rating_mean": mean - target_offset * std, "rating_std": std} if regression else {}),
              "val": val_metrics, "truncated": truncated, "skipped": skipped, "model_dir": None,
              "checkpoint": None, "tokens_per_s": num_tokens / stepping if (stepping := train_seconds - probe_seconds) > 0 else 0.0,
              "train_seconds": train_seconds, "probe": probe}
    if status == "cancelled":
        result["checkpoint"] = str(_save_checkpoint(out_dir, model, optimizer, scheduler, meta()))
        return result
    validate()
    result["last_val"] = val_metrics
    if best is not None and best["step"] != step:
        _load_best(out_dir, model)  # the export (and its reward statistics) use the best weights
        val_metrics = best["val"]
        sink.log(step, {"best_step": best["step"], "total_steps": total_steps})
    result["best_step"] = best["step"] if best is not None else step
    result["val"] = val_metrics
    result["model_dir"] = str(_export(model, tokenizer, base, config, result, rows, out_dir, pack, bf16))
    shutil.rmtree(out_dir / "best", ignore_errors=True)  # it is the export now (a full copy is big)
    return result
