"""Forward passes of a sequence-classification reward model: rewards of packed pairs or of
plain sequences, and the last-token states the score head reads them from."""

from __future__ import annotations

import numpy as np
import torch

from rmstudio.core.models.loading import ModelError
from rmstudio.core.reward.packing import encode_pair_text, last_scored, pack_pairs, pad_rows

def _head_io(model, bf16: bool, **inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(score head input, per-token rewards) of one forward pass, read by a hook on the head."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    device = next(model.parameters()).device
    captured = {}
    hook = getattr(inner, head_name(inner)).register_forward_hook(
        lambda module, args, output: captured.update(hidden=args[0], scores=output))
    try:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            model(**inputs, use_cache=False)
    finally:
        hook.remove()
    return captured["hidden"], captured["scores"][..., 0].float()


def pair_outputs(model, batch, pad_id: int, bf16: bool, pack: bool):
    """(r_chosen, r_rejected, h_chosen, h_rejected): rewards and the states the head read them from."""
    device = next(model.parameters()).device
    if pack:  # the prompt computed once per pair
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        impl = getattr(inner.config, "_attn_implementation", "sdpa")
        ids, mask, pos, at_c, at_r = pack_pairs(batch, pad_id, device, float_mask=impl == "eager")
        hidden, scores = _head_io(model, bf16, input_ids=ids, attention_mask=mask, position_ids=pos)
        rows = torch.arange(len(batch), device=device)
        return scores[rows, at_c], scores[rows, at_r], hidden[rows, at_c], hidden[rows, at_r]
    seqs = [b[0] for b in batch] + [b[1] for b in batch]
    ids, mask = pad_rows(seqs, pad_id, device)
    hidden, scores = _head_io(model, bf16, input_ids=ids, attention_mask=mask)
    rows = torch.arange(len(seqs), device=device)
    at = torch.tensor([last_scored(s, pad_id) for s in seqs], device=device)
    r, h, n = scores[rows, at], hidden[rows, at], len(batch)
    return r[:n], r[n:], h[:n], h[n:]


def pair_rewards(model, batch, pad_id: int, bf16: bool, pack: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return pair_outputs(model, batch, pad_id, bf16, pack)[:2]


def can_pack(model) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(inner.config, "_attn_implementation", "sdpa") in ("sdpa", "eager")


@torch.no_grad()
def packing_agrees(model, rows, pad_id: int) -> bool:
    """Packed rewards equal plain ones on a few real pairs (an architecture that ignores custom
    4-D masks or position ids would differ); one small forward, in float32."""
    was_training = model.training
    model.eval()
    try:
        packed = pair_rewards(model, rows, pad_id, False, pack=True)
        plain = pair_rewards(model, rows, pad_id, False, pack=False)
        return all(torch.allclose(a, b, atol=1e-3, rtol=1e-3) for a, b in zip(packed, plain))
    except Exception:  # noqa: BLE001 - any failure means: do not pack
        return False
    finally:
        model.train(was_training)


def head_name(model) -> str:
    for name in ("score", "classifier", "classification_head", "v_head"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return name
    raise ModelError(f"cannot find the score head of {type(model).__name__}")


def sequence_rewards(model, ids, mask, bf16: bool) -> torch.Tensor:
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
        ids, mask = pad_rows([encoded[i] for i in idx], tokenizer.pad_token_id, device)
        scores[idx] = sequence_rewards(model, ids, mask, False).cpu().numpy()
    model.train(was_training)
    return scores
