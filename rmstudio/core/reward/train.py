"""Train a reward model on a project's labels: one entry point for every method.

    train_reward_model(project_path, RewardTrainConfig(method="instant"), sink=...)

Takes an immutable snapshot of the labels at start, splits it by prompt, trains, evaluates on
the validation split and writes the model next to the project (``<project>.runs/run-N/model``).
``run_reward`` is the work of the reward run kind (``reward/kind.py``): it writes the run's
metrics, stage and artifacts only through its recorder, so the same code runs in this process
(``train_reward_model``: the CLI, tests) and in a child process the window watches.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.store.project import Project
from rmstudio.core.runs.launch import run_in_process
from rmstudio.core.runs.recorder import ProjectRecorder, RunRecorder
from rmstudio.core.reward.cross_validation import MODES as CV_MODES, SplitPlan, plan_split
from rmstudio.core.reward.cross_validation import small_validation_warning
from rmstudio.core.reward.data import pairs_from_file, snapshot_pairs, snapshot_ratings
from rmstudio.core.reward.evaluate import evaluate_pairs, evaluate_ratings
from rmstudio.core.reward.features import FeatureSpec
from rmstudio.core.reward.instant_config import InstantConfig
from rmstudio.core.reward.instant_run import (
    train_instant_cv_run, train_instant_regression_run, train_instant_run, with_instant_teacher,
)

METHODS = ("instant", "lora", "full")
OBJECTIVES = ("pairwise", "regression")
UNITS = {"pairwise": "pairs", "regression": "rated responses"}  # what an objective trains on


@dataclass
class RewardTrainConfig:
    method: str = "instant"
    """'instant' (a head on frozen cached features, seconds), 'lora' or 'full' (fine-tunes)."""

    objective: str = "pairwise"
    """'pairwise': Bradley-Terry on the preference labels. 'regression': mean squared error on
    ratings (rankings imported with ratings or scores), the target being the rating
    standardised over the training split; the reward then predicts the rating."""

    base: str = "embedded"
    """The backbone: 'embedded' (SmolLM2-135M-Instruct), a model folder, a .gguf file or a hub id."""

    val_fraction: float = 0.1
    """Share of prompts held out for validation (no prompt is in both splits)."""

    seed: int = 0
    """Fixes the split and the training randomness."""

    cross_validation: str = "auto"
    """'auto': an instant pairwise run whose held-out share would give fewer than 30 validation
    pairs (``cross_validation.MIN_VAL_PAIRS``) cross-validates by prompt instead (5 folds, fewer
    with fewer prompts), reports the mean and spread over the folds and fits the saved model on
    every pair. 'off': always the held-out share. LoRA/full runs always use the share."""

    annotators: list[str] | None = None
    """Train only on these annotators' labels (None: everyone's)."""

    much_better_margin: float = 1.0
    """The margin a "much better" label asks for between the two rewards."""

    device: str | None = None
    """'cpu', 'cuda', 'mps' or None for the best available."""

    monitor_file: str | None = None
    """A labeled preference file (any format the importer reads) that LoRA/full score at every
    validation, logged as test/loss and test/accuracy: a held-out curve to watch while training.
    Nothing is chosen by it (the exported step is chosen on validation)."""

    features: FeatureSpec = field(default_factory=FeatureSpec)
    instant: InstantConfig = field(default_factory=InstantConfig)
    finetune: dict = field(default_factory=dict)
    """Settings for LoRA/full (see rmstudio.core.reward.finetune.FinetuneConfig)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be at least 0 and below 1, got {self.val_fraction}")
        if self.cross_validation not in CV_MODES:
            raise ValueError(f"cross_validation must be one of {', '.join(CV_MODES)}, "
                             f"got {self.cross_validation!r}")
        if self.much_better_margin < 0:
            raise ValueError("much_better_margin must not be negative")
        if self.method != "instant":
            finetune_config(self)  # bad fine-tune settings are refused here, before any work


def runs_dir(project_path: str | Path) -> Path:
    path = Path(project_path)
    return path.with_name(path.stem + ".runs")


def run_split(items: list, config: RewardTrainConfig) -> SplitPlan:
    """The split a run with ``config`` uses on ``items``: the preview and the run both ask here."""
    return plan_split(items, config.val_fraction, config.seed, config.method, config.objective,
                      config.cross_validation)


def split_preview(project: Project, config: RewardTrainConfig) -> dict:
    """What training would use, shown before it starts (``ratings``: rated responses, which the
    regression objective trains on; ``train``/``val`` count what ``config.objective`` uses;
    ``folds`` > 0 when the run cross-validates, then ``train`` is every item and ``val`` 0)."""
    pairs = snapshot_pairs(project, config.annotators, config.much_better_margin)
    ratings = snapshot_ratings(project, config.annotators)
    items = ratings if config.objective == "regression" else pairs
    plan = run_split(items, config)
    train, val = plan.train, plan.val
    return {"pairs": len(pairs), "ratings": len(ratings), "train": len(train), "val": len(val),
            "ties": sum(p.target == 0.5 for p in pairs), "folds": plan.folds,
            "val_decided": sum(getattr(p, "target", 1.0) > 0.5 for p in val),
            "warning": small_validation_warning(plan, UNITS[config.objective]) if items else None,
            "prompts_train": len({p.prompt_id for p in train}),
            "prompts_val": len({p.prompt_id for p in val})}


def _training_items(project: Project, config: RewardTrainConfig) -> list:
    """The labeled pairs, or for the regression objective the rated responses; a clear error
    when there are none."""
    from rmstudio.core.errors import RmstudioError

    if config.objective == "regression":
        items = snapshot_ratings(project, config.annotators)
        if len(items) < 2:
            raise RmstudioError("there are no ratings to regress on: the regression objective trains on "
                                "rankings imported with ratings or scores (a 'ratings' or 'scores' list, "
                                "or a 'rating'/'score' per response); train pairwise on preference labels")
        return items
    items = snapshot_pairs(project, config.annotators, config.much_better_margin)
    if not items:
        raise RmstudioError("there are no labeled pairs to train on: label some pairs first "
                            "(a, b or tie; both-bad and skips do not train)")
    return items


def check_can_train(project_path: str | Path, config: RewardTrainConfig) -> None:
    """Refuse at once (before a run is recorded) when there is nothing to train on."""
    with Project.open(project_path) as project:
        _training_items(project, config)


def resumed_run(project_path: str | Path, config: RewardTrainConfig) -> int | None:
    """The run a fine-tune config continues (``finetune.resume`` names its folder), else None."""
    resume_from = config.finetune.get("resume") if config.method != "instant" else None
    if not resume_from:
        return None
    with Project.open(project_path) as project:
        return _run_id_of(project, Path(resume_from))


def run_reward(project_path: str | Path, config: RewardTrainConfig, recorder: RunRecorder) -> dict:
    """The reward run kind's work: the launcher has begun (or resumed) the run on ``recorder``,
    which is all this writes through (metrics, stage, artifacts).

    Under ``accelerate launch`` with several processes only rank 0 gets here with a recording
    recorder and opens the project; it hands the other ranks what to train on (``_follow_main``),
    they fine-tune with it and record nothing (see ``reward/ranks.py``). An instant run is rank
    0's alone."""
    from rmstudio.core.reward.ranks import current

    ranks = current(cpu=config.device == "cpu")
    if not ranks.is_main:
        return _follow_main(config, recorder, ranks)
    with Project.open(project_path) as project:
        plan = run_split(_training_items(project, config), config)
        train, val = plan.train, plan.val
        regression = config.objective == "regression"
        if regression:  # the target is the rating standardised over the training split
            values = np.array([it.rating for it in train] or [0.0])
            scale = (float(values.mean()), float(values.std()) or 1.0)
        # Read before any work: a bad file fails now, not after the teacher's feature pass.
        monitor = pairs_from_file(config.monitor_file) if config.monitor_file and config.method != "instant" else []
        resume_from = config.finetune.get("resume") if config.method != "instant" else None
        # A resumed fine-tune continues in its own folder (same split: same seed).
        out_dir = Path(resume_from) if resume_from else runs_dir(project_path) / f"run-{recorder.run_id}"
        out_dir.mkdir(parents=True, exist_ok=True)
        unit = "responses" if regression else "pairs"
        warning = small_validation_warning(plan, UNITS[config.objective])
        how = (f"cross-validating in {plan.folds} folds by prompt…" if plan.cross_validated else
               f"validating on {len(val):,}…" + (f" Warning: {warning}." if warning else ""))
        recorder.log(0, {"stage": "split", "train_pairs": len(train), "val_pairs": len(val),
                         "message": f"Training {config.method} on {len(train):,} {unit}, {how}"})
        started = time.perf_counter()
        try:
            if config.method == "instant":
                ranks.share(None)  # nothing for the other ranks to do
                if regression:
                    result = train_instant_regression_run(project, config, train, val, scale, out_dir,
                                                          recorder)
                elif plan.cross_validated:
                    result = train_instant_cv_run(project, config, plan, out_dir, recorder)
                else:
                    result = train_instant_run(project, config, train, val, out_dir, recorder)
            else:
                taught = (with_instant_teacher(project, config, train, val, recorder)
                          if finetune_config(config).distill_weight and not regression else train)
                if ranks.several:  # rank 0 alone reads the project (and writes the teacher's features)
                    ranks.share(None if taught is None else
                                {"run_id": recorder.run_id, "train": taught, "val": val,
                                 "out_dir": str(out_dir), "resume": bool(resume_from), "monitor": monitor,
                                 "scale": scale if regression else (0.0, 1.0)})
                result = (_train_finetune(config, taught, val, out_dir, recorder, resume=bool(resume_from),
                                          monitor=monitor, scale=scale if regression else (0.0, 1.0))
                          if taught is not None else
                          {"status": "cancelled", "method": config.method, "steps": 0, "total_steps": 0,
                           "checkpoint": None, "model_dir": "", "metrics": {}, "evaluation": {}})
        except BaseException as exc:
            kept = getattr(exc, "result", None) or {}  # a diverged fine-tune keeps its best weights
            if kept.get("model_dir"):
                recorder.artifact("model", kept["model_dir"], {"method": config.method,
                                                               "step": kept.get("best_step")})
            if kept.get("checkpoint"):
                recorder.artifact("checkpoint", kept["checkpoint"], {"step": kept.get("steps")})
            raise
        result["seconds"] = time.perf_counter() - started
        if warning:
            result["validation_warning"] = warning
        result["run_id"] = recorder.run_id
        (out_dir / "result.json").write_text(json.dumps(result, indent=1, default=str))
        if result.get("model_dir"):
            recorder.artifact("model", result["model_dir"], {"method": config.method})
        if result.get("checkpoint"):
            recorder.artifact("checkpoint", result["checkpoint"], {"step": result.get("steps")})
        recorder.artifact("evaluation", str(out_dir / "result.json"))
        return result


def _follow_main(config: RewardTrainConfig, recorder: RunRecorder, ranks) -> dict:
    """A rank other than 0: train on what rank 0 read from the project, record nothing."""
    plan = ranks.share()
    if plan is None:  # an instant run, or cancelled before the fine-tune began
        return {"status": "skipped", "rank": ranks.rank, "run_id": None}
    recorder.run_id = plan["run_id"]
    result = _train_finetune(config, plan["train"], plan["val"], Path(plan["out_dir"]), recorder,
                             resume=plan["resume"], monitor=plan["monitor"], scale=tuple(plan["scale"]))
    result["rank"] = ranks.rank
    return result


def train_reward_model(project_path: str | Path, config: RewardTrainConfig | None = None,
                       sink: ProgressSink | None = None) -> dict:
    """Train in this process and record the run in the project (the CLI and tests; the window
    runs the same kind in a child process). Under ``accelerate launch`` with several processes
    only rank 0 opens the project and records; the others train with a no-op ``RunRecorder``
    and return their own result (``rank`` > 0)."""
    from rmstudio.core.reward.finetune_config import FinetuneError
    from rmstudio.core.reward.kind import REWARD
    from rmstudio.core.reward.ranks import current

    config = config or RewardTrainConfig()
    ranks = current(cpu=config.device == "cpu")
    if not ranks.is_main:
        try:
            return run_reward(project_path, config, RunRecorder())
        except FinetuneError as exc:
            if getattr(exc, "result", None) is None:  # this rank's own failure (out of memory)
                raise
            # A divergence every rank saw at the same step: rank 0 reports and records it; leaving
            # with an error here would make the launcher end rank 0 while it records the run.
            return {"status": "failed", "rank": ranks.rank, "run_id": None, "error": str(exc)}

    recorder = ProjectRecorder(project_path, sink or NullSink())
    try:
        return run_in_process(REWARD, project_path, config or RewardTrainConfig(), recorder)
    finally:
        recorder.close()


def _run_id_of(project: Project, folder: Path) -> int:
    """The run a ``run-N`` folder belongs to; refuses anything else."""
    from rmstudio.core.errors import RmstudioError

    name = folder.name
    if not (name.startswith("run-") and name[4:].isdigit() and folder.is_dir()):
        raise RmstudioError(f"cannot resume from {folder}: not a run folder of this project")
    run_id = int(name[4:])
    row = project.conn.execute("SELECT kind FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None or row[0] != "reward":
        raise RmstudioError(f"cannot resume from {folder}: run {run_id} is not a reward run of this project")
    return run_id


def finetune_config(config: RewardTrainConfig):
    """The FinetuneConfig of a LoRA/full run (raises ValueError on a bad setting)."""
    from dataclasses import fields

    from rmstudio.core.reward.finetune_config import FinetuneConfig

    settings = {k: v for k, v in config.finetune.items() if k != "resume"}
    known = {f.name for f in fields(FinetuneConfig)} - {"method", "objective", "seed", "device"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown fine-tune setting {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(sorted(known))}")
    return FinetuneConfig(method=config.method, objective=config.objective, seed=config.seed,
                          device=config.device, **settings)


def _train_finetune(config, train, val, out_dir: Path, sink, resume: bool = False, monitor=(),
                    scale=(0.0, 1.0)) -> dict:
    from rmstudio.core.reward.finetune import train_finetune
    from rmstudio.core.reward.scoring import load_reward_model

    ft_config = finetune_config(config)
    result = train_finetune(config.base, train, val, ft_config, out_dir, sink, resume=resume,
                            monitor_pairs=monitor, rating_scale=scale)
    result["method"] = config.method
    result["train_pairs"], result["val_pairs"] = len(train), len(val)
    result["metrics"] = {**{f"train/{k}": v for k, v in (result.get("train") or {}).items()},
                         **{f"val/{k}": v for k, v in (result.get("val") or {}).items()}}
    result["model_dir"] = result.get("model_dir") or ""
    if result["status"] == "finished" and val and _is_main():  # rank 0 evaluates the export
        sink.log(result["steps"], {"stage": "evaluate", "message": "Evaluating the exported model…"})
        scorer = load_reward_model(result["model_dir"], device=config.device)
        stop = _StopOnly(sink)
        if config.objective == "regression":
            predicted = scorer.score_texts([it.prompt for it in val], [it.response for it in val], sink=stop)
        else:
            r_c, r_r = scorer.score_pairs(val, stop)
        if sink.should_stop():  # cancelled while scoring: the model is whole, its evaluation is not
            result["evaluation"] = {}
            result["evaluation_skipped"] = "cancelled"
        elif config.objective == "regression":
            # the evaluation reads the reward as the standardised rating: undo the probe's offset
            mean, std = result["rating_mean"], result["rating_std"]
            result["evaluation"] = evaluate_ratings(val, (predicted * std + mean - scale[0]) / scale[1],
                                                    scale[0], scale[1])
        else:
            result["evaluation"] = evaluate_pairs(val, r_c, r_r)
    return result


def _is_main() -> bool:
    from rmstudio.core.reward.ranks import current

    return current().is_main


class _StopOnly:
    """Passes a cancel through to a scoring loop without its progress (not training metrics)."""

    def __init__(self, sink):
        self.sink = sink

    def log(self, step: int, metrics: dict) -> None:
        pass

    def should_stop(self) -> bool:
        return self.sink.should_stop()
