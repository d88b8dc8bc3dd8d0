"""Run a core job in a child process and turn its JSON-lines progress into Qt signals.

Same signals as ``worker.JobWorker`` (sig_progress, sig_finished, sig_failed), so a page can
run light jobs on a thread and heavy ones (reward training) here, where a native crash or an
out-of-memory kill ends the child and the window shows an error instead of disappearing.
"""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QObject, QProcess, Signal


class ProcessJob(QObject):
    sig_progress = Signal(int, dict)
    sig_finished = Signal(object)
    sig_failed = Signal(str, str)
    sig_event = Signal(dict)  # every event the child printed, before the signals above

    def __init__(self, module: str, args: list[str], parent: QObject | None = None):
        super().__init__(parent)
        self.process = QProcess(self)
        self.process.setProgram(sys.executable)
        self.process.setArguments(["-m", module, *args])
        self.process.readyReadStandardOutput.connect(self._on_output)
        self.process.finished.connect(self._on_process_finished)
        self.process.errorOccurred.connect(self._on_process_error)
        self._buffer = b""
        self._done = False
        self._stderr_tail = b""

    def start(self) -> None:
        self.process.start()

    def cancel(self) -> None:
        """Ask the child to stop at its next safe point (it keeps its last checkpoint)."""
        if self.process.state() == QProcess.Running:
            self.process.write(b"stop\n")

    def kill(self) -> None:
        self.process.kill()

    def _on_output(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._handle(line)

    def _handle(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # a library printed something; not ours
        kind = event.get("event") if isinstance(event, dict) else None
        if kind is not None:
            self.sig_event.emit(event)
        if kind == "progress":
            self.sig_progress.emit(int(event.get("step", 0)), event.get("metrics", {}))
        elif kind == "finished":
            self._done = True
            self.sig_finished.emit(event.get("result"))
        elif kind == "failed":
            self._done = True
            self.sig_failed.emit(event.get("message", "the job failed"), event.get("traceback", ""))

    def _on_process_finished(self, exit_code: int, _status) -> None:
        self._on_output()
        if self._buffer:
            self._handle(self._buffer)
            self._buffer = b""
        if not self._done:
            self._done = True
            tail = bytes(self.process.readAllStandardError())[-4000:].decode("utf-8", "replace")
            self.sig_failed.emit(
                f"the training process ended unexpectedly (exit code {exit_code}); it may have run out "
                "of memory. Your labels are safe; the last complete checkpoint is kept.", tail)

    def _on_process_error(self, error) -> None:
        if error == QProcess.FailedToStart and not self._done:
            self._done = True
            self.sig_failed.emit("could not start the training process", str(error))
