"""The Train workspace: pick a method, see the split before it starts, watch it learn, read the results.

The page owns the settings and the results; running is the shared ``RunPanel`` (the reward run
kind in a child process, recorded by the window's store writer, curves as the kind declares).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QRadioButton, QScrollArea,
    QSpinBox, QSplitter, QTabWidget, QVBoxLayout, QHBoxLayout, QWidget,
)

from rmstudio.core.errors import RmstudioError
from rmstudio.core.labeling.relabel import send_to_relabel
from rmstudio.core.labeling.stats import labels_left_out_of_training
from rmstudio.core.reward.kind import REWARD
from rmstudio.core.reward.train import RewardTrainConfig, runs_dir, split_preview
from rmstudio.core.runs.store import list_runs
from rmstudio.core.store.project import Project
from rmstudio.gui.finetune_settings import FinetuneSettings
from rmstudio.gui.model_picker import ModelPicker
from rmstudio.gui.pages import heading
from rmstudio.gui.run_panel import RunPanel
from rmstudio.gui.store_writer import StoreWriter
from rmstudio.gui.train_preview import preview_html
from rmstudio.gui.train_results import ResultsPanel

METHODS = [
    ("instant", "Instant", "Seconds. A small head on frozen features of the base model; features are "
                           "cached, so retraining after more labels is almost free."),
    ("lora", "LoRA", "Minutes to hours. Trains small adapters inside the base model; best with a GPU."),
    ("full", "Full fine-tune", "Trains every weight of the base model: the most capacity, needs a GPU "
                               "and memory."),
]


class TrainPage(QWidget):
    sig_run_finished = Signal(dict)  # the result of the reward run (status finished or cancelled)

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.annotator = ""
        self.writer: StoreWriter | None = None
        self._own_writer: StoreWriter | None = None
        self._running_method = ""
        self.split: dict = {}

        self.panel = RunPanel()
        self.panel.set_idle_note("Press Start: the curves of a LoRA or full fine-tune appear here as it "
                                 "trains; an instant run shows its progress above and opens Results.")
        self.panel.sig_start_requested.connect(lambda resume: self.start(resume=resume))
        self.panel.sig_finished.connect(self._on_run_finished)
        self.panel.sig_running.connect(lambda _running: self._update_buttons())
        # The panel's parts under the names the page always had (tests and scripts use them).
        self.start_button, self.cancel_button = self.panel.start_button, self.panel.cancel_button
        self.resume_button, self.status, self.progress = (self.panel.resume_button, self.panel.status,
                                                          self.panel.progress)

        outer = QHBoxLayout(self)
        outer.setContentsMargins(16, 16, 16, 16)
        splitter = QSplitter(Qt.Horizontal)
        outer.addWidget(splitter)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        settings = self._build_settings()
        scroll.setWidget(settings)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        left_layout.addWidget(self.panel.controls)  # outside the scroll: always in reach
        # Never narrower than the settings need: the scroll area only scrolls vertically.
        fits = settings.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
        left.setMinimumWidth(max(330, fits))
        splitter.addWidget(left)
        splitter.addWidget(self._build_output())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([max(360, fits), 840])

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self.refresh_preview)
        self._on_method_changed()

    # -- building ------------------------------------------------------------------------

    def _build_settings(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.addWidget(heading("Train a reward model"))
        method_box = QGroupBox("Method")
        method_layout = QVBoxLayout(method_box)
        self.method_group = QButtonGroup(self)
        self.method_buttons: dict[str, QRadioButton] = {}
        for i, (key, title, what) in enumerate(METHODS):
            button = QRadioButton(title)
            button.setObjectName(f"method_{key}")
            self.method_group.addButton(button, i)
            self.method_buttons[key] = button
            note = QLabel(what)
            note.setWordWrap(True)
            note.setStyleSheet("color: palette(placeholder-text); font-size: 12px; margin-left: 22px;")
            method_layout.addWidget(button)
            method_layout.addWidget(note)
        self.method_buttons["instant"].setChecked(True)
        self.method_group.idToggled.connect(lambda _id, on: on and self._on_method_changed())
        layout.addWidget(method_box)

        base_box = QGroupBox("Base model")
        base_layout = QVBoxLayout(base_box)
        self.base_picker = ModelPicker()
        self.base_picker.sig_changed.connect(self._update_buttons)
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
        form.addRow("Seed", self.seed)
        layout.addLayout(form)
        for widget in (self.val_share, self.seed):
            widget.valueChanged.connect(self._schedule_preview)
        self.objective.currentIndexChanged.connect(lambda _i: self._on_objective_changed())

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
        return box

    def _build_output(self) -> QWidget:
        self.tabs = QTabWidget()
        live = QWidget()
        live_layout = QVBoxLayout(live)
        live_layout.setContentsMargins(8, 8, 0, 0)
        live_layout.addWidget(self.panel)
        self.tabs.addTab(live, "Live")
        self.results = ResultsPanel()
        self.results.sig_relabel_requested.connect(self._on_relabel_requested)
        self.tabs.addTab(self.results, "Results")
        return self.tabs

    # -- project and annotator -----------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        if project is not self.project:
            self.shutdown()
            self.results.clear()
            self.panel.reset()
        self.project = project
        self.refresh_preview()
        self._update_buttons()

    def set_annotator(self, name: str) -> None:
        self.annotator = name  # training uses everyone's labels; kept for the relabel note

    def labels_changed(self) -> None:
        """Connect to the Label page's sig_labeled: the preview follows new labels. While the page
        is hidden (someone is labeling) it waits for showEvent: reading every labeled pair after
        each label cost the window up to ~50 ms per key press on a large project."""
        if self.isVisible():
            self._schedule_preview()

    def set_writer(self, writer: StoreWriter | None) -> None:
        """The window's store writer, which records runs (one writer); without one (the page on
        its own, in tests) the page makes its own when it first trains."""
        self.writer = writer

    def _store_writer(self) -> StoreWriter:
        if self.writer is None:
            self.writer = self._own_writer = StoreWriter(self.project.path)
        return self.writer

    def shutdown(self) -> None:
        """Stop a running job and wait for it (before the project closes or the app quits):
        what it reported is recorded before the writer stops."""
        self.panel.shutdown()
        if self._own_writer is not None:
            self._own_writer.stop()
        self._own_writer = None
        self.writer = None

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._schedule_preview()

    # -- settings ------------------------------------------------------------------------

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
                                 finetune=finetune)

    def _on_method_changed(self) -> None:
        method = self.method()
        self.finetune_box.setVisible(method != "instant")
        self.finetune_box.use_method_defaults(method)
        self._update_buttons()

    def _on_objective_changed(self) -> None:
        # The instant teacher is a pairwise model: ratings train without distillation.
        self.finetune_box.distill.setEnabled(self.objective.currentData() == "pairwise")
        self._schedule_preview()

    def _schedule_preview(self) -> None:
        self._preview_timer.start()

    def refresh_preview(self) -> None:
        if self.project is None:
            self.preview.setText("<i>Open a project to train on its labels.</i>")
            return
        config = RewardTrainConfig(objective=self.objective.currentData(), val_fraction=self.val_share.value() / 100,
                                   seed=self.seed.value())
        self.split = s = split_preview(self.project, config)
        # Ratings can only be learned from where there are some; the choice says how many.
        self.objective.model().item(1).setEnabled(s["ratings"] > 0)
        self.objective.setItemText(1, f"Ratings (regression): {s['ratings']:,}" if s["ratings"] else
                                   "Ratings (regression): none in this project")
        if config.objective == "regression" and not s["ratings"]:
            self.objective.setCurrentIndex(0)  # re-runs the preview as pairwise
            return
        left = labels_left_out_of_training(self.project, config.annotators)
        self.preview.setText(preview_html(s, left, config.objective))
        self._update_buttons()

    # -- running -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.panel.running

    @property
    def _worker(self):
        return self.panel.job

    def start(self, resume: bool = False) -> None:
        if self.project is None or self.running:
            return
        try:
            config = self.config()
        except (ValueError, RmstudioError) as exc:
            self.panel.show_error("Cannot start training", str(exc))
            return
        if resume:
            latest = self._latest_run()
            config.finetune["resume"] = str(runs_dir(self.project.path) / f"run-{latest['id']}")
        self._running_method = config.method
        self.results.clear()
        self.tabs.setCurrentIndex(0)
        # Every method runs in a child process: a native crash or an out-of-memory kill ends the
        # child, not the window, and training never holds this interpreter (an instant run in a
        # thread here made the window stall for up to 427 ms).
        self.panel.run(REWARD, self.project.path, config, self._store_writer(),
                       status=f"Training {config.method} on {config.base}…")

    def cancel(self) -> None:
        self.panel.cancel()

    def resume(self) -> None:
        self.start(resume=True)

    def _latest_run(self) -> dict | None:
        """The latest reward run of the chosen method (the one Resume would continue)."""
        runs = list_runs(self.project, "reward") if self.project is not None else []
        runs = [r for r in runs if r["config"].get("method") == self.method()]
        return runs[-1] if runs else None

    def _on_run_finished(self, result: dict) -> None:
        self.results.show_result(result)
        if result.get("status", "finished") == "finished" or self._running_method == "instant":
            self.tabs.setCurrentWidget(self.results)
        self.refresh_preview()
        self.sig_run_finished.emit(result)

    def _update_buttons(self) -> None:
        has_pairs = self.project is not None and self.split.get("pairs", 0) > 0
        self.panel.set_can_start(self.project is not None, "" if has_pairs else
                                 "Label some pairs first (A, B or tie).")
        fine_tune = self.method() != "instant"
        self.panel.set_can_resume(
            fine_tune and self.project is not None and self._latest_run() is not None,
            "Continue the latest fine-tune run from its last checkpoint." if fine_tune else
            "Only fine-tunes (LoRA, full) can be resumed; the instant method takes seconds.")
        for widget in (self.method_group.buttons() + [self.base_picker, self.objective, self.val_share,
                                                       self.seed, self.finetune_box]):
            widget.setEnabled(not self.running)

    def _on_relabel_requested(self, comparison_ids: list) -> None:
        if self.project is None:
            return
        try:
            n = send_to_relabel(self.project, comparison_ids)
        except RmstudioError as exc:
            self.panel.show_error("Could not queue the pairs", str(exc))
            return
        self.results.relabel_status.setText(f"{n} pair{'s' * (n != 1)} queued for review: the Label "
                                            "page shows them first.")
