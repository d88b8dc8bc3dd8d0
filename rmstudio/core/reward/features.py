"""Frozen-backbone features of responses, for the instant reward head.

A response's feature is the backbone's hidden states over the response tokens (mean-pooled and
at the last token, from a few layers), read *in the context of its prompt*. The prompt is run
once and its key/value cache is shared by all of that prompt's responses, so a pair costs one
prompt plus two short responses instead of two full texts (HH prompts are ~3/4 of the tokens).
Vectors are stored in the project (float16) and never computed twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.data.records import Text


@dataclass(frozen=True)
class FeatureSpec:
    layers: tuple[int, ...] = (-1,)
    """Hidden-state layers to read (0 = embeddings, -1 = the last layer)."""

    pooling: tuple[str, ...] = ("mean", "last")
    """'mean' over the response tokens and/or the 'last' response token's state."""

    max_prompt_tokens: int = 192
    """The prompt keeps its last tokens (the latest turn matters most)."""

    max_response_tokens: int = 128
    """The response keeps its first tokens."""

    batch_prompts: int = 8
    """Prompts per forward pass (their responses ride along)."""

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("layers must name at least one layer")
        if not self.pooling or set(self.pooling) - {"mean", "last"}:
            raise ValueError(f"pooling must be 'mean' and/or 'last', got {self.pooling!r}")
        if self.max_prompt_tokens < 1 or self.max_response_tokens < 1:
            raise ValueError("max_prompt_tokens and max_response_tokens must be at least 1")

    def key(self, backbone_name: str) -> str:
        fields = {k: v for k, v in asdict(self).items() if k != "batch_prompts"}
        return f"{backbone_name}|{json.dumps(fields, sort_keys=True)}"




class FeatureExtractor:
    """Computes response features with a frozen causal LM (its decoder, without the LM head)."""

    def __init__(self, model, tokenizer, spec: FeatureSpec, name: str):
        import torch

        self.torch = torch
        self.decoder = getattr(model, model.base_model_prefix, model)
        self.decoder.eval()
        self.tokenizer = tokenizer
        self.spec = spec
        self.key = spec.key(name)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.end_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else self.pad_id
        # transformers renamed past_key_values to cache (5.2x); speak whichever this one knows.
        import inspect

        params = inspect.signature(self.decoder.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        hidden = model.config.get_text_config().hidden_size
        self.dim = hidden * len(spec.layers) * len(spec.pooling)
        self.device = next(model.parameters()).device

    def _ids(self, text: str, keep_end: bool, limit: int) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[-limit:] if keep_end else ids[:limit]

    def extract(self, groups: Sequence[tuple[Text, Sequence[Text]]], sink: ProgressSink | None = None,
                on_batch: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
        """Features for every response of every (prompt, responses) group, in order.
        ``on_batch(first_index, vectors)`` sees each batch as it is done (to store it at once)."""
        sink = sink or NullSink()
        torch = self.torch
        total = sum(len(r) for _, r in groups)
        out = np.zeros((total, self.dim), dtype=np.float32)
        offsets = np.cumsum([0] + [len(r) for _, r in groups])
        # Longest prompts first, so batches hold similar lengths and little padding.
        order = sorted(range(len(groups)), key=lambda i: -len(groups[i][0].text))
        done = 0
        with torch.inference_mode():
            for start in range(0, len(order), self.spec.batch_prompts):
                if sink.should_stop():
                    break
                batch = order[start:start + self.spec.batch_prompts]
                vectors = self._batch([groups[i] for i in batch])
                row = 0
                for i in batch:
                    n = len(groups[i][1])
                    out[offsets[i]:offsets[i] + n] = vectors[row:row + n]
                    if on_batch:
                        on_batch(int(offsets[i]), vectors[row:row + n])
                    row += n
                done += row
                sink.log(done, {"total": total})
        return out

    def _batch(self, groups) -> np.ndarray:
        torch = self.torch
        spec = self.spec
        prompts = [self._ids(p.text, True, spec.max_prompt_tokens) or [self.end_id] for p, _ in groups]
        responses = [self._ids(r.text, False, spec.max_response_tokens) + [self.end_id]
                     for _, rs in groups for r in rs]
        owner = torch.tensor([g for g, (_, rs) in enumerate(groups) for _ in rs], device=self.device)

        # 1) prompts, left-padded so every prompt ends at the same column
        width = max(map(len, prompts))
        ids = torch.full((len(prompts), width), self.pad_id, device=self.device)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        prompt_out = self.decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        cache = getattr(prompt_out, self.cache_arg)
        cache.batch_select_indices(owner)  # each response gets its prompt's keys/values

        # 2) responses, right-padded, attending to their prompt through the cache
        width_r = max(map(len, responses))
        rids = torch.full((len(responses), width_r), self.pad_id, device=self.device)
        rmask = torch.zeros_like(rids)
        for i, r in enumerate(responses):
            rids[i, :len(r)] = torch.tensor(r)
            rmask[i, :len(r)] = 1
        prompt_mask = mask[owner]
        rpos = prompt_mask.sum(1, keepdim=True) + torch.arange(width_r, device=self.device)[None]
        # The last layer alone needs no copy of every layer's states (hidden_states[-1] is the
        # final, normed output, the same as last_hidden_state).
        only_last = set(spec.layers) == {-1}
        out = self.decoder(input_ids=rids, attention_mask=torch.cat([prompt_mask, rmask], 1),
                           position_ids=rpos, output_hidden_states=not only_last,
                           **{self.cache_arg: cache})
        hidden = {-1: out.last_hidden_state} if only_last else out.hidden_states
        weights = rmask.unsqueeze(-1).float()
        last = rmask.sum(1) - 1
        parts = []
        for layer in spec.layers:
            states = hidden[layer].float()
            for pool in spec.pooling:
                if pool == "mean":
                    parts.append((states * weights).sum(1) / weights.sum(1))
                else:
                    parts.append(states[torch.arange(len(responses)), last])
        return torch.cat(parts, 1).cpu().numpy()


def cached_vectors(project, key: str, response_ids: Sequence[int]) -> dict[int, np.ndarray]:
    found = {}
    ids = list(response_ids)
    for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
        chunk = ids[start:start + 900]
        for rid, blob in project.conn.execute(
                f"SELECT response_id, vector FROM feature_cache WHERE extractor = ? "
                f"AND response_id IN ({', '.join('?' * len(chunk))})", (key, *chunk)):
            found[rid] = np.frombuffer(blob, dtype="<f2").astype(np.float32)
    return found


def store_vectors(project, key: str, items: Sequence[tuple[int, np.ndarray]]) -> None:
    with project.write():
        project.conn.executemany(
            "INSERT OR REPLACE INTO feature_cache (extractor, response_id, vector) VALUES (?, ?, ?)",
            [(key, rid, vec.astype("<f2").tobytes()) for rid, vec in items])
