"""The LoRA / full fine-tune settings of the Train page, as one group box bound to FinetuneConfig."""

from __future__ import annotations

from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox,
)

from rmstudio.core.reward.finetune_config import DEFAULT_AVERAGE_LAST

DEFAULT_LR = {"lora": "1e-4", "full": "3e-5"}  # FinetuneConfig's defaults


class FinetuneSettings(QGroupBox):
    def __init__(self, parent=None):
        super().__init__("Fine-tune settings", parent)
        form = QFormLayout(self)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 100)
        self.epochs.setValue(1)
        self.learning_rate = QLineEdit(DEFAULT_LR["lora"])
        self.learning_rate.setValidator(QDoubleValidator(0.0, 1.0, 10))
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 1024)
        self.batch_size.setValue(8)
        self.max_length = QSpinBox()
        self.max_length.setRange(16, 32768)
        self.max_length.setValue(384)
        self.overlong = QComboBox()
        self.overlong.addItem("truncate", "truncate")
        self.overlong.addItem("skip the pair", "skip")
        self.overlong.setToolTip("Pairs longer than the max length: keep the end of the prompt and the "
                                 "start of the response, or leave the pair out.")
        self.probe_head = QCheckBox("Start the head from a linear probe")
        self.probe_head.setChecked(True)
        self.probe_head.setToolTip("Before fine-tuning, fit the score head on the frozen model's features "
                                   "(a few hundred pairs, one pass without gradients). Training then starts "
                                   "well above chance. Off: a random head, as TRL starts.")
        self.keep_best = QCheckBox("Export an earlier step if clearly better")
        self.keep_best.setChecked(True)
        self.keep_best.setToolTip("Export the weights of the validation with the lowest loss (the probe "
                                  "before the first step counts) when it beats the last step by more than "
                                  "the validation's noise (one standard error); otherwise the last step. "
                                  "Validation runs every 50 steps and at the end.")
        self.distill = QDoubleSpinBox()
        self.distill.setRange(0.0, 1.0)
        self.distill.setSingleStep(0.1)
        self.distill.setDecimals(2)
        self.distill.setSpecialValueText("off")
        self.distill.setValue(0.5)  # FinetuneConfig's default
        self.distill.setToolTip("Learn from the instant model too: each training target becomes "
                                "(1 - w) × label + w × the instant model's probability that the chosen "
                                "response is better. The instant head is fitted on the same split first "
                                "(its features are cached in the project).")
        self.average = QSpinBox()
        self.average.setRange(0, 90)
        self.average.setSuffix(" % of steps")
        self.average.setSpecialValueText("off")
        self.average.setToolTip("Export the mean of the weights over the run's last steps (0.5 = the "
                                "second half) instead of the last step's: averaged weights are steadier "
                                "than any one checkpoint.")
        form.addRow("Epochs", self.epochs)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Max length (tokens)", self.max_length)
        form.addRow("Overlong pairs", self.overlong)
        form.addRow("Distil from instant", self.distill)
        form.addRow("Average the last", self.average)
        form.addRow("", self.probe_head)
        form.addRow("", self.keep_best)

    def use_method_defaults(self, method: str) -> None:
        if method in DEFAULT_LR:
            self.learning_rate.setText(DEFAULT_LR[method])
            self.average.setValue(round(100 * DEFAULT_AVERAGE_LAST[method]))

    def settings(self) -> dict:
        """The FinetuneConfig fields on screen; raises ValueError with a message."""
        try:
            lr = float(self.learning_rate.text())
        except ValueError:
            raise ValueError(f"learning rate {self.learning_rate.text()!r} is not a number") from None
        return {"epochs": self.epochs.value(), "learning_rate": lr, "batch_size": self.batch_size.value(),
                "max_length": self.max_length.value(), "overlong": self.overlong.currentData(),
                "head_init": "probe" if self.probe_head.isChecked() else "random",
                "keep_best": self.keep_best.isChecked(), "distill_weight": self.distill.value(),
                "average_last": self.average.value() / 100}
