"""What a fine-tune does when it goes wrong: out of memory (say so, with a smaller setting to
try) and a loss or weights that stop being finite (stop, export the best validated weights, keep
the last checkpoint for a resume)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from rmstudio.core.reward.checkpoints import list_checkpoints, load_best
from rmstudio.core.reward.finetune_config import FinetuneConfig, FinetuneError
from rmstudio.core.reward.finetune_export import export_model
from rmstudio.core.reward.ranks import SINGLE, main_saves


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()  # CPU allocators and MPS raise a plain RuntimeError
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def oom_message(config: FinetuneConfig, where: str = "") -> str:
    """Out of memory, with a concrete smaller setting to try (half the batch, the same pairs a step)."""
    said = f"out of memory{where} (batch_size={config.batch_size}, max_length={config.max_length})"
    if config.batch_size > 1:
        smaller = config.batch_size // 2
        accum = math.ceil(config.batch_size * config.grad_accum / smaller)
        return (f"{said}; try batch_size={smaller} with grad_accum={accum} to keep about "
                f"{config.batch_size * config.grad_accum} pairs a step, or a lower max_length")
    return f"{said}; try max_length={max(8, config.max_length // 2)}"


def _weights_finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad)


def _diverged(model, tokenizer, base, config, result, rows, out_dir: Path, pack, bf16, best,
              at_step: int, what: str, ranks=SINGLE) -> FinetuneError:
    """The error of a run whose loss or weights stopped being finite at ``at_step``. The weights in
    memory are not trusted any more: the best validated weights (when kept) are exported instead,
    and the last checkpoint (saved only while the weights were finite) stays for a resume."""
    kept = []
    if best is not None and (out_dir / "best").is_dir():
        load_best(out_dir, model)
        result.update(val=best["val"], best_step=best["step"], error=f"{what} at step {at_step}")
        result["model_dir"] = str(main_saves(ranks, export_model, model, tokenizer, base, config, result,
                                              rows, out_dir, pack, bf16))
        kept.append(f"the best validated weights (step {best['step']}) are exported to {result['model_dir']}")
    found = list_checkpoints(out_dir)
    if found:
        result["checkpoint"] = str(found[-1])
        kept.append(f"resume (with a lower learning rate) continues from {found[-1].name}")
    error = FinetuneError(f"{what} at step {at_step}; try a lower learning rate than {config.lr:g} "
                          f"(e.g. {config.lr / 10:g})" + "".join(f"; {k}" for k in kept))
    error.result = result  # train_reward_model records what was kept as the run's artifacts
    return error
