"""Export a trained reward model: copy its folder somewhere the user chose, and say how to load it.

The folder a run saved is self-contained (an instant model: ``rmstudio_reward.json`` and its head;
a fine-tune: a plain Hugging Face folder with its tokenizer), so exporting is a copy. The copy goes
to a hidden sibling first and is renamed into place, so a failed copy never leaves half a model
where the user looks for one. A destination that already holds files is refused, never merged.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rmstudio.core.errors import RmstudioError

INSTANT_CONFIG = "rmstudio_reward.json"  # rmstudio.core.reward.instant_model.CONFIG_FILE (that imports torch)


class ExportError(RmstudioError):
    """A model folder that cannot be exported where the user asked."""


def model_kind(folder: str | Path) -> str:
    """'instant' (rmstudio's own format) or 'finetuned' (a Hugging Face model folder)."""
    return "instant" if (Path(folder) / INSTANT_CONFIG).is_file() else "finetuned"


def load_hint(folder: str | Path) -> str:
    """One line of Python that loads the model in ``folder``."""
    path = repr(str(folder))
    if model_kind(folder) == "instant":
        return f"Load it with: rmstudio.load_reward_model({path})"
    return (f"Load it with: rmstudio.load_reward_model({path}) or "
            f"AutoModelForSequenceClassification.from_pretrained({path})")


def default_export_name(folder: str | Path, run_id: int | None = None) -> str:
    """A folder name for an export: 'reward-model-run-7' (or '<kind>-reward-model' without a run)."""
    return f"reward-model-run-{run_id}" if run_id is not None else f"{model_kind(folder)}-reward-model"


def export_destination(picked: str | Path, folder: str | Path, run_id: int | None = None) -> Path:
    """Where an export goes when the user picked the folder ``picked``: that folder itself when it
    is empty or new, else a new folder inside it named by :func:`default_export_name`."""
    picked = Path(picked)
    if not picked.exists() or (picked.is_dir() and not any(picked.iterdir())):
        return picked
    return picked / default_export_name(folder, run_id)


def export_model(source: str | Path, destination: str | Path) -> Path:
    """Copy the model folder ``source`` to ``destination`` (new, or an empty folder); returns it."""
    source = Path(source).resolve()
    destination = Path(destination).expanduser().resolve()
    if not source.is_dir():
        raise ExportError(f"cannot export {source}: the model folder is missing (was the run's folder "
                          "deleted?)")
    if destination == source or source in destination.parents:
        raise ExportError(f"cannot export {source} into itself ({destination}): choose a folder outside it")
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ExportError(f"{destination} is not empty: choose a new or empty folder (nothing was copied)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.parent / f".{destination.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        shutil.copytree(source, partial, symlinks=False)
        if destination.exists():
            destination.rmdir()  # empty, checked above
        os.replace(partial, destination)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ExportError(f"cannot export to {destination}: {exc.strerror or exc}") from exc
    return destination
