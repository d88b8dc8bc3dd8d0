"""Progress sinks drawn as tqdm bars on stderr, for the headless commands.

Each is a progress sink (``log(step, metrics)``, ``should_stop()``) plus ``close()``; tqdm hides a
bar by itself when stderr is no terminal (``disable=None``), so pipes and logs stay clean.
"""

from __future__ import annotations

import sys


class _BarSink:
    """What every bar sink shares: it never asks to stop, and closing is safe twice."""

    bar = None

    def should_stop(self) -> bool:
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TqdmSink(_BarSink):
    """One bar counting ``step`` (records, prompts, texts) towards an optional total."""

    def __init__(self, desc: str, unit: str, total: int | None = None):
        from tqdm import tqdm

        self.bar = tqdm(desc=desc, unit=unit, total=total, disable=None, dynamic_ncols=True, file=sys.stderr)

    def log(self, step: int, metrics: dict) -> None:
        if self.bar is not None:
            self.bar.update(max(0, step - self.bar.n))


class TrainProgress(_BarSink):
    """tqdm bars for reward training: feature extraction, then steps with the latest metrics."""

    def __init__(self):
        self.stage = None

    def log(self, step: int, metrics: dict) -> None:
        from tqdm import tqdm

        stage = metrics.get("stage", self.stage)
        if stage != self.stage and stage in ("features", "train"):
            self.close()
            total = metrics.get("total") or metrics.get("total_steps")
            self.bar = tqdm(desc="features" if stage == "features" else "training", total=total,
                            unit="texts" if stage == "features" else "steps", disable=None)
        self.stage = stage
        if self.bar is not None:
            done = metrics.get("done", step)
            self.bar.update(max(0, done - self.bar.n))
            shown = {k.split("/")[-1] if k.startswith("train/") else k: round(v, 3)
                     for k, v in metrics.items() if "/" in k and isinstance(v, float)}
            if shown:
                self.bar.set_postfix(shown, refresh=False)


class OptimizeProgress(_BarSink):
    """A tqdm bar of optimizer steps with the latest reward and KL (DPO: loss and accuracy) after
    it, fed by the run's progress reports (``RecorderCallback``: done/total_steps, train/...)."""

    SHOWN = {"train/reward": "reward", "train/kl": "kl", "train/loss": "loss",
             "rewards/accuracies": "acc", "rewards/margins": "margin"}

    def __init__(self, file=None, disable: bool | None = None):
        self.file = file or sys.stderr
        self.disable = disable  # None: shown only on a terminal, as tqdm decides

    def log(self, step: int, metrics: dict) -> None:
        from tqdm import tqdm

        if metrics.get("stage") == "load":  # loading a real policy takes a while before step 1
            print(f"loading the policy: {metrics.get('train_items', '?')} items to train on, "
                  f"{metrics.get('held_out_items', '?')} held out", file=self.file)
        if self.bar is None and metrics.get("stage") == "train":
            self.bar = tqdm(desc="optimizing", unit="steps", total=metrics.get("total_steps"),
                            initial=step, disable=self.disable, dynamic_ncols=True, file=self.file)
        if self.bar is None:
            return
        self.bar.update(max(0, metrics.get("done", step) - self.bar.n))
        shown = {name: round(metrics[key], 4) for key, name in self.SHOWN.items()
                 if isinstance(metrics.get(key), float)}
        if shown:
            self.bar.set_postfix(shown, refresh=False)


class CompareProgress(_BarSink):
    """A tqdm bar of sampled responses (both policies), its total taken from the first report."""

    def __init__(self):
        from tqdm import tqdm

        self.bar = tqdm(desc="sampling", unit="responses", disable=None, dynamic_ncols=True, file=sys.stderr)

    def log(self, step: int, metrics: dict) -> None:
        if metrics.get("total") and self.bar.total != metrics["total"]:
            self.bar.total = metrics["total"]
        if metrics.get("stage") == "score":
            self.bar.set_description("scoring", refresh=False)
        self.bar.update(max(0, metrics.get("done", step) - self.bar.n))
