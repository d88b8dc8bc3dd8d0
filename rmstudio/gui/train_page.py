"""The Train workspace: pick a method, see the split before it starts, watch it learn, read the results.

Training itself is the reward run kind in a child process (``RunJob``), recorded by the window's
store writer. Its progress signal only appends to a buffer; a timer at 10 Hz pushes the buffer
into one curve per metric with ``setData``.
"""

from __future__ import annotations


from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QMessageBox,
    QComboBox, QProgressBar, QPushButton, QRadioButton, QScrollArea, QSpinBox, QSplitter, QTabWidget, QVBoxLayout,
    QWidget,
)

from rmstudio.core.errors import RmstudioError
from rmstudio.core.store.project import Project
from rmstudio.core.labeling.relabel import send_to_relabel
from rmstudio.core.labeling.stats import labels_left_out_of_training
from rmstudio.core.reward.kind import REWARD
from rmstudio.core.reward.train import RewardTrainConfig, runs_dir, split_preview
from rmstudio.core.runs.store import list_runs
from rmstudio.gui.finetune_settings import FinetuneSettings
from rmstudio.gui.model_picker import ModelPicker
from rmstudio.gui.pages import heading
from rmstudio.gui.plots import SPLIT_COLORS, live_curve, make_plot, place_legend, set_title
from rmstudio.gui.train_results import ResultsPanel
from rmstudio.gui.run_job import RunJob
from rmstudio.gui.store_writer import StoreWriter

METHODS = [
    ("instant", "Instant", "Seconds. A small head on frozen features of the base model; features are "
                           "cached, so retraining after more labels is almost free."),
    ("lora", "LoRA", "Minutes to hours. Trains small adapters inside the base model; best with a GPU."),
    ("full", "Full fine-tune", "Trains every weight of the base model: the most capacity, needs a GPU "
                               "and memory."),
]
# (metric key, plot, dashed): one curve each; train solid, validation dashed.
CURVES = [
    ("train/loss", "loss"), ("val/loss", "loss"),
    ("train/accuracy", "accuracy"), ("val/accuracy", "accuracy"),
    ("train/margin", "margin"), ("val/margin", "margin"),
    ("train/mean_reward", "reward"), ("val/mean_reward", "reward"),
]
PLOTS = [("loss", "Loss"), ("accuracy", "Accuracy"), ("margin", "Mean margin r_c − r_r"),
         ("reward", "Mean reward")]
# Regression on ratings has no pairs: its loss is the MSE, its "accuracy" the correlation with the
# rating, and it has no margin.
PLOT_TITLES = {"pairwise": {"loss": "Loss (Bradley-Terry)", "accuracy": "Accuracy"},
               "regression": {"loss": "Loss (MSE, standardised ratings)",
                              "accuracy": "Correlation with the rating (Pearson)"}}
CURVE_OF = {"train/pearson": "train/accuracy", "val/pearson": "val/accuracy"}  # pairwise logs no pearson
REFRESH_MS = 100  # 10 Hz: smooth enough, and never a redraw per progress signal


class TrainPage(QWidget):
    sig_run_finished = Signal(dict)  # the result of the reward run (status finished or cancelled)

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.annotator = ""
        self._worker = None  # a RunJob while training
        self._last_job = None  # the finished one, whose child may still be exiting
        self.writer: StoreWriter | None = None
        self._own_writer: StoreWriter | None = None
        self._running_method = ""
        self._buffer: dict[str, tuple[list[int], list[float]]] = {}
        self._dirty: set[str] = set()
        self._last_error = ""

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
        left_layout.addLayout(self._build_buttons())  # outside the scroll: always in reach
        # Never narrower than the settings need: the scroll area only scrolls vertically.
        fits = settings.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
        left.setMinimumWidth(max(330, fits))
        splitter.addWidget(left)
        splitter.addWidget(self._build_output())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([max(360, fits), 840])

        self._curve_timer = QTimer(self)
        self._curve_timer.setInterval(REFRESH_MS)
        self._curve_timer.timeout.connect(self._on_curve_timer)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self.refresh_preview)
        self._on_method_changed()
        self._update_buttons()

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

    def _build_buttons(self) -> QHBoxLayout:
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(lambda: self.resume())
        for button in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(button)
        return buttons

    def _build_output(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(8, 0, 0, 0)
        self.status = QLabel("Ready.")
        self.status.setObjectName("train_status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        layout.addWidget(self.progress)

        self.tabs = QTabWidget()
        live = QWidget()
        live_layout = QVBoxLayout(live)
        self.instant_note = QLabel("The instant method has no per-step curves: it computes the base model's "
                                   "features (each response once; cached in the project for the next run) "
                                   "and then fits the head in about a second. The progress bar above shows "
                                   "the features; the Results tab opens when it is done.")
        self.instant_note.setWordWrap(True)
        live_layout.addWidget(self.instant_note)
        grid = QGridLayout()
        self.plots = {}
        for i, (key, title) in enumerate(PLOTS):
            plot = make_plot(self, title)
            self.plots[key] = plot
            place_legend(plot, rising=key in ("accuracy", "margin"))
            if key == "accuracy":
                plot.getPlotItem().getViewBox().setLimits(yMin=-0.02, yMax=1.02)
            grid.addWidget(plot, i // 2, i % 2)
        self.curves = {}
        for metric, plot_key in CURVES:
            split = metric.split("/")[0]
            name = "validation" if split == "val" else "train"
            self.curves[metric] = live_curve(self.plots[plot_key], name, SPLIT_COLORS[split],
                                             dashed=split == "val")
        self.curves_grid = grid
        self.curves_widget = QWidget()
        self.curves_widget.setLayout(grid)
        live_layout.addWidget(self.curves_widget, 1)
        self.tabs.addTab(live, "Live")
        self.results = ResultsPanel()
        self.results.sig_relabel_requested.connect(self._on_relabel_requested)
        self.tabs.addTab(self.results, "Results")
        layout.addWidget(self.tabs, 1)
        return box

    # -- project and annotator -----------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        if project is not self.project:
            self.shutdown()
            self.results.clear()
            self._clear_curves()
            self.status.setText("Ready.")
            self.progress.hide()
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
        for job in (self._worker, self._last_job):  # the last one's child may still be exiting
            if job is not None:
                job.wait(60000)
        self._worker = self._last_job = None
        if self._own_writer is not None:
            self._own_writer.stop()
        self._own_writer = None
        self.writer = None
        self._curve_timer.stop()

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
        self.instant_note.setVisible(method == "instant")
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
        self.split = split_preview(self.project, config)
        left = labels_left_out_of_training(self.project, config.annotators)
        s = self.split
        # Ratings can only be learned from where there are some; the choice says how many.
        ratings_item = self.objective.model().item(1)
        ratings_item.setEnabled(s["ratings"] > 0)
        self.objective.setItemText(1, f"Ratings (regression): {s['ratings']:,}" if s["ratings"] else
                                   "Ratings (regression): none in this project")
        if config.objective == "regression":
            if not s["ratings"]:
                self.objective.setCurrentIndex(0)  # re-runs the preview as pairwise
                return
            self.preview.setText(
                f"<b>{s['ratings']:,}</b> rated responses: the reward learns to predict the rating "
                f"(mean squared error on the rating, standardised on the training split)<br>"
                f"train <b>{s['train']:,}</b> responses from {s['prompts_train']:,} prompts<br>"
                f"validation <b>{s['val']:,}</b> responses from {s['prompts_val']:,} prompts")
            self._update_buttons()
            return
        if not s["pairs"]:
            text = "<b>No labeled pairs yet.</b> Label some pairs (A, B or tie) or import labeled data first."
        else:
            text = (f"<b>{s['pairs']:,}</b> labeled pairs ({s['ties']:,} ties)<br>"
                    f"train <b>{s['train']:,}</b> pairs from {s['prompts_train']:,} prompts<br>"
                    f"validation <b>{s['val']:,}</b> pairs from {s['prompts_val']:,} prompts")
            if s["val"] == 0:
                text += ("<br><span style='color:#c62828'>No validation pairs: results cannot be "
                         "measured.</span>")
        text += (f"<br><small>Left out: {left.get('both_bad', 0):,} both-bad and "
                 f"{left.get('skip', 0):,} skipped labels (no preference between the two). "
                 "Each annotator's label is one example.</small>")
        self.preview.setText(text)
        self._update_buttons()

    # -- running -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._worker is not None

    def start(self, resume: bool = False) -> None:
        if self.project is None or self.running:
            return
        try:
            config = self.config()
        except (ValueError, RmstudioError) as exc:
            self._show_error("Cannot start training", str(exc))
            return
        if resume:
            latest = self._latest_run()
            config.finetune["resume"] = str(runs_dir(self.project.path) / f"run-{latest['id']}")
        path = self.project.path
        self._running_method = config.method
        self._clear_curves()
        self.results.clear()
        self.instant_note.setVisible(config.method == "instant")
        self.curves_widget.setVisible(config.method != "instant")
        self._shape_plots(config.objective)
        self.tabs.setCurrentIndex(0)
        self.progress.setRange(0, 0)
        self.progress.setFormat("Reading labels…")
        self.progress.show()
        self.status.setText(f"Training {config.method} on {config.base}…")

        # Every method runs in a child process (RunJob): a native crash or an out-of-memory
        # kill ends the child, not the window, and training never holds this interpreter
        # (an instant run in a thread here made the window stall for up to 427 ms).
        self._worker = RunJob(REWARD, path, config, self._store_writer(), self)
        self._worker.sig_progress.connect(self._on_job_progress)
        self._worker.sig_finished.connect(self._on_job_finished)
        self._worker.sig_failed.connect(self._on_job_failed)
        self._worker.start()
        self._curve_timer.start()
        self._update_buttons()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.status.setText("Cancelling… (stops at the next batch)")
            self.cancel_button.setEnabled(False)

    def resume(self) -> None:
        self.start(resume=True)

    def _latest_run(self) -> dict | None:
        """The latest reward run of the chosen method (the one Resume would continue)."""
        runs = list_runs(self.project, "reward") if self.project is not None else []
        runs = [r for r in runs if r["config"].get("method") == self.method()]
        return runs[-1] if runs else None

    def _on_job_progress(self, step: int, metrics: dict) -> None:
        """Only bookkeeping here: the timer draws."""
        stage = metrics.get("stage")
        if stage == "features":
            done, total, cached = metrics.get("done", 0), metrics.get("total", 0), metrics.get("cached", 0)
            self.progress.setRange(0, max(1, int(total)))
            self.progress.setValue(int(done))
            self.progress.setFormat(f"Features %v/%m computed · {int(cached):,} from cache")
        elif stage == "probe":
            self.progress.setRange(0, max(1, int(metrics.get("total", 0))))
            self.progress.setValue(int(metrics.get("done", 0)))
            self.progress.setFormat("Probing the frozen model for the head %v/%m pairs")
        elif stage == "fit":
            self.progress.setRange(0, 0)
            self.progress.setFormat("Fitting the head…")
        elif stage == "teacher":
            if "teacher/train_accuracy" not in metrics:
                self.status.setText("Fitting the instant model to distil from…")
            else:
                accuracy = metrics.get("teacher/val_accuracy")
                measured = f" (validation accuracy {accuracy:.1%})" if accuracy == accuracy else ""
                self.status.setText(f"Instant teacher fitted{measured}; fine-tuning on its soft targets…")
        elif stage == "split":
            self.status.setText(f"Training on {metrics.get('train_pairs', 0):,} pairs, validating on "
                                f"{metrics.get('val_pairs', 0):,}…")
        if "total_steps" in metrics:
            self.progress.setRange(0, max(1, int(metrics["total_steps"])))
            self.progress.setValue(int(step))
            self.progress.setFormat("Step %v/%m")
        for key, value in metrics.items():
            key = CURVE_OF.get(key, key)
            if "/" in key and isinstance(value, (int, float)):
                steps, values = self._buffer.setdefault(key, ([], []))
                steps.append(int(step))
                values.append(float(value))
                self._dirty.add(key)
        if self._dirty and not self._curve_timer.isActive():
            self._curve_timer.start()

    def _on_curve_timer(self) -> None:
        for key in self._dirty:
            curve = self.curves.get(key)
            if curve is not None:
                steps, values = self._buffer[key]
                curve.setData(steps, values)
        self._dirty.clear()
        if not self.running:
            self._curve_timer.stop()

    def _shape_plots(self, objective: str) -> None:
        for key, title in PLOT_TITLES[objective].items():
            set_title(self.plots[key], title)
        low = -1.02 if objective == "regression" else -0.02
        self.plots["accuracy"].getPlotItem().getViewBox().setLimits(yMin=low, yMax=1.02)
        self.plots["margin"].setVisible(objective == "pairwise")
        # Without the margin plot, the reward plot takes the whole second row.
        self.curves_grid.addWidget(self.plots["reward"], 1, *((1, 1, 1) if objective == "pairwise" else (0, 1, 2)))

    def _clear_curves(self) -> None:
        self._buffer.clear()
        self._dirty.clear()
        for curve in self.curves.values():
            curve.setData([], [])

    def _job_done(self) -> None:
        self._last_job, self._worker = self._worker, None
        self._on_curve_timer()  # the last points, then the timer stops
        self.progress.hide()
        self._update_buttons()

    def _on_job_finished(self, result: dict) -> None:
        self._job_done()
        result = dict(result or {})
        status = result.get("status", "finished")
        took = f" in {result['seconds']:.1f} s" if result.get("seconds") is not None else ""
        self.status.setText(f"Run #{result.get('run_id', '?')} {status}{took}.")
        self.results.show_result(result)
        if status == "finished" or self._running_method == "instant":
            self.tabs.setCurrentWidget(self.results)
        self.refresh_preview()
        self.sig_run_finished.emit(result)

    def _on_job_failed(self, message: str, details: str) -> None:
        self._job_done()
        self.status.setText(f"Training failed: {message}")
        self._show_error("Training failed", message, details)

    def _show_error(self, title: str, message: str, details: str = "") -> None:
        self._last_error = message
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Critical)
        box.setWindowTitle(title)
        box.setText(message)
        box.setInformativeText("Your project and its labels are unchanged.")
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()  # not exec(): the page and the app stay usable
        self.error_box = box

    def _update_buttons(self) -> None:
        has_pairs = self.project is not None and getattr(self, "split", {}).get("pairs", 0) > 0
        self.start_button.setEnabled(self.project is not None and not self.running)
        self.start_button.setToolTip("" if has_pairs else "Label some pairs first (A, B or tie).")
        self.cancel_button.setEnabled(self.running)
        fine_tune = self.method() != "instant"
        self.resume_button.setEnabled(fine_tune and self.project is not None and not self.running
                                      and self._latest_run() is not None)
        self.resume_button.setToolTip(
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
            self._show_error("Could not queue the pairs", str(exc))
            return
        self.results.relabel_status.setText(f"{n} pair{'s' * (n != 1)} queued for review: the Label "
                                            "page shows them first.")
