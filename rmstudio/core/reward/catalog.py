"""The reward models a project has made: what the Score and Optimize pickers offer.

A finished (or cancelled) reward run that recorded a ``model`` artifact whose folder still
exists is one entry, newest first, with what a person needs to choose: method, validation
accuracy, when, and the rewards its validation pairs got (to place a new score among them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rmstudio.core.runs.store import list_runs, run_artifacts
from rmstudio.core.store.project import Project


@dataclass
class RewardModelEntry:
    run_id: int
    path: str
    method: str
    base: str
    status: str
    finished_at: str | None
    val_accuracy: float | None = None
    rewards_chosen: list[float] = field(default_factory=list)
    """Validation rewards of the chosen responses (empty when the run measured none)."""
    rewards_rejected: list[float] = field(default_factory=list)

    @property
    def title(self) -> str:
        measured = f", {self.val_accuracy:.1%} val. accuracy" if self.val_accuracy is not None else ""
        return f"Run #{self.run_id}: {self.method} on {self.base}{measured}"


def reward_models(project: Project) -> list[RewardModelEntry]:
    """Every usable reward model of ``project``, newest first."""
    entries = []
    for run in reversed(list_runs(project, "reward")):
        if run["status"] not in ("finished", "cancelled"):
            continue
        artifacts = run_artifacts(project, run["id"])
        models = [a["path"] for a in artifacts if a["kind"] == "model" and Path(a["path"]).is_dir()]
        if not models:
            continue
        entry = RewardModelEntry(run["id"], models[-1], run["config"].get("method", "?"),
                                 run["config"].get("base", "?"), run["status"], run.get("finished_at"))
        _read_evaluation(entry, [a["path"] for a in artifacts if a["kind"] == "evaluation"])
        entries.append(entry)
    return entries


def _read_evaluation(entry: RewardModelEntry, paths: list[str]) -> None:
    for path in reversed(paths):
        try:
            result = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a missing or damaged result file only loses the figures, not the model
        evaluation = result.get("evaluation") or {}
        accuracy = (result.get("metrics") or {}).get("val/accuracy", evaluation.get("accuracy"))
        entry.val_accuracy = float(accuracy) if isinstance(accuracy, (int, float)) else None
        entry.rewards_chosen = [float(x) for x in evaluation.get("rewards_chosen") or []]
        entry.rewards_rejected = [float(x) for x in evaluation.get("rewards_rejected") or []]
        return
