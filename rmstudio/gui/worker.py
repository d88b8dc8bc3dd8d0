"""Run a core job on a QThread and forward its progress sink as Qt signals.

The worker holds no logic of its own: the job is a plain function taking a progress sink.
Jobs that touch the project open their own ``Project`` in the worker thread, because an
SQLite connection must not cross threads.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger("rmstudio.jobs")


class _SignalSink:
    def __init__(self, worker: JobWorker):
        self._worker = worker

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._worker.sig_progress.emit(step, dict(metrics))

    def should_stop(self) -> bool:
        return self._worker.stop_requested.is_set()


class JobWorker(QObject):
    sig_progress = Signal(int, dict)
    sig_finished = Signal(object)
    sig_failed = Signal(str, str)  # message for the user, traceback for the details box

    def __init__(self, job: Callable[[_SignalSink], object]):
        super().__init__()
        self._job = job
        self.stop_requested = threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            result = self._job(_SignalSink(self))
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user, not kill the app
            details = traceback.format_exc()
            log.warning("a background job failed: %s", details)  # the log keeps what the box shortens
            self.sig_failed.emit(str(exc) or type(exc).__name__, details)
        else:
            self.sig_finished.emit(result)

    def cancel(self) -> None:
        self.stop_requested.set()


class _Relay(QObject):
    """Calls ``callback`` in the thread this object lives in (the parent's: the UI thread)."""

    def __init__(self, callback: Callable, parent: QObject):
        super().__init__(parent)
        self.callback = callback

    def call(self, *args) -> None:
        self.callback(*args)


def start_job(parent: QObject, job: Callable, on_finished=None, on_failed=None,
              on_progress=None) -> tuple[QThread, JobWorker]:
    """Start ``job(sink)`` on a new thread owned by ``parent``; returns (thread, worker)."""
    thread = QThread(parent)
    worker = JobWorker(job)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # Callbacks go through relays owned by `parent`, so they always run on the UI thread, even
    # when they are lambdas or closures (a plain callable would run on the worker thread, where
    # touching a widget can crash the app).
    for signal, callback in ((worker.sig_progress, on_progress), (worker.sig_finished, on_finished),
                             (worker.sig_failed, on_failed)):
        if callback:
            signal.connect(_Relay(callback, parent).call)
    worker.sig_finished.connect(thread.quit)
    worker.sig_failed.connect(thread.quit)
    thread.finished.connect(worker.deleteLater)
    thread.start()
    return thread, worker
