"""``check_reward="auto"``: a check reward fitted for the run, on labels the reward never saw.

The guard's check is worth something only where it errs differently from the reward the policy
optimises. A head fitted on the same labels shares the reward's mistakes (it learned the same
quirks of the same pairs), so "auto" fits an instant model only on labels the reward did NOT
train on:

- a reward model of this project (a reward run's ``model/``, or a live-model snapshot that
  wrote ``TRAINED_ON_FILE``): the labeled pairs of its validation prompts, the same split its
  training made (``split_by_prompt`` with its ``val_fraction`` and ``seed``, its annotators);
- a ``module:function`` reward (a rule, no labels): every labeled pair.

A reward trained on every label (``val_fraction`` 0, or a run that cross-validated and then fitted
its final head on every pair: its result says 0 validation pairs) leaves nothing independent to fit on, and
"auto" refuses (an other-fold head of the same labels would still have seen what the reward saw:
it would agree with the reward for the wrong reason, and the guard would miss the hacking it is
there to catch). Labels added after the reward was trained are not used either: their prompts
may be ones the reward trained on. Below ``MIN_CHECK_PAIRS`` such pairs "auto" refuses too.

The check is an instant head on the reward's own backbone (its cached features) when it has
one, else on the policy's. It is saved in the run folder (``CHECK_DIR``) with ``CHECK_FILE``
saying which labels it used, so a resumed run reuses it and the run stays reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path

from rmstudio.core.errors import RmstudioError
from rmstudio.core.store.project import Project

AUTO = "auto"
MIN_CHECK_PAIRS = 8
"""Fewest unseen labeled pairs an automatic check is fitted on (as the live model's minimum)."""
SUGGESTED_LABELS = 40
"""Labeled pairs from which the Optimize page turns "auto" on by default."""
TRAINED_ON_FILE = "trained_on.json"
"""In a reward model folder that is no reward run's: which labels it trained on (``split``)."""
CHECK_DIR = "check_model"
CHECK_FILE = "check.json"


class AutoCheckError(RmstudioError):
    pass


def reward_split(project: Project, reward: str) -> dict | None:
    """How the reward ``reward`` chose its training labels: ``{"val_fraction", "seed",
    "annotators", "much_better_margin", "base", "source"}``, or None for a function reward
    (it trained on no label). AutoCheckError when it cannot be told."""
    from rmstudio.core.reward.catalog import reward_models

    folder = Path(reward.strip()).expanduser()
    if not folder.is_dir():
        return None  # module:function: rewards.check_reward refuses anything else
    record = folder / TRAINED_ON_FILE
    if record.is_file():
        return json.loads(record.read_text())
    for entry in reward_models(project):
        if Path(entry.path).resolve() == folder.resolve():
            config = project.conn.execute("SELECT config FROM runs WHERE id = ?", (entry.run_id,)).fetchone()
            config = json.loads(config[0])
            # A run that validated on no pairs (a share of 0, or cross-validation, whose final
            # head fits every pair) trained on every label, whatever its share says.
            share = 0.0 if _validated_on(project, entry.run_id) == 0 else config.get("val_fraction", 0.1)
            return {"val_fraction": share, "seed": config.get("seed", 0),
                    "annotators": config.get("annotators"),
                    "much_better_margin": config.get("much_better_margin", 1.0),
                    "base": config.get("base"), "source": f"reward run {entry.run_id}"}
    raise AutoCheckError(f"check_reward 'auto': cannot tell which labels {folder} trained on (it is no "
                         "reward run of this project): name a check reward instead")


def _validated_on(project: Project, run_id: int) -> int | None:
    """The validation pairs a reward run's result says it held out (None when it says nothing)."""
    from rmstudio.core.runs.store import run_artifacts

    for artifact in reversed(run_artifacts(project, run_id)):
        path = Path(artifact["path"])
        if artifact["kind"] == "evaluation" and path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8")).get("val_pairs")
            except ValueError:
                return None
    return None


def unseen_pairs(project: Project, reward: str) -> tuple[list, dict]:
    """(the labeled pairs ``reward`` did not train on, a record of which and why)."""
    from rmstudio.core.reward.data import snapshot_pairs, split_by_prompt

    split = reward_split(project, reward)
    if split is None:
        pairs = snapshot_pairs(project)
        record = {"labels": "all", "why": "the reward is a function: it trained on no label"}
    else:
        if not split.get("val_fraction"):
            source = split.get("source", reward)
            raise AutoCheckError(f"check_reward 'auto': the reward ({source}) trained on "
                                 "every label (no validation share), so no label is left for an independent "
                                 "check: train it with a validation share, or name a check reward")
        everything = snapshot_pairs(project, split.get("annotators"), split.get("much_better_margin", 1.0))
        pairs = split_by_prompt(everything, split["val_fraction"], split["seed"])[1]
        record = {"labels": "validation", "why": f"the validation prompts of {split.get('source', reward)} "
                  f"(share {split['val_fraction']}, seed {split['seed']})"}
    if len(pairs) < MIN_CHECK_PAIRS:
        raise AutoCheckError(f"check_reward 'auto': only {len(pairs)} labeled pairs that the reward did not "
                             f"train on ({record['why']}); it needs {MIN_CHECK_PAIRS}: label more, or name "
                             "a check reward")
    record.update({"pairs": len(pairs), "comparison_ids": sorted({p.comparison_id for p in pairs}),
                   "base": (split or {}).get("base")})
    return pairs, record


def fit_auto_check(project_path: str | Path, reward: str, policy: str, run_folder: Path,
                   device: str | None = None) -> tuple[str, dict]:
    """(the check model's folder, what it used): fitted and saved into ``run_folder``, or the
    one a previous start of the same run saved there (a resumed run keeps its check)."""
    from rmstudio.core.progress import NullSink
    from rmstudio.core.reward.features import FeatureSpec
    from rmstudio.core.reward.instant import train_instant
    from rmstudio.core.reward.instant_model import InstantRewardModel, response_features
    from rmstudio.core.reward.instant_run import pair_arrays

    folder = Path(run_folder) / CHECK_DIR
    if (folder / CHECK_FILE).is_file():
        return str(folder), json.loads((folder / CHECK_FILE).read_text())
    with Project.open(project_path) as project:
        pairs, record = unseen_pairs(project, reward)
        base = record.get("base") or policy
        model = InstantRewardModel.from_base(base, FeatureSpec(), device=device)
        vectors = response_features(project, model, pairs, NullSink())
    fitted = train_instant(pair_arrays(pairs, vectors), None)
    model.head = fitted.head
    model.save(folder, metrics={f"train/{k}": v for k, v in fitted.train_metrics.items()})
    record = {**record, "base": base, "train_accuracy": fitted.train_metrics.get("accuracy")}
    (folder / CHECK_FILE).write_text(json.dumps(record, indent=1))
    return str(folder), record
