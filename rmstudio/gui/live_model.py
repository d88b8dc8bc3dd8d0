"""Keeps a live instant reward model fresh in the background while the team labels.

Each refresh is a job on a worker thread (``worker.start_job``, the window's one pattern for
in-process work); the model object, and with it the loaded backbone, is kept between refreshes.
Label events are debounced, and a refresh asked for while one is running is run once
afterwards, never queued up (so the model is never used by two threads at once).

With an active learning strategy set (the Label page's "Order"), the same job also embeds a
few more unlabeled pairs and recomputes the most-informative-first order after each refit:
the order is held in memory and handed to the page (``sig_order``), never written.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from rmstudio.core.reward.live import LiveInstantModel
from rmstudio.gui.worker import start_job

DEBOUNCE_MS = 2000


class LiveModelController(QObject):
    sig_status = Signal(str)  # one line for the status bar
    sig_fitted = Signal(bool)  # after each refresh: whether a fitted head exists now
    sig_order = Signal(object)  # an ActiveOrder, when a strategy is set

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.enabled = False
        self.project_path: str | None = None
        self._busy = False
        self._pending = False
        self.model = LiveInstantModel()
        self._job = None  # (thread, worker) of the refresh under way
        self.strategy: str | None = None  # active learning order to recompute after refits
        self._order_only = False  # a strategy change asked for a new order while busy
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._request)

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

    @property
    def has_fit(self) -> bool:
        model = self.model.model
        return self.model.status is not None and model is not None and model.head is not None

    def set_strategy(self, strategy: str | None) -> None:
        """'margin', 'doptimal' or None (the default queue order)."""
        self.strategy = strategy
        if strategy and self.has_fit and self.project_path:
            self._request(order_only=True)

    def labels_changed(self) -> None:
        if self.enabled and self.project_path:
            self._timer.start()

    def _request(self, order_only: bool = False) -> None:
        if self._busy:
            if order_only:
                self._order_only = True
            else:
                self._pending = True
            return
        self._busy = True
        path, model, strategy = self.project_path, self.model, self.strategy

        def work(_sink):
            status = model.status if order_only else model.refresh(path)
            order = None
            if strategy and status is not None:
                if not order_only:
                    model.embed_unlabeled(path)
                order = model.informative(path, strategy)
            return status, order, order_only

        self._job = start_job(self, work, self._on_done, lambda message, _details: self._on_failed(message))

    def _on_done(self, result) -> None:
        self._busy = False
        status, order, order_only = result
        self.sig_fitted.emit(self.has_fit)
        if order is not None:
            self.sig_order.emit(order)
        if order_only:
            self._after()
            return
        if status is None:
            self.sig_status.emit("Live reward model: needs more labeled pairs")
        else:
            self.sig_status.emit(f"Live reward model: {status_text(status)}")
        self._after()

    def _on_failed(self, message: str) -> None:
        self._busy = False
        self.sig_status.emit(f"Live reward model failed: {message[:120]}")
        self._after()

    def _after(self) -> None:
        if self._pending and self.enabled:
            self._pending = False
            self._order_only = False  # a refit recomputes the order anyway
            self._request()
        elif self._order_only:
            self._order_only = False
            self.set_strategy(self.strategy)

    def shutdown(self) -> None:
        self._timer.stop()
        if self._job is not None:
            self._job[0].wait(120000)  # a refresh under way ends by itself (seconds)
            self._job = None


def status_text(status) -> str:
    """'71% ± 8% cross-validated accuracy (5 folds by prompt) on 27 pairs (head refit 0.3 s)' for a
    LiveStatus, with the model load and the embedding of new responses when they took long."""
    if status.val_accuracy is None:
        measured = "no validation figure yet (labels of one prompt, or ties only)"
    elif status.folds:
        measured = (f"{status.val_accuracy:.0%} ± {status.val_accuracy_std or 0:.0%} cross-validated "
                    f"accuracy ({status.folds} folds by prompt)")
    else:
        measured = f"{status.val_accuracy:.0%} accuracy on {status.val_pairs} held-out pairs"
    # Say where the time went: the head refit itself is well under a second; loading the backbone
    # (first refresh) and embedding responses not seen before are what can take seconds.
    timings = status.timings or {}
    slow = [f"{name} {timings[key]:.1f} s" for key, name in (("load", "loading the model"),
                                                            ("features", "embedding new responses"))
            if timings.get(key, 0) >= 0.5]
    took = f"head refit {timings['fit']:.1f} s" if "fit" in timings else f"refit in {status.seconds:.1f} s"
    return f"{measured} on {status.pairs} pairs ({'; '.join([took, *slow])})"
