"""Fine-tune checkpoints and the best validation's weights, written atomically (write to a
temporary folder, then rename), so a kill at any moment leaves the last complete one."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from rmstudio.core.store.durable import fsync_folder, fsync_tree
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
def written_atomically(final: Path, prefix: str, what: str | None = None, kept: str = ""):
    """Yield a temp folder beside ``final``; on success its files are synced and it replaces
    ``final`` in one rename, so a crash (or a power cut) never leaves half a checkpoint or model
    behind. On any failure the temp folder is removed and ``final`` is left as it was.

    With ``what`` ("checkpoint"), a failed write (a full disk, a read-only folder, an I/O error)
    comes out as one FinetuneError naming ``final`` and the reason, followed by ``kept``."""
    temp = None
    try:
        temp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
        yield temp
        fsync_tree(temp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(temp, final)
        fsync_folder(final.parent)
    except Exception as exc:
        cause = _os_error(exc)
        if what is None or cause is None:
            raise
        reason = cause.strerror or str(cause) or type(cause).__name__
        raise FinetuneError(f"cannot write {what} {final}: {reason}{kept}") from exc
    finally:
        if temp is not None and temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def _os_error(exc: BaseException | None) -> OSError | None:
    """The operating system's error behind a failed write, if there is one. torch.save reports a
    failed file write as a RuntimeError whose context is the OSError, safetensors as a
    SafetensorError ending in '(os error 28)'."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            return exc
        found = re.search(r"\(os error (\d+)\)", str(exc))
        if found:
            code = int(found.group(1))
            return OSError(code, os.strerror(code))
        exc = exc.__cause__ or exc.__context__
    return None


def save_checkpoint(out_dir: Path, model, optimizer, scheduler, meta: dict, average=None) -> Path:
    """Write checkpoints/step-N via a temp dir + rename, so a crash never leaves half a checkpoint
    (with the running weight average, when one is kept). A failed write (a full disk) raises one
    FinetuneError that says so and names the checkpoint kept for a resume; nothing of the new one
    is left, and the earlier checkpoints are untouched."""
    from safetensors.torch import save_file

    root = out_dir / "checkpoints"
    final = root / f"step-{meta['step']}"
    previous = [p for p in list_checkpoints(out_dir) if p != final]
    if previous:
        kept = f"; {previous[-1].name} is kept and a resume continues from it"
    else:
        kept = "; there is no earlier checkpoint, so a resume starts from the beginning"
    try:
        root.mkdir(parents=True, exist_ok=True)
        # A temp folder a killed run left behind (only one process writes a run's folder).
        for stale in root.glob(".tmp-step-*"):
            shutil.rmtree(stale, ignore_errors=True)
        with written_atomically(final, prefix=f".tmp-step-{meta['step']}-", what="checkpoint",
                                kept=kept) as temp:
            save_file(trainable_state(model), str(temp / "trainable.safetensors"))
            if meta["config"]["method"] == "lora":
                model.save_pretrained(temp / "adapter")  # a standard PEFT adapter (+ score head)
            with open(temp / "state.pt", "wb") as fh:  # a failed write stays an OSError (see _os_error)
                torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                            "rng": rng_state()}, fh)
            if average is not None:
                average.save(temp)
            (temp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    except FinetuneError as exc:
        # What a caller (train_reward_model) records for the run: the checkpoint to resume from.
        exc.result = {"checkpoint": str(previous[-1]) if previous else None,
                      "steps": int(previous[-1].name.removeprefix("step-")) if previous else 0}
        raise
    except OSError as exc:  # the checkpoints folder itself cannot be made
        raise FinetuneError(f"cannot write checkpoint {final}: {exc.strerror or exc}{kept}") from exc
    for old in list_checkpoints(out_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_best(out_dir: Path, model, step: int, val: dict) -> None:
    """best/ = the trainable weights of the best validation so far, with its step and metrics."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    with written_atomically(out_dir / "best", prefix=".tmp-best-", what="the best weights") as temp:
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
