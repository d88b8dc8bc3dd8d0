"""The Diagnose workspace: how a reward model reads a labeled set, and the pairs it disputes.

Pick a reward model and a set (the project's labeled pairs, the validation split of the model's
own run, or a preference file); Run scores it off the UI thread (``worker.start_job``) with
``core.reward.diagnostics``, which holds all the figures. The page draws them, lists accuracy
by annotator and the disagreements, and sends the ticked ones to the label queue through the
window's store writer. The core modules load torch, so they are imported inside the job.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QProgressBar,
    QPushButton, QSizePolicy, QSplitter, QVBoxLayout, QWidget,
)

from rmstudio.core.reward.catalog import RewardModelEntry, reward_models
from rmstudio.core.store.project import Project
from rmstudio.gui import diagnostics_plots
from rmstudio.gui.diagnostics_tables import DiagnosticsTables
from rmstudio.gui.pages import heading
from rmstudio.gui.store_writer import StoreWriter
from rmstudio.gui.worker import start_job
from rmstudio.gui.theme import colour

FOLDER = "__folder__"
ALL, VALIDATION, FILE = "all", "validation", "file"


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _job(source: str, run_id: int | None, model_path: str):
    """What runs on the worker thread: read the set, load the model, diagnose; None if cancelled."""

    def job(sink):
        from rmstudio.core.reward.diagnostics import DiagnosisCancelled, diagnose, labeled_set
        from rmstudio.core.reward.scoring import load_reward_model

        pairs = labeled_set(source, run_id)  # its own connection: none may cross threads
        sink.log(0, {"message": f"Loading the model to score {len(pairs):,} labels…"})
        scorer = load_reward_model(model_path)
        sink.log(0, {"message": f"Scoring {len(pairs):,} labels…"})
        try:
            return diagnose(scorer, pairs, sink)
        except DiagnosisCancelled:
            return None

    return job


class DiagnosticsPage(QWidget):
    sig_diagnosed = Signal(object)  # the Diagnostics shown (tests and screenshots wait on it)

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.writer: StoreWriter | None = None
        self.entries: list[RewardModelEntry] = []
        self.folder = ""
        self.file = ""
        self.result = None
        self._job = None
        self._trained_run: int | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 16, 16, 16)
        outer.addWidget(heading("Diagnose"))
        top = QHBoxLayout()
        self.model_box = QComboBox()
        self.model_box.setObjectName("diagnose_model")
        self.model_box.setMinimumWidth(320)
        self.model_box.activated.connect(self._on_model_chosen)
        self.set_box = QComboBox()
        self.set_box.setObjectName("diagnose_set")
        self.set_box.addItem("All labeled pairs of the project", ALL)
        self.set_box.addItem("The validation split of the model's run", VALIDATION)
        self.set_box.addItem("A preference file…", FILE)
        self.set_box.activated.connect(self._on_set_chosen)
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        top.addWidget(QLabel("Reward model"))
        top.addWidget(self.model_box, 3)
        top.addWidget(QLabel("on"))
        top.addWidget(self.set_box, 2)
        top.addWidget(self.run_button)
        top.addWidget(self.cancel_button)
        outer.addLayout(top)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        progress_row.addWidget(self.progress)
        progress_row.addWidget(self.status, 1)
        outer.addLayout(progress_row)
        self.headline = QLabel("<i>Pick a reward model and a labeled set, then Run.</i>")
        self.headline.setObjectName("diagnose_headline")
        self.headline.setTextFormat(Qt.RichText)
        self.headline.setWordWrap(True)
        self.headline.setTextInteractionFlags(Qt.TextSelectableByMouse)
        # A wrapped label under a splitter gets squeezed below its text: keep two lines' room.
        self.headline.setMinimumHeight(52)
        self.headline.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Minimum)
        outer.addWidget(self.headline)

        splitter = QSplitter(Qt.Vertical)
        grid_holder = QWidget()
        grid = QGridLayout(grid_holder)
        grid.setContentsMargins(0, 0, 0, 0)
        self.plots = diagnostics_plots.make_plots(self)
        for i, plot in enumerate(self.plots.values()):
            grid.addWidget(plot, i // 2, i % 2)
        splitter.addWidget(grid_holder)
        self.tables = DiagnosticsTables()
        splitter.addWidget(self.tables)
        splitter.setSizes([480, 300])
        outer.addWidget(splitter, 1)
        self._update_controls()

    # -- project, writer, choices --------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        if project is None:
            self.shutdown()
            self.set_writer(None)
        self.project = project
        self.refresh_models()

    def set_annotator(self, name: str) -> None:
        self.annotator = name  # the review queue is for everyone; kept for symmetry with the pages

    def set_writer(self, writer: StoreWriter | None) -> None:
        self.writer = writer
        self.tables.set_writer(writer)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.refresh_models()  # a model trained since the page was last seen is offered at once
        super().showEvent(event)

    def refresh_models(self) -> None:
        current = self.model_box.currentData()
        self.entries = reward_models(self.project) if self.project is not None else []
        self.model_box.clear()
        for entry in self.entries:
            self.model_box.addItem(entry.title, entry.path)
        if self.folder:
            self.model_box.addItem(f"Folder: {self.folder}", self.folder)
        self.model_box.addItem("A model folder on disk…", FOLDER)
        found = self.model_box.findData(current) if current not in (None, FOLDER) else -1
        self.model_box.setCurrentIndex(max(found, 0))
        self._update_controls()

    def use_model_folder(self, path: str) -> None:
        self.folder = str(path)
        self.refresh_models()
        self.model_box.setCurrentIndex(self.model_box.findData(self.folder))
        self._update_controls()

    def use_file(self, path: str) -> None:
        self.file = str(path)
        self.set_box.setItemText(self.set_box.findData(FILE), f"File: {Path(path).name}")
        self.set_box.setCurrentIndex(self.set_box.findData(FILE))
        self._update_controls()

    def use_set(self, kind: str) -> None:
        self.set_box.setCurrentIndex(self.set_box.findData(kind))
        self._update_controls()

    def model_path(self) -> str:
        data = self.model_box.currentData()
        return "" if data in (None, FOLDER) else str(data)

    def _run_entry(self) -> RewardModelEntry | None:
        return next((e for e in self.entries if e.path == self.model_path()), None)

    def _on_model_chosen(self, _index: int) -> None:
        if self.model_box.currentData() == FOLDER:
            path = QFileDialog.getExistingDirectory(self, "A reward model folder (instant or fine-tuned)")
            if path:
                self.use_model_folder(path)
            else:
                self.model_box.setCurrentIndex(0)
        self._update_controls()

    def _on_set_chosen(self, _index: int) -> None:
        if self.set_box.currentData() == FILE:
            path, _ = QFileDialog.getOpenFileName(self, "A labeled preference file", self.file,
                                                  "Preference data (*.jsonl *.json *.parquet *.csv *.gz);;"
                                                  "All files (*)")
            if path:
                self.use_file(path)
            elif not self.file:
                self.set_box.setCurrentIndex(0)
        self._update_controls()

    def _problem(self) -> str:
        """Why Run cannot start now, or ''."""
        kind = self.set_box.currentData()
        if not self.model_path():
            return "No reward model yet: train one on the Train page, or pick a folder on disk."
        if kind in (ALL, VALIDATION) and self.project is None:
            return "Open a project, or pick a preference file."
        if kind == VALIDATION and self._run_entry() is None:
            return "A model folder picked on disk has no run here: diagnose all labeled pairs or a file."
        if kind == FILE and not self.file:
            return "Pick a preference file."
        return ""

    def _update_controls(self) -> None:
        running = self._job is not None
        problem = self._problem()
        self.run_button.setEnabled(not running and not problem)
        self.cancel_button.setEnabled(running)
        self.model_box.setEnabled(not running)
        self.set_box.setEnabled(not running)
        if not running:
            self.status.setText(problem)

    # -- running -------------------------------------------------------------------------

    def run(self) -> None:
        problem = self._problem()
        if problem or self._job is not None:
            self.status.setText(problem)
            return
        entry = self._run_entry()
        # All the labels include those the model trained on: the headline says so.
        self._trained_run = entry.run_id if entry and self.set_box.currentData() == ALL else None
        kind = self.set_box.currentData()
        job = _job(self.file if kind == FILE else str(self.project.path),
                   entry.run_id if kind == VALIDATION else None, self.model_path())
        self.progress.setRange(0, 0)  # busy until the first count arrives
        self.progress.show()
        self.status.setText("Reading the set…")
        self._job = start_job(self, job, self._on_finished, self._on_failed, self._on_progress)
        self._update_controls()

    def cancel(self) -> None:
        if self._job is not None:
            self._job[1].cancel()
            self.status.setText("Cancelling…")

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop a running diagnosis and wait for its thread (a closing window must not leave it)."""
        if self._job is None:
            return
        thread, worker = self._job
        worker.cancel()
        thread.quit()
        thread.wait(timeout_ms)
        self._job = None
        self.progress.hide()
        self._update_controls()

    def _on_progress(self, step: int, metrics: dict) -> None:
        if metrics.get("message"):
            self.status.setText(metrics["message"])
        total = metrics.get("total")
        if total:
            self.progress.setRange(0, int(total))
            self.progress.setValue(min(int(step), int(total)))

    def _on_finished(self, diagnostics) -> None:
        self._job = None
        self.progress.hide()
        self._update_controls()
        if diagnostics is None:
            self.status.setText("Cancelled: nothing is shown for a set scored in part.")
            return
        self.status.setText("")
        self.show_diagnostics(diagnostics)

    def _on_failed(self, message: str, _details: str) -> None:
        self._job = None
        self.progress.hide()
        self._update_controls()
        self.status.setText(f"<span style='color:{colour('error')}'>Could not diagnose: {escape(message)}</span>")

    # -- showing -------------------------------------------------------------------------

    def show_diagnostics(self, d) -> None:
        self.result = d
        diagnostics_plots.draw_all(self.plots, d)
        if not d.rows:
            self.headline.setText(f"<b>No pairs with a preference in this set</b> ({d.ties_left_out:,} ties "
                                  "left out): nothing to measure.")
        else:
            corr = "–" if d.pearson is None else f"{d.pearson:+.2f}"
            self.headline.setText(
                f"<span style='font-size:20px; font-weight:600'>Accuracy {_pct(d.accuracy)}</span> on "
                f"{len(d.rows):,} pairs vs random <b>50%</b> and prefer-longer "
                f"<b>{_pct(d.baseline_longer)}</b> · "
                f"{len(d.disagreements):,} disagreement{'s' * (len(d.disagreements) != 1)} · "
                f"ECE {d.ece:.3f} · "
                f"reward–length Pearson {corr} (lengths in {d.length_unit})"
                + (f" · {d.ties_left_out:,} ties left out" if d.ties_left_out else "")
                + (f"<br><small>These include the pairs run #{self._trained_run} trained on; its validation "
                   "split is the held-out reading.</small>" if self._trained_run is not None else ""))
        self.tables.show_diagnostics(d)
        self.sig_diagnosed.emit(d)
