"""Run any run kind in a child process, recorded by the window's store writer.

The one way the window runs training. The store writer (one thread, one connection: the only
writer of the project in this process) records the run's start; the child runs the kind with
``--run-id`` and only streams its events; each event goes back to the writer, which records it
(``runs.recorder.apply_event``), and to the page as the same signals ``worker.JobWorker`` has.
A native crash or an out-of-memory kill ends the child, not the window, and the run is recorded
as failed. The page learns that a run ended only once the writer has recorded the end, so a
list of runs refreshed then is already right.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from rmstudio.core.runs import codec
from rmstudio.core.runs.kinds import RunKind, kind_ref
from rmstudio.core.runs.launch import child_command
from rmstudio.gui.process_job import ProcessJob
from rmstudio.gui.store_writer import StoreWriter


class RunJob(QObject):
    sig_progress = Signal(int, dict)
    sig_finished = Signal(object)
    sig_failed = Signal(str, str)

    def __init__(self, kind: RunKind, project_path: str | Path, config, writer: StoreWriter,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.kind, self.path, self.config, self.writer = kind, Path(project_path), config, writer
        self.run_id: int | None = None
        self.process: ProcessJob | None = None
        self._begin_request: int | None = None
        self._end_request: int | None = None
        self._end: tuple | None = None  # ("finished", result) or ("failed", message, details)
        self._cancel_asked = False
        self._done = False
        writer.sig_saved.connect(self._on_saved)

    def start(self) -> None:
        self._begin_request = self.writer.run_begin(kind_ref(self.kind), codec.encode(self.config))

    def cancel(self) -> None:
        """Ask the child to stop at its next safe point (it keeps its last checkpoint)."""
        self._cancel_asked = True
        if self.process is not None:
            self.process.cancel()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def wait(self, timeout_ms: int = 60_000) -> None:
        """Stop and wait for the child (the window closes): what it printed is recorded, and a
        run it left without an end is recorded as failed."""
        if self.process is None:
            return
        job = self.process
        if job.process.state() == job.process.ProcessState.NotRunning:
            return
        job.cancel()
        if not job.process.waitForFinished(timeout_ms):
            job.kill()
            job.process.waitForFinished(5000)
        job._on_process_finished(job.process.exitCode(), None)  # read the rest now

    # -- answers from the writer and the child -------------------------------------------

    def _on_saved(self, result: dict) -> None:
        request = result.get("request_id")
        if request == self._begin_request:
            self._begin_request = None
            if result.get("run_error"):
                self._finish(("failed", result["run_error"], ""))
                return
            self.run_id = result["run_id"]
            command = child_command(self.kind, self.path, self.config, self.run_id)
            self.process = ProcessJob(command[2], command[3:], self)
            self.process.sig_event.connect(self._on_event)
            self.process.sig_progress.connect(self.sig_progress)
            self.process.sig_failed.connect(self._on_process_failed)
            self.process.start()
            if self._cancel_asked:
                self.process.cancel()
        elif request is not None and request == self._end_request:
            self._finish(self._end)

    def _on_event(self, event: dict) -> None:
        request = self.writer.run_event(self.run_id, event)
        what = event.get("event")
        if what == "finished":
            self._end, self._end_request = ("finished", event.get("result") or {}), request
        elif what == "failed":
            self._end = ("failed", event.get("message", "the run failed"), event.get("traceback", ""))
            self._end_request = request

    def _on_process_failed(self, message: str, details: str) -> None:
        if self._end is not None:
            return  # the child reported its failure itself (recorded in _on_event)
        # Killed or crashed without a word: record the end the child could not write.
        self._on_event({"event": "failed", "message": message, "traceback": details})

    def _finish(self, end: tuple) -> None:
        if self._done:
            return
        self._done = True
        self.writer.sig_saved.disconnect(self._on_saved)
        if end[0] == "finished":
            self.sig_finished.emit(end[1])
        else:
            self.sig_failed.emit(end[1], end[2])
