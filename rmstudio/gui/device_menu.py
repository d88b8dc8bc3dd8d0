"""The compute device: Settings → Compute device, the status-bar button, and finding what is here.

The choice is stored in QSettings as 'device' ('auto', 'cpu', 'cuda', 'mps'). What "Auto" means
needs torch, which takes seconds to import, so detection runs off the UI thread a few seconds
after the window opens; until then the button says what was chosen. A choice this machine does
not have falls back to Auto (and says so), so an old setting from another computer never breaks
a run.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from rmstudio.gui.worker import start_job

DETECTION_DELAY_MS = 3000  # torch takes seconds to import: not while the window opens
DEVICE_CHOICES = [("auto", "Auto (best available)"), ("cpu", "CPU"), ("cuda", "CUDA (NVIDIA GPU)"),
                  ("mps", "MPS (Apple GPU)")]


def detect_devices(_sink) -> dict:
    """The best device's name and every device torch can use here (runs on a worker thread)."""
    import torch

    available, name = ["cpu"], "CPU"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        available.append("mps")
        name = "Apple MPS"
    if torch.cuda.is_available():
        available.append("cuda")
        name = f"CUDA ({torch.cuda.get_device_name(0)})"
    return {"name": name, "available": available}


class DeviceChoice(QObject):
    """Owns the device menu, the status-bar button and the detection job of one window."""

    sig_changed = Signal(str, object)  # the effective preference, the available devices (set or None)

    def __init__(self, window: QWidget, settings: QSettings):
        super().__init__(window)
        self.window = window
        self.settings = settings
        self.detected: str | None = None  # what Auto means here, once torch has looked
        self.available: set[str] | None = None
        self.menu = QMenu("Compute &device", window)
        group = QActionGroup(self)
        group.setExclusive(True)
        self.actions: dict[str, QAction] = {}
        chosen = self._stored()
        for key, text in DEVICE_CHOICES:
            action = QAction(text, self, checkable=True)
            action.setChecked(key == chosen)
            action.triggered.connect(lambda _checked=False, key=key: self.set_preference(key))
            group.addAction(action)
            self.menu.addAction(action)
            self.actions[key] = action
        self.button = QToolButton()
        self.button.setAutoRaise(True)
        self.button.setPopupMode(QToolButton.InstantPopup)
        self.button.setToolTip("The compute device for generation; click to choose another.")
        self.button.setMenu(self.menu)
        self._job = None
        # A timer this object owns and stops on close: a detection thread started after the
        # window is gone would be destroyed while running, which aborts the process.
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.detect)
        self._timer.start(DETECTION_DELAY_MS)
        self._show()  # the saved choice at once; what Auto found once torch has looked

    def _stored(self) -> str:
        return str(self.settings.value("device", "auto") or "auto").lower()

    def preference(self) -> str:
        """The chosen device, or 'auto' where it is unknown or not available here."""
        chosen = self._stored()
        if chosen not in self.actions:
            return "auto"
        if self.available is not None and chosen != "auto" and chosen not in self.available:
            return "auto"
        return chosen

    def set_preference(self, key: str) -> None:
        self.settings.setValue("device", key)
        self.actions[key].setChecked(True)
        self._show()
        self.sig_changed.emit(self.preference(), self.available)

    def detect(self) -> None:
        self._job = start_job(self.window, detect_devices, self.on_detected,
                              lambda _msg, _d: self.on_detected({"name": "CPU (torch unavailable)",
                                                                 "available": ["cpu"]}))

    def on_detected(self, found: dict) -> None:
        self.detected = found["name"]
        self.available = set(found["available"])
        for key, action in self.actions.items():
            action.setEnabled(key == "auto" or key in self.available)
        self._show()
        self.sig_changed.emit(self.preference(), self.available)

    def _show(self) -> None:
        chosen, effective = self._stored(), self.preference()
        if effective == "auto":
            found = self.detected or "auto (detecting…)"
            note = " (chosen one not available)" if chosen not in ("auto", effective) else ""
            self.button.setText(f"Device: {found}{note}")
        else:
            self.button.setText(f"Device: {dict(DEVICE_CHOICES)[effective]} (set in Settings)")

    def shutdown(self) -> None:
        self._timer.stop()
        if self._job is not None:
            thread, _worker = self._job
            thread.quit()
            thread.wait(10000)
