"""The Train page's settings: method, base model, objective, split and fine-tune settings, and
what would train with them (the split preview), as one widget that makes a ``RewardTrainConfig``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QSpinBox,
    QVBoxLayout, QWidget,
)

from rmstudio.core.labeling.stats import labels_left_out_of_training
from rmstudio.core.reward.cross_validation import FOLDS, MIN_VAL_PAIRS
from rmstudio.core.reward.train import RewardTrainConfig, split_preview
from rmstudio.core.store.project import Project
from rmstudio.gui.finetune_settings import FinetuneSettings
from rmstudio.gui.model_picker import ModelPicker
from rmstudio.gui.pages import heading, method_choice
from rmstudio.gui.train_preview import preview_html

METHODS = [
    ("instant", "Instant", "Seconds. A small head on frozen features of the base model; features are "
                           "cached, so retraining after more labels is almost free."),
    ("lora", "LoRA", "Minutes to hours. Trains small adapters inside the base model; best with a GPU."),
    ("full", "Full fine-tune", "Trains every weight of the base model: the most capacity, needs a GPU "
                               "and memory."),
]


class TrainSettings(QWidget):
    sig_changed = Signal()  # the method or the base model changed: what can start may change
    sig_preview_wanted = Signal()  # a setting of the split changed

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.split: dict = {}
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Train a reward model"))
        method_box, self.method_group, self.method_buttons = method_choice(self, METHODS)
        self.method_group.idToggled.connect(lambda _id, on: on and self._on_method_changed())
        layout.addWidget(method_box)

        base_box = QGroupBox("Base model")
        base_layout = QVBoxLayout(base_box)
        self.base_picker = ModelPicker()
        self.base_picker.sig_changed.connect(self.sig_changed)
        base_layout.addWidget(self.base_picker)
        layout.addWidget(base_box)

        form = QFormLayout()
        self.val_share = QDoubleSpinBox()
        self.val_share.setRange(0, 50)
        self.val_share.setSuffix(" %")
        self.val_share.setDecimals(0)
        self.val_share.setValue(10)
        self.val_share.setToolTip("Share of prompts held out to measure the model; "
                                  "no prompt is in both splits.")
        self.cross_validation = QComboBox()
        self.cross_validation.setObjectName("cross_validation")
        self.cross_validation.addItem("Cross-validate small projects", "auto")
        self.cross_validation.addItem("Held-out share only", "off")
        self.cross_validation.setToolTip(
            f"Instant runs: when the share would hold out fewer than {MIN_VAL_PAIRS} pairs, cross-validate "
            f"by prompt instead ({FOLDS} folds, fewer with fewer prompts): every pair is scored once by a "
            "head that never saw its prompt, the mean and spread over the folds are reported, and the "
            "saved model trains on every pair. LoRA and full fine-tunes always use the share.")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.objective = QComboBox()
        self.objective.setObjectName("objective")
        self.objective.addItem("Preferences (pairwise)", "pairwise")
        self.objective.addItem("Ratings (regression)", "regression")
        self.objective.setToolTip("Pairwise: Bradley-Terry on the A/B labels. Regression: the reward "
                                  "learns to predict ratings (rankings imported with ratings or scores).")
        form.addRow("Learn from", self.objective)
        form.addRow("Validation share", self.val_share)
        form.addRow("Validation", self.cross_validation)
        form.addRow("Seed", self.seed)
        layout.addLayout(form)
        for widget in (self.val_share, self.seed):
            widget.valueChanged.connect(lambda _v: self.sig_preview_wanted.emit())
        self.objective.currentIndexChanged.connect(lambda _i: self._on_objective_changed())
        self.cross_validation.currentIndexChanged.connect(lambda _i: self.sig_preview_wanted.emit())

        self.finetune_box = FinetuneSettings()
        layout.addWidget(self.finetune_box)

        preview_box = QGroupBox("What trains")
        preview_layout = QVBoxLayout(preview_box)
        self.preview = QLabel("")
        self.preview.setObjectName("split_preview")
        self.preview.setWordWrap(True)
        self.preview.setTextFormat(Qt.RichText)
        preview_layout.addWidget(self.preview)
        layout.addWidget(preview_box)

        layout.addStretch(1)
        self._on_method_changed()


    def method(self) -> str:
        return METHODS[self.method_group.checkedId()][0]

    def base(self) -> str:
        source = self.base_picker.source()  # raises ModelError, shown inline by the picker
        return "embedded" if source.kind == "embedded" else source.location

    def config(self) -> RewardTrainConfig:
        """The settings on screen as a config; raises ValueError or ModelError with a message."""
        method = self.method()
        finetune = self.finetune_box.settings() if method != "instant" else {}
        return RewardTrainConfig(method=method, objective=self.objective.currentData(), base=self.base(),
                                 val_fraction=self.val_share.value() / 100, seed=self.seed.value(),
                                 cross_validation=self.cross_validation.currentData(), finetune=finetune)

    def _on_method_changed(self) -> None:
        method = self.method()
        self.finetune_box.setVisible(method != "instant")
        self.finetune_box.use_method_defaults(method)
        self.sig_changed.emit()
        self.sig_preview_wanted.emit()  # the method decides whether a run cross-validates

    def _on_objective_changed(self) -> None:
        # The instant teacher is a pairwise model: ratings train without distillation.
        self.finetune_box.distill.setEnabled(self.objective.currentData() == "pairwise")
        self.sig_preview_wanted.emit()

    def refresh_preview(self, project: Project | None) -> dict:
        """Show what would train on ``project`` with these settings; returns the split."""
        if project is None:
            self.preview.setText("<i>Open a project to train on its labels.</i>")
            self.split = {}
            return self.split
        # The same split the run will use (reward.train.run_split): method and validation matter.
        config = RewardTrainConfig(method=self.method(), objective=self.objective.currentData(),
                                   val_fraction=self.val_share.value() / 100, seed=self.seed.value(),
                                   cross_validation=self.cross_validation.currentData())
        self.split = s = split_preview(project, config)
        # Ratings can only be learned from where there are some; the choice says how many.
        self.objective.model().item(1).setEnabled(s["ratings"] > 0)
        self.objective.setItemText(1, f"Ratings (regression): {s['ratings']:,}" if s["ratings"] else
                                   "Ratings (regression): none in this project")
        if config.objective == "regression" and not s["ratings"]:
            self.objective.setCurrentIndex(0)  # asks for the preview again, as pairwise
            return s
        left = labels_left_out_of_training(project, config.annotators)
        self.preview.setText(preview_html(s, left, config.objective))
        return s

    def set_running(self, running: bool) -> None:
        for widget in (self.method_group.buttons() + [self.base_picker, self.objective, self.val_share,
                                                       self.cross_validation, self.seed, self.finetune_box]):
            widget.setEnabled(not running)
