"""The live reward model: an instant head that refits itself as labels arrive.

The backbone stays loaded between refreshes and features come from the project's cache, so a
refresh only embeds responses it has not seen and refits the head: about a second once the
cache is warm. Nothing is written to the runs table (a live model is a moving target); the
Train workspace saves a run when the user wants one to keep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.store.project import Project
from rmstudio.core.reward.data import snapshot_pairs, split_by_prompt
from rmstudio.core.reward.features import FeatureSpec
from rmstudio.core.reward.instant_config import InstantConfig

MIN_PAIRS = 8  # below this a head is noise; say so instead of pretending
POOL_BATCH = 64  # unlabeled comparisons embedded per refit for active learning (~2 s each on a CPU)


@dataclass
class LiveStatus:
    pairs: int
    val_pairs: int
    val_accuracy: float | None
    train_accuracy: float | None
    seconds: float
    at: float


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
        """Refit on the project's current labels; None when there are too few pairs yet."""
        from rmstudio.core.reward.instant import train_instant
        from rmstudio.core.reward.instant_model import InstantRewardModel, response_features
        from rmstudio.core.reward.instant_run import pair_arrays as _pair_arrays

        sink = sink or NullSink()
        started = time.perf_counter()
        with Project.open(project_path) as project:
            pairs = snapshot_pairs(project)
            if len(pairs) < MIN_PAIRS:
                return None
            if self.model is None:
                self.model = InstantRewardModel.from_base(self.base, self.spec, device=self.device)
            train, val = split_by_prompt(pairs, self.val_fraction, self.config.seed)
            if not train:
                train, val = pairs, []
            vectors = response_features(project, self.model, pairs, sink)
        if sink.should_stop():
            return self.status
        fitted = train_instant(_pair_arrays(train, vectors), _pair_arrays(val, vectors) if val else None,
                               self.config)
        self.model.head = fitted.head
        self.status = LiveStatus(pairs=len(pairs), val_pairs=len(val),
                                 val_accuracy=fitted.val_metrics.get("accuracy"),
                                 train_accuracy=fitted.train_metrics.get("accuracy"),
                                 seconds=time.perf_counter() - started, at=time.time())
        return self.status

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
