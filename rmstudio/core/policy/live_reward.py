"""The live instant model as a run's reward, frozen at the start so the run is reproducible.

The live model (``reward.live``) refits as people label; a run must not optimise a moving
target, and its record must say what it optimised. So the reward is a snapshot:

- the window saves the live model's head as it is when Start is pressed (``snapshot_live_model``,
  milliseconds: the head only, the backbone is named by its ``base``) into a staging folder;
  the run moves it into its own folder (``REWARD_DIR``) when it begins (``reward_for_run``);
- ``rmstudio optimize --reward live`` (``LIVE``): the run fits an instant model on the project's
  labels itself, as the live model fits (its validation share and seed), on the policy's own
  backbone, and saves it into the run folder.

Either way ``TRAINED_ON_FILE`` next to the head says which labels trained it (the share and seed
of its split), so ``check_reward="auto"`` can fit a check on the others.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from rmstudio.core.errors import RmstudioError
from rmstudio.core.policy.auto_check import TRAINED_ON_FILE

LIVE = "live"
REWARD_DIR = "reward_model"
SNAPSHOTS = "live-snapshots"
"""Staging folder (in the project's runs folder) of snapshots a run has not taken yet."""


def live_title(pairs: int, fitted_at: float) -> str:
    """How the reward pickers name the live model: 'Live instant model (52 labels, fitted 14:05)'."""
    return f"Live instant model ({pairs} labels, fitted {time.strftime('%H:%M', time.localtime(fitted_at))})"


def _trained_on(live, status, source: str) -> dict:
    # A fit that validated on no pair, or cross-validated (``folds``: its final head then fits
    # every pair), trained on every label: say so (the automatic check refuses it).
    held_out = status.val_pairs and not getattr(status, "folds", 0)
    return {"val_fraction": live.val_fraction if held_out else 0.0, "seed": live.config.seed,
            "annotators": None, "much_better_margin": 1.0, "base": live.base, "labels": status.pairs,
            "source": source, "snapshot": True}


def snapshot_live_model(live, project_path: str | Path) -> Path:
    """Save the fitted head of ``live`` (a ``LiveInstantModel``) into a new staging folder."""
    from rmstudio.core.policy.run import runs_dir

    status, model = live.status, live.model
    if status is None or model is None or model.head is None:
        raise RmstudioError("the live instant model has not been fitted yet: label more pairs first")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(status.at))
    folder = runs_dir(project_path) / SNAPSHOTS / f"{stamp}-{time.time_ns() % 1_000_000:06d}"
    measured = {"val/accuracy": status.val_accuracy} if status.val_accuracy is not None else {}
    model.save(folder, metrics=measured)
    record = _trained_on(live, status, live_title(status.pairs, status.at))
    (folder / TRAINED_ON_FILE).write_text(json.dumps(record, indent=1))
    return folder


def _fit_now(project_path, policy: str, out: Path, device: str | None) -> None:
    from rmstudio.core.reward.live import MIN_PAIRS, LiveInstantModel

    live = LiveInstantModel(base=policy, device=device)
    if live.refresh(project_path) is None:
        raise RmstudioError(f"reward 'live' fits an instant model on the project's labels, and it has fewer "
                            f"than {MIN_PAIRS} labeled pairs: label more first")
    staged = snapshot_live_model(live, project_path)
    shutil.move(str(staged), str(out))


def reward_for_run(project_path: str | Path, reward: str, policy: str, run_folder: Path,
                   device: str | None = None) -> str | None:
    """The reward folder in ``run_folder`` that replaces ``reward`` when it is ``LIVE`` or a
    staged live snapshot (moved in); None when ``reward`` is used as it is. A resumed run keeps
    the snapshot it took at its first start."""
    out = Path(run_folder) / REWARD_DIR
    staged = Path(reward.strip()).expanduser()
    is_snapshot = staged.parent.name == SNAPSHOTS and (staged / TRAINED_ON_FILE).is_file()
    if reward.strip() != LIVE and not is_snapshot:
        return None
    if out.is_dir():  # a resumed run keeps its first snapshot; a newer staged one is dropped
        if is_snapshot:
            shutil.rmtree(staged, ignore_errors=True)
        return str(out)
    if is_snapshot:
        shutil.move(str(staged), str(out))
    else:
        _fit_now(project_path, policy, out, device)
    return str(out)


def check_live_reward(project_path: str | Path, reward: str) -> bool:
    """True when ``reward`` is the live model (checked here, before a run: enough labels)."""
    from rmstudio.core.reward.data import snapshot_pairs
    from rmstudio.core.reward.live import MIN_PAIRS
    from rmstudio.core.store.project import Project

    if reward.strip() != LIVE:
        return False
    with Project.open(project_path) as project:
        pairs = len(snapshot_pairs(project))
    if pairs < MIN_PAIRS:
        raise RmstudioError(f"reward 'live' fits an instant model on the project's labels: it has {pairs} "
                            f"labeled pairs and needs {MIN_PAIRS}")
    return True
