"""Which parts of a response move its reward: prefix rewards and leave-one-word-out occlusion.

Prefix rewards read the reward "so far" after every response token from ONE forward pass:

* fine-tuned (sequence classification): the score head is applied at every position (the model
  itself pools only the last non-pad token), so the value at token t is exactly the reward of
  the text up to t, formatted as ``score_texts`` formats it (plain ``prompt + response``);
* instant (a head on pooled frozen features): the features are per-position computable, the
  'last' pooling is the state at t and the 'mean' pooling the running mean up to t, so the
  prompt-then-response pass the feature extractor makes gives every prefix too. Scoring appends
  the end token to a response, so the last token shown is that end token and its value is the
  full reward; the values before it are prefixes as read, without an end token.

A token's contribution is its prefix reward minus the one before it (the first token's is
measured from ``start``, the reward at the prompt's last token), so contributions sum to
``reward - start``. Occlusion instead removes one word at a time and rescores: reward(full) -
reward(without word i), so a word that helps gets a positive number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.reward.scoring import RewardScorer


@dataclass
class PrefixRewards:
    tokens: list[str]
    """The response tokens as text (the instant model's end token last)."""
    rewards: list[float]
    """The reward after each token; the last is the full text's reward."""
    start: float
    """The reward before the first response token: at the prompt's last token for a fine-tuned
    model; 0 for an instant model (no response token read, no feature) or an empty prompt."""
    truncated: bool = False
    """Tokens past the model's length limit were not read and are not listed."""

    @property
    def reward(self) -> float:
        return self.rewards[-1] if self.rewards else self.start

    @property
    def contributions(self) -> list[float]:
        previous = [self.start, *self.rewards[:-1]]
        return [r - p for r, p in zip(self.rewards, previous)]


@dataclass
class Occlusion:
    words: list[str]
    contributions: list[float]
    """reward(full) - reward(without the word), one per word (fewer if stopped)."""
    reward: float
    stopped: bool = False
    spans: list[tuple[int, int]] = field(default_factory=list)


def _unwrap(model):
    """(RewardScorer, affine) of a RewardModel or a RewardScorer: a normalised RewardModel's
    values are mapped the same way, so the last prefix reward equals ``model.score``."""
    scorer = getattr(model, "scorer", model)
    if not isinstance(scorer, RewardScorer):
        raise TypeError(f"expected a RewardModel or RewardScorer, got {type(model).__name__}")
    normalize = getattr(model, "normalize", None) if getattr(model, "normalized", False) else None
    return scorer, normalize or (lambda r: r)


def prefix_rewards(model, prompt: str, response: str) -> PrefixRewards:
    scorer, normalize = _unwrap(model)
    result = _instant_prefix(scorer, prompt, response) if scorer.instant is not None \
        else _finetuned_prefix(scorer, prompt, response)
    result.rewards = [normalize(float(r)) for r in result.rewards]
    result.start = normalize(float(result.start))
    return result


def _token_texts(tokenizer, text: str, ids: list[int], offsets) -> list[str]:
    if offsets is not None:
        return [text[a:b] for a, b in offsets]
    return [tokenizer.decode([i]) for i in ids]


def _finetuned_prefix(scorer: RewardScorer, prompt: str, response: str) -> PrefixRewards:
    import torch

    from rmstudio.core.reward.forward import _head_io
    from rmstudio.core.reward.packing import encode_pair_text

    model, tokenizer, max_length = scorer.hf
    [(ids, truncated)] = encode_pair_text(tokenizer, [prompt], [response], max_length)
    text = prompt + response
    fast = getattr(tokenizer, "is_fast", False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=fast)
    full = list(enc["input_ids"])
    offsets = enc["offset_mapping"] if fast else None
    # Where the response starts, by encode_pair_text's own rule (a token starting in the prompt
    # is the prompt's), then one token earlier if that token straddles the boundary: it holds
    # the response's first characters, so its reward change belongs to the response.
    if fast:
        split = sum(1 for a, _ in offsets if a < len(prompt))
        straddles = split > 0 and offsets[split - 1][1] > len(prompt)
    else:
        split = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        straddles = False
    if truncated:  # kept = the prompt's last tokens + the response's first tokens
        keep_response = min(len(full) - split, max(max_length - split, max_length // 2))
        keep_prompt = len(ids) - keep_response
        original = list(range(split - keep_prompt, split)) + list(range(split, split + keep_response))
    else:
        original = list(range(len(ids)))
        keep_prompt = split
    first = keep_prompt - 1 if straddles and keep_prompt > 0 else keep_prompt
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            tensor = torch.tensor([ids], device=device)
            _, scores = _head_io(model, False, input_ids=tensor, attention_mask=torch.ones_like(tensor))
    finally:
        model.train(was_training)
    scores = scores[0].cpu().numpy()
    if not full:  # an empty text is scored as one end token: nothing to list
        return PrefixRewards([], [], float(scores[-1]))
    picked = original[first:]
    shown = _token_texts(tokenizer, text, [full[i] for i in picked],
                         [offsets[i] for i in picked] if offsets is not None else None)
    start = float(scores[first - 1]) if first > 0 else 0.0
    return PrefixRewards(shown, [float(s) for s in scores[first:first + len(shown)]], start,
                         truncated and len(full) - split > keep_response)


def _instant_prefix(scorer: RewardScorer, prompt: str, response: str) -> PrefixRewards:
    import torch

    instant = scorer.instant
    ex = instant.extractor
    spec = ex.spec
    # The same two passes as FeatureExtractor._batch for one prompt and one response (prompt
    # with a cache, then the response), so the last position reproduces scoring bit for bit.
    p_ids = ex._ids(prompt, True, spec.max_prompt_tokens) or [ex.end_id]
    fast = getattr(ex.tokenizer, "is_fast", False)
    enc = ex.tokenizer(response, add_special_tokens=False, return_offsets_mapping=fast)
    all_ids = list(enc["input_ids"])
    r_ids = all_ids[:spec.max_response_tokens]
    offsets = enc["offset_mapping"][:len(r_ids)] if fast else None
    seq = r_ids + [ex.end_id]
    with torch.inference_mode():
        ids = torch.tensor([p_ids], device=ex.device)
        mask = torch.ones_like(ids)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        prompt_out = ex.decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        cache = getattr(prompt_out, ex.cache_arg)
        cache.batch_select_indices(torch.zeros(1, dtype=torch.long, device=ex.device))
        rids = torch.tensor([seq], device=ex.device)
        rmask = torch.ones_like(rids)
        rpos = mask.sum(1, keepdim=True) + torch.arange(len(seq), device=ex.device)[None]
        only_last = set(spec.layers) == {-1}
        out = ex.decoder(input_ids=rids, attention_mask=torch.cat([mask, rmask], 1), position_ids=rpos,
                         output_hidden_states=not only_last, **{ex.cache_arg: cache})
        hidden = {-1: out.last_hidden_state} if only_last else out.hidden_states
        weights = rmask.unsqueeze(-1).float()
        count = torch.arange(1, len(seq) + 1, device=ex.device, dtype=torch.float32)[:, None]
        parts = []
        for layer in spec.layers:
            states = hidden[layer].float()
            for pool in spec.pooling:
                if pool == "mean":
                    running = states[0].cumsum(0) / count
                    # the full mean exactly as the extractor sums it (cumsum rounds differently)
                    running[-1] = ((states * weights).sum(1) / weights.sum(1))[0]
                    parts.append(running)
                else:
                    parts.append(states[0])
        features = torch.cat(parts, 1).cpu().numpy()
    # Through float16 as scoring does (instant_model.features), then the head.
    features = features.astype("<f2").astype(np.float32)
    with torch.no_grad():
        rewards = instant.head(torch.as_tensor(features)).numpy()
    shown = _token_texts(ex.tokenizer, response, r_ids, offsets)
    shown.append(ex.tokenizer.convert_ids_to_tokens(ex.end_id) or "<end>")
    # The 'start' of an instant model: no response token read yet has no feature; the first
    # token's contribution is then its own reward (measured from 0).
    return PrefixRewards(shown, [float(r) for r in rewards], 0.0, len(all_ids) > len(r_ids))


_WORD = re.compile(r"\S+")


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _WORD.finditer(text)]


def without_word(text: str, span: tuple[int, int]) -> str:
    """The text with one word and the whitespace after it removed (before it, for the last
    word), so no double space is left that a tokenizer would read as a change of its own."""
    start, end = span
    after = re.match(r"\s*", text[end:]).end()
    if end + after == len(text):  # last word: take the space before it instead
        before = len(text[:start]) - len(text[:start].rstrip())
        return text[:start - before]
    return text[:start] + text[end + after:]


def occlusion(model, prompt: str, response: str, sink: ProgressSink | None = None,
              batch: int = 16) -> Occlusion:
    """Leave-one-word-out: reward(full) - reward(response without word i), per word, in batches.
    ``sink.log(done, {"total": n})`` after each batch; ``sink.should_stop()`` ends early (``stopped``)."""
    sink = sink or NullSink()
    score = _scorer_of(model)
    spans = word_spans(response)
    words = [response[a:b] for a, b in spans]
    full = score(prompt, [response])[0]
    contributions: list[float] = []
    stopped = False
    for k in range(0, len(spans), batch):
        if sink.should_stop():
            stopped = True
            break
        variants = [without_word(response, s) for s in spans[k:k + batch]]
        contributions += [full - r for r in score(prompt, variants)]
        sink.log(len(contributions), {"total": len(spans)})
    return Occlusion(words, contributions, full, stopped, spans)


def _scorer_of(model):
    """score(prompt, responses) -> list of floats, normalised when the RewardModel is."""
    if hasattr(model, "score_rows"):  # a RewardModel
        return lambda p, rs: model.score_rows([p] * len(rs), rs)
    from rmstudio.core.data.records import Text

    return lambda p, rs: [float(r) for r in model.score(Text(p), [Text(r) for r in rs])]
