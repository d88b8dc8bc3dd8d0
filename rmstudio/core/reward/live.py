"""The live reward model: an instant head that refits itself as labels arrive.

The backbone stays loaded between refreshes and features come from the project's cache, so a
refresh only embeds responses it has not seen and refits the head (an exact solve of a few
milliseconds per head on a small project, cross-validation by prompt included: well under a
second once the cache is warm; ``LiveStatus.timings`` says where the time went). Nothing is
written to the runs table (a live model is a moving target); the Train workspace saves a run
when the user wants one to keep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.store.project import Project
from rmstudio.core.reward.cross_validation import cross_validate_instant, plan_split
from rmstudio.core.reward.data import snapshot_pairs
from rmstudio.core.reward.features import FeatureSpec
from rmstudio.core.reward.instant_config import InstantConfig

MIN_PAIRS = 8  # below this a head is noise; say so instead of pretending
POOL_BATCH = 64  # unlabeled comparisons embedded per refit for active learning (~2 s each on a CPU)


@dataclass
class LiveStatus:
    pairs: int
    val_pairs: int
    val_accuracy: float | None
    """Held-out accuracy; on a small project the cross-validated mean over ``folds`` folds."""
    train_accuracy: float | None
    seconds: float
    at: float
    val_accuracy_std: float | None = None
    """The spread of the fold accuracies (cross-validation only)."""
    folds: int = 0
    timings: dict = field(default_factory=dict)
    """Seconds per stage of the refresh: read (labels), load (the backbone, first refresh only),
    features (embedding responses not in the cache), fit (the head, cross-validation included)."""


class LiveInstantModel:
    def __init__(self, base: str = "embedded", spec: FeatureSpec | None = None,
                 config: InstantConfig | None = None, device: str | None = None, val_fraction: float = 0.2):
        self.base = base
        self.spec = spec or FeatureSpec()
        self.config = config or InstantConfig()
        self.device = device
        self.val_fraction = val_fraction
        self.model = None  # InstantRewardModel, loaded on the first refresh (seconds)
        self.status: LiveStatus | None = None

    def refresh(self, project_path: str | Path, sink: ProgressSink | None = None) -> LiveStatus | None:
        """Refit on the project's current labels; None when there are too few pairs yet.

        The validation figure comes from the same plan a Train run uses (``plan_split``): the
        held-out share when it holds 30 pairs or more, else cross-validation by prompt."""
        from rmstudio.core.reward.instant_model import InstantRewardModel, response_features

        sink = sink or NullSink()
        started = time.perf_counter()
        timings: dict[str, float] = {}
        with Project.open(project_path) as project:
            pairs = snapshot_pairs(project)
            if len(pairs) < MIN_PAIRS:
                return None
            timings["read"] = time.perf_counter() - started
            if self.model is None:
                self.model = InstantRewardModel.from_base(self.base, self.spec, device=self.device)
                timings["load"] = time.perf_counter() - started - sum(timings.values())
            plan = plan_split(pairs, self.val_fraction, self.config.seed)
            mark = time.perf_counter()
            vectors = response_features(project, self.model, pairs, sink)
            timings["features"] = time.perf_counter() - mark
        if sink.should_stop():
            return self.status
        mark = time.perf_counter()
        status = self._fit(plan, vectors)
        timings["fit"] = time.perf_counter() - mark
        timings["other"] = time.perf_counter() - started - sum(timings.values())  # opening, closing
        self.status = LiveStatus(pairs=len(pairs), seconds=time.perf_counter() - started, at=time.time(),
                                 timings=timings, **status)
        return self.status

    def _fit(self, plan, vectors) -> dict:
        """Fit the head on ``plan`` and return the LiveStatus fields it measured."""
        import dataclasses

        from rmstudio.core.reward.instant import l2_by_folds, train_instant
        from rmstudio.core.reward.instant_run import pair_arrays

        if not plan.cross_validated:
            train, val = plan.train or plan.val, plan.val if plan.train else []
            fitted = train_instant(pair_arrays(train, vectors), pair_arrays(val, vectors) if val else None,
                                   self.config)
            self.model.head = fitted.head
            return {"val_pairs": len(val), "val_accuracy": fitted.val_metrics.get("accuracy"),
                    "train_accuracy": fitted.train_metrics.get("accuracy")}
        arrays = pair_arrays(plan.train, vectors)
        groups = [p.prompt.text for p in plan.train]
        # The strength is picked once on all pairs and reused per fold: a refit after each label
        # must stay well under a second; a Train run picks it inside each fold instead.
        l2, _ = l2_by_folds(arrays, groups, self.config, folds=plan.folds)
        summary = cross_validate_instant(arrays, groups, list(plan.fold_of), plan.folds, self.config, l2=l2)
        fitted = train_instant(arrays, None, dataclasses.replace(self.config, l2_grid=(l2,)))
        self.model.head = fitted.head
        mean = summary["accuracy_mean"]
        return {"val_pairs": len(plan.train), "val_accuracy": None if mean != mean else mean,
                "val_accuracy_std": summary["accuracy_std"], "folds": plan.folds,
                "train_accuracy": fitted.train_metrics.get("accuracy")}

    def embed_unlabeled(self, project_path: str | Path, limit: int = POOL_BATCH,
                        sink: ProgressSink | None = None) -> int:
        """Embed the responses of up to ``limit`` unlabeled comparisons that have no cached
        features yet, so the active learning orders have candidates; a few per refit, so the
        pool grows while the team labels instead of one long pause. The vectors go to the
        project's feature cache exactly as ``refresh`` stores the labeled ones."""
        from rmstudio.core.labeling.active import unembedded_comparisons
        from rmstudio.core.reward.data import TrainingPair
        from rmstudio.core.reward.instant_model import response_features

        if self.model is None:
            return 0
        with Project.open(project_path) as project:
            found = [project.comparison(cid) for cid in
                     unembedded_comparisons(project, self.model.feature_key, limit)]
            pairs = [TrainingPair(c.id, c.prompt_id, c.prompt, c.response_a_id, c.response_a,
                                  c.response_b_id, c.response_b) for c in found]
            if pairs:
                response_features(project, self.model, pairs, sink or NullSink())
        return len(pairs)

    def informative(self, project_path: str | Path, strategy: str):
        """The active learning order under the current head (an ActiveOrder, held in memory)."""
        from rmstudio.core.labeling.active import ActiveOrder, informative_order

        if self.model is None or self.model.head is None:
            return ActiveOrder(strategy)
        with Project.open(project_path) as project:
            return informative_order(project, self.model, strategy)
