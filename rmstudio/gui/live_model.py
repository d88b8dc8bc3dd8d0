"""Keeps a live instant reward model fresh in the background while the team labels.

One worker thread owns the model (its backbone stays loaded); label events are debounced, and a
refresh asked for while one is running is run once afterwards, never queued up.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from rmstudio.core.reward.live import LiveInstantModel

DEBOUNCE_MS = 2000


class _LiveWorker(QObject):
    sig_done = Signal(object)
    sig_failed = Signal(str)

    def __init__(self):
        super().__init__()
        self.model = LiveInstantModel()

    @Slot(str)
    def refresh(self, project_path: str) -> None:
        try:
            self.sig_done.emit(self.model.refresh(project_path))
        except Exception as exc:  # noqa: BLE001 - shown in the status bar, the app goes on
            self.sig_failed.emit(str(exc) or type(exc).__name__)


class LiveModelController(QObject):
    sig_status = Signal(str)  # one line for the status bar
    _sig_refresh = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.enabled = False
        self.project_path: str | None = None
        self._busy = False
        self._pending = False
        self._thread: QThread | None = None
        self._worker: _LiveWorker | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._request)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = QThread(self)
            self._worker = _LiveWorker()
            self._worker.moveToThread(self._thread)
            self._sig_refresh.connect(self._worker.refresh)
            self._worker.sig_done.connect(self._on_done)
            self._worker.sig_failed.connect(self._on_failed)
            self._thread.start()

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if enabled:
            self.sig_status.emit("Live reward model: starting…")
            self.labels_changed()
        else:
            self._timer.stop()
            self.sig_status.emit("Live reward model: off")

    def set_project(self, path: str | None) -> None:
        self.project_path = path
        if self.enabled and path:
            self.labels_changed()

    def labels_changed(self) -> None:
        if self.enabled and self.project_path:
            self._timer.start()

    def _request(self) -> None:
        if self._busy:
            self._pending = True
            return
        self._ensure_thread()
        self._busy = True
        self._sig_refresh.emit(self.project_path)

    def _on_done(self, status) -> None:
        self._busy = False
        if status is None:
            self.sig_status.emit("Live reward model: needs more labeled pairs")
        else:
            acc = f"{status.val_accuracy:.0%}" if status.val_accuracy is not None else "n/a"
            self.sig_status.emit(f"Live reward model: {acc} val. accuracy on {status.pairs} pairs "
                                 f"(refit in {status.seconds:.1f} s)")
        self._after()

    def _on_failed(self, message: str) -> None:
        self._busy = False
        self.sig_status.emit(f"Live reward model failed: {message[:120]}")
        self._after()

    def _after(self) -> None:
        if self._pending and self.enabled:
            self._pending = False
            self._request()

    def shutdown(self) -> None:
        self._timer.stop()
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait(120000)
            self._thread = None
