"""Reward training in a child process: the same code, with progress as JSON lines on stdout.

    python -m rmstudio.core.reward.child PROJECT CONFIG_JSON

The GUI runs heavy training this way (supervised from a QThread-free QProcess), so a native
crash or an out-of-memory kill ends the child, not the window. Writing a line ``stop`` to the
child's stdin asks it to stop at the next safe point. Events, one JSON object per line:
``{"event": "progress", "step": n, "metrics": {...}}``, then ``{"event": "finished",
"result": {...}}`` or ``{"event": "failed", "message": "...", "traceback": "..."}``.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from dataclasses import fields

from rmstudio.core.reward.features import FeatureSpec
from rmstudio.core.reward.instant_config import InstantConfig
from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model


def config_from_dict(data: dict) -> RewardTrainConfig:
    """Inverse of dataclasses.asdict for RewardTrainConfig (unknown keys are an error)."""
    known = {f.name for f in fields(RewardTrainConfig)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
    data = dict(data)
    if isinstance(data.get("features"), dict):
        data["features"] = FeatureSpec(**{k: tuple(v) if isinstance(v, list) else v
                                          for k, v in data["features"].items()})
    if isinstance(data.get("instant"), dict):
        data["instant"] = InstantConfig(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in data["instant"].items()})
    return RewardTrainConfig(**data)


class StdioSink:
    """Progress as JSON lines on stdout; a 'stop' line on stdin sets the stop flag."""

    def __init__(self, out=None, stdin=None):
        self.out = out or sys.stdout
        self.stop = threading.Event()
        self.lock = threading.Lock()
        source = stdin or sys.stdin
        threading.Thread(target=self._watch, args=(source,), daemon=True).start()

    def _watch(self, source) -> None:
        # A closed stdin (/dev/null, a finished pipe) is not a request to stop; a parent that
        # dies is noticed when writing to stdout fails.
        for line in source:
            if line.strip() == "stop":
                self.stop.set()
                return

    def emit(self, event: dict) -> None:
        with self.lock:
            self.out.write(json.dumps(event, default=str) + "\n")
            self.out.flush()

    def log(self, step: int, metrics: dict) -> None:
        self.emit({"event": "progress", "step": step, "metrics": metrics})

    def should_stop(self) -> bool:
        return self.stop.is_set()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sink = StdioSink()
    try:
        project, raw = argv
        result = train_reward_model(project, config_from_dict(json.loads(raw)), sink)
    except Exception as exc:  # noqa: BLE001 - everything is reported to the parent
        sink.emit({"event": "failed", "message": str(exc) or type(exc).__name__,
                   "traceback": traceback.format_exc()})
        return 1
    sink.emit({"event": "finished", "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
