"""The generate dialog's "Sampling" box: responses per prompt, temperature, top-p, length, seed,
batch size and device, checked live against ``GenerationConfig`` with the reason shown inline.

Kept apart from the dialog's run/progress part: this is only a form that turns its fields into
a config (or says why it cannot), and knows nothing of jobs or the project.
"""

from __future__ import annotations

import sys
from dataclasses import fields

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QSpinBox, QWidget

from rmstudio.core.models.generation import GenerationConfig
from rmstudio.gui.theme import themed_style

DEVICES = [("auto", "Auto (best available)"), ("cpu", "CPU"), ("cuda", "CUDA (NVIDIA GPU)"),
           ("mps", "MPS (Apple GPU)")]
_DEFAULTS = {f.name: f.default for f in fields(GenerationConfig)}
ERROR_STYLE = "color: {error};"  # a themed_style template (gui/theme.py)


def available_devices() -> set[str] | None:
    """Devices torch can use, or None when torch is not imported yet (importing it takes seconds)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    found = {"cpu"}
    if torch.cuda.is_available():
        found.add("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.add("mps")
    return found


def _spin(kind, low, high, value, step: float | None = None, tip: str = ""):
    spin = kind()
    spin.setRange(low, high)
    if step is not None:
        spin.setSingleStep(step)
    spin.setValue(value)
    if tip:
        spin.setToolTip(tip)
    return spin


class SamplingForm(QGroupBox):
    """The sampling settings; ``sig_changed`` fires on every edit, after the inline check."""

    sig_changed = Signal()

    def __init__(self, device: str = "auto", available: set[str] | None = None,
                 parent: QWidget | None = None):
        super().__init__("Sampling", parent)
        form = QFormLayout(self)
        self.responses_spin = _spin(QSpinBox, 2, 16, _DEFAULTS["num_responses"],
                                    tip="Every two different responses make one comparison.")
        # The ranges are wider than the valid values on purpose: the config says what is wrong.
        self.temperature_spin = _spin(QDoubleSpinBox, 0.0, 10.0, _DEFAULTS["temperature"], step=0.1)
        self.top_p_spin = _spin(QDoubleSpinBox, 0.0, 1.0, _DEFAULTS["top_p"], step=0.05)
        self.max_tokens_spin = _spin(QSpinBox, 1, 8192, _DEFAULTS["max_new_tokens"])
        self.seed_spin = _spin(QSpinBox, 0, 2**31 - 1, _DEFAULTS["seed"])
        self.batch_spin = _spin(QSpinBox, 1, 1024, _DEFAULTS["batch_size"],
                                tip="Sequences generated together; larger is faster until memory runs out.")
        self.device_box = self._device_box(device, available)
        self.spins = (self.responses_spin, self.temperature_spin, self.top_p_spin, self.max_tokens_spin,
                      self.seed_spin, self.batch_spin)
        labels = ("Responses per prompt", "Temperature", "Top-p", "Max new tokens", "Seed", "Batch size")
        for label, spin in zip(labels, self.spins):
            form.addRow(label, spin)
            spin.valueChanged.connect(self._on_value_changed)
        form.addRow("Device", self.device_box)
        self.config_error = QLabel("")
        self.config_error.setObjectName("config_error")
        self.config_error.setWordWrap(True)
        themed_style(self.config_error, ERROR_STYLE)
        self.config_error.hide()
        form.addRow(self.config_error)

    def _device_box(self, device: str, available: set[str] | None) -> QComboBox:
        box = QComboBox()
        for key, text in DEVICES:
            box.addItem(text, key)
            if available is not None and key != "auto" and key not in available:
                item = box.model().item(box.count() - 1)
                item.setEnabled(False)
                item.setToolTip("Not available on this computer")
        index = box.findData((device or "auto").lower())
        box.setCurrentIndex(index if index >= 0 else 0)
        return box

    def config(self) -> GenerationConfig:
        """The sampling settings; raises ValueError (and shows it inline) when they do not fit."""
        try:
            config = GenerationConfig(
                num_responses=self.responses_spin.value(),
                temperature=round(self.temperature_spin.value(), 4),
                top_p=round(self.top_p_spin.value(), 4),
                max_new_tokens=self.max_tokens_spin.value(),
                seed=self.seed_spin.value(),
                batch_size=self.batch_spin.value(),
            )
        except ValueError as exc:
            self.config_error.setText(str(exc))
            self.config_error.show()
            raise
        self.config_error.hide()
        return config

    def is_valid(self) -> bool:
        """Check the fields now (showing any problem inline); True when they make a config."""
        try:
            self.config()
        except ValueError:
            return False
        return True

    def device(self) -> str:
        return self.device_box.currentData()

    def set_editable(self, editable: bool, fixed_responses: bool = False) -> None:
        """Lock the fields while a run uses them; ``fixed_responses`` keeps the count locked (two
        models write one response each)."""
        for widget in (*self.spins, self.device_box):
            widget.setEnabled(editable)
        self.responses_spin.setEnabled(editable and not fixed_responses)

    def fix_two_responses(self, fixed: bool) -> None:
        if fixed:
            self.responses_spin.setValue(2)
        self.responses_spin.setEnabled(not fixed)

    def _on_value_changed(self, *_args) -> None:
        self.sig_changed.emit()
