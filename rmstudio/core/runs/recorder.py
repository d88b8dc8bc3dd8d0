"""The run recorder: the one thing a run writes through.

A run reports everything through its recorder: ``log(step, metrics)`` (numbers under names with
a slash, like ``train/loss``, are recorded; ``stage`` is the text a window shows: "features",
"train"...), ``artifact(kind, path)`` for files it leaves, and it polls ``should_stop()``. The
launcher, not the run, calls ``begin``/``resume`` before and ``finish`` after. A recorder is a
``ProgressSink`` too, so code that only reports progress takes it unchanged.

- ``ProjectRecorder`` writes the run into the project (the CLI, tests, a window's own process)
  and forwards progress to a sink (a tqdm bar, Qt signals).
- ``StreamRecorder`` is the child process's: it writes nothing, it prints each event as a JSON
  line; the parent applies them to its ``ProjectRecorder`` (``apply_event``), so the project
  keeps one writer however many processes train.
- ``NullRecorder`` is what every process but the main one gets when several run together
  (``accelerate launch``): they train, only rank 0 records.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

from rmstudio.core.progress import NullSink, ProgressSink


class RunRecorder:
    """The interface, recording nothing (also the recorder of non-main processes)."""

    run_id: int | None = None

    def begin(self, kind: str, name: str, config: dict) -> int:
        return self.run_id or 0

    def resume(self, run_id: int) -> None:
        self.run_id = run_id

    def log(self, step: int, metrics: dict) -> None:
        pass

    def should_stop(self) -> bool:
        return False

    def artifact(self, kind: str, path: str | Path, meta: dict | None = None) -> None:
        pass

    def finish(self, status: str, error: str | None = None) -> None:
        pass


NullRecorder = RunRecorder


def recorded_metrics(metrics: dict) -> dict[str, float]:
    """What of a progress report is recorded: named numbers ('train/loss'), not stage words."""
    return {k: float(v) for k, v in metrics.items()
            if "/" in k and isinstance(v, (int, float)) and not isinstance(v, bool)}


class ProjectRecorder(RunRecorder):
    """Writes the run into the project and forwards progress to ``sink``. It opens its own
    connection to ``project_path``, or uses an open ``project`` (the window's writer thread,
    which records the runs its child processes stream)."""

    def __init__(self, project_path: str | Path | None = None, sink: ProgressSink | None = None,
                 project=None):
        from rmstudio.core.store.project import Project

        self._owns = project is None
        self.project = Project.open(project_path) if project is None else project
        self.sink = sink or NullSink()
        self.step = 0

    def begin(self, kind: str, name: str, config: dict) -> int:
        from rmstudio.core.runs.store import start_run

        self.run_id = start_run(self.project, kind, name, config)
        return self.run_id

    def resume(self, run_id: int) -> None:
        from rmstudio.core.runs.store import claim_run

        claim_run(self.project, run_id)
        self.run_id = run_id

    def log(self, step: int, metrics: dict) -> None:
        from rmstudio.core.runs.store import log_metrics

        self.step = max(self.step, step)
        self.sink.log(step, metrics)
        numeric = recorded_metrics(metrics)
        if numeric and self.run_id is not None:
            log_metrics(self.project, self.run_id, step, numeric)

    def should_stop(self) -> bool:
        return self.sink.should_stop()

    def artifact(self, kind: str, path: str | Path, meta: dict | None = None) -> None:
        from rmstudio.core.runs.store import add_artifact

        add_artifact(self.project, self.run_id, kind, str(path), meta)

    def finish(self, status: str, error: str | None = None) -> None:
        from rmstudio.core.runs.store import finish_run

        if self.run_id is not None:
            finish_run(self.project, self.run_id, status, error)

    def close(self) -> None:
        if self._owns:
            self.project.close()


class StreamRecorder(RunRecorder):
    """A child process's recorder: events as JSON lines on stdout; a line ``stop`` on stdin
    asks the run to stop at its next safe point."""

    def __init__(self, run_id: int | None = None, out=None, stdin=None):
        self.run_id = run_id
        self.out = out or sys.stdout
        self.stop = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._watch, args=(stdin or sys.stdin,), daemon=True).start()

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

    def artifact(self, kind: str, path: str | Path, meta: dict | None = None) -> None:
        self.emit({"event": "artifact", "kind": kind, "path": str(path), "meta": meta})


def apply_event(event: dict, recorder: RunRecorder) -> Any:
    """Replay one of a child's events on the parent's recorder. Returns the result of a
    'finished' event, raises nothing for a 'failed' one (the caller decides how to show it)."""
    what = event.get("event")
    if what == "progress":
        recorder.log(int(event.get("step", 0)), event.get("metrics") or {})
    elif what == "artifact":
        recorder.artifact(event["kind"], event["path"], event.get("meta"))
    elif what == "finished":
        result = event.get("result") or {}
        recorder.finish(result.get("status", "finished"))
        return result
    elif what == "failed":
        recorder.finish("failed", event.get("message"))
    return None
