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
    QAbstractItemView, QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
    QPushButton, QSizePolicy, QSplitter, QTableWidget, QVBoxLayout, QWidget,
)

from rmstudio.core.reward.catalog import RewardModelEntry, reward_models
from rmstudio.core.store.project import Project
from rmstudio.gui import diagnostics_plots
from rmstudio.gui.pages import NOTE_STYLE, heading
from rmstudio.gui.store_writer import StoreWriter
from rmstudio.gui.worker import start_job

FOLDER = "__folder__"
ALL, VALIDATION, FILE = "all", "validation", "file"
SHOWN_DISAGREEMENTS = 1000  # a table of widgets; the most confident ones are the ones to read


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
        self._relabel_request: int | None = None
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
        splitter.addWidget(self._build_tables())
        splitter.setSizes([480, 300])
        outer.addWidget(splitter, 1)
        self._update_controls()

    def _build_tables(self) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        self.annotators = QTableWidget(0, 4)
        self.annotators.setObjectName("diagnose_annotators")
        self.annotators.setHorizontalHeaderLabels(["Annotator", "Pairs", "Accuracy", "95% interval"])
        self.disagreements = QTableWidget(0, 5)
        self.disagreements.setObjectName("diagnose_disagreements")
        self.disagreements.setHorizontalHeaderLabels(
            ["Pair", "Annotators", "P(chosen)", "r chosen − r rejected", "Prompt"])
        for table in (self.annotators, self.disagreements):
            table.verticalHeader().hide()
            table.verticalHeader().setDefaultSectionSize(22)
            table.setEditTriggers(QAbstractItemView.NoEditTriggers)
            table.setSelectionBehavior(QAbstractItemView.SelectRows)
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.annotators.horizontalHeader().setStretchLastSection(True)
        self.disagreements.horizontalHeader().setSectionResizeMode(4, QHeaderView.Stretch)
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Accuracy by annotator</b>"))
        left.addWidget(self.annotators, 1)
        right = QVBoxLayout()
        self.disagreements_title = QLabel("<b>Disagreements</b>")
        right.addWidget(self.disagreements_title)
        right.addWidget(self.disagreements, 1)
        buttons = QHBoxLayout()
        self.tick_all_button = QPushButton("Tick all")
        self.tick_all_button.clicked.connect(lambda: self.set_all_ticked(True))
        self.send_button = QPushButton("Send to label queue")
        self.send_button.setToolTip("Marks the ticked pairs for review: the Label page shows them first. "
                                    "Their labels are kept.")
        self.send_button.clicked.connect(self.send_ticked)
        self.send_status = QLabel("")
        self.send_status.setWordWrap(True)
        self.send_status.setStyleSheet(NOTE_STYLE)
        buttons.addWidget(self.tick_all_button)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.send_status, 1)
        right.addLayout(buttons)
        row.addLayout(left, 2)
        row.addLayout(right, 5)
        return box

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
        if self.writer is not None:
            self.writer.sig_saved.disconnect(self._on_saved)
        self.writer = writer
        if writer is not None:
            writer.sig_saved.connect(self._on_saved)

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
        self.status.setText(f"<span style='color:#c62828'>Could not diagnose: {escape(message)}</span>")

    # -- showing -------------------------------------------------------------------------

    def show_diagnostics(self, d) -> None:
        self.result = d
        self.send_status.setText("")
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
        diagnostics_plots.fill_annotator_table(self.annotators, d)
        self._fill_disagreements(d)
        self.sig_diagnosed.emit(d)

    def _fill_disagreements(self, d) -> None:
        shown = d.disagreements[:SHOWN_DISAGREEMENTS]
        in_project = bool(shown) and all(r.comparison_id > 0 for r in shown)
        diagnostics_plots.fill_disagreement_table(self.disagreements, shown, checkable=in_project)
        more = (f": the {len(shown):,} most confident of {len(d.disagreements):,}"
                if len(shown) < len(d.disagreements) else "")
        self.disagreements_title.setText(f"<b>Disagreements</b> (the model prefers the rejected response, "
                                         f"most confident first{more})")
        self.tick_all_button.setEnabled(in_project)
        self.send_button.setEnabled(in_project)
        if shown and not in_project:
            self.send_status.setText("These pairs come from a file, not from the project: import the file "
                                     "to label them again.")

    def set_all_ticked(self, ticked: bool) -> None:
        for row in range(self.disagreements.rowCount()):
            item = self.disagreements.item(row, 0)
            if item.flags() & Qt.ItemIsUserCheckable:
                item.setCheckState(Qt.Checked if ticked else Qt.Unchecked)

    def ticked(self) -> list[int]:
        items = [self.disagreements.item(row, 0) for row in range(self.disagreements.rowCount())]
        return [item.data(Qt.UserRole) for item in items if item.checkState() == Qt.Checked]

    def send_ticked(self) -> None:
        ids = self.ticked()
        if not ids:
            self.send_status.setText("Tick the pairs to send back first.")
            return
        if self.writer is None:
            self.send_status.setText("Open a project first.")
            return
        self._relabel_request = self.writer.send_to_relabel(ids)

    def _on_saved(self, result: dict) -> None:
        if result.get("request_id") != self._relabel_request:
            return
        self._relabel_request = None
        if result.get("relabel_error"):
            self.send_status.setText(f"Not sent: {result['relabel_error']}")
            return
        n = int(result.get("queued", 0))
        self.send_status.setText(f"{n} pair{'s' * (n != 1)} queued for review: the Label page shows them "
                                 "first.")
        self.set_all_ticked(False)
