"""Fine-tune checkpoints and the best validation's weights, written atomically (write to a
temporary folder, then rename), so a kill at any moment leaves the last complete one."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from rmstudio.core.reward.finetune_config import FinetuneError

KEEP_CHECKPOINTS = 2


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def written_atomically(final: Path, prefix: str):
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


def save_checkpoint(out_dir: Path, model, optimizer, scheduler, meta: dict, average=None) -> Path:
    """Write checkpoints/step-N via a temp dir + rename, so a crash never leaves half a checkpoint
    (with the running weight average, when one is kept)."""
    from safetensors.torch import save_file

    root = out_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{meta['step']}"
    with written_atomically(final, prefix=f".tmp-step-{meta['step']}-") as temp:
        save_file(trainable_state(model), str(temp / "trainable.safetensors"))
        if meta["config"]["method"] == "lora":
            model.save_pretrained(temp / "adapter")  # a standard PEFT adapter (+ score head)
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": rng_state()}, temp / "state.pt")
        if average is not None:
            average.save(temp)
        (temp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    for old in list_checkpoints(out_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_best(out_dir: Path, model, step: int, val: dict) -> None:
    """best/ = the trainable weights of the best validation so far, with its step and metrics."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    with written_atomically(out_dir / "best", prefix=".tmp-best-") as temp:
        save_file(trainable_state(model), str(temp / "trainable.safetensors"))
        (temp / "meta.json").write_text(json.dumps({"step": step, "val": val}), encoding="utf-8")


def best_meta(out_dir: Path) -> dict | None:
    path = out_dir / "best" / "meta.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_best(out_dir: Path, model) -> None:
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


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
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
    set_rng_state(other["rng"])
    return json.loads((path / "meta.json").read_text(encoding="utf-8"))
