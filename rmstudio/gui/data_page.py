"""The Data workspace: what the project holds, import and export."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog, QFormLayout, QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton,
    QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from rmstudio.core.data.exporter import export_project
from rmstudio.core.data.importer import import_files
from rmstudio.core.labeling.stats import annotator_choice_counts
from rmstudio.core.store.project import Project
from rmstudio.gui.generate_dialog import GenerateDialog
from rmstudio.gui.pages import heading, paragraph
from rmstudio.gui.worker import start_job

IMPORT_FILTER = "Preference data (*.jsonl *.jsonl.gz *.ndjson *.json *.json.gz *.csv *.csv.gz *.parquet)"
COUNT_ROWS = [
    ("prompts", "Prompts"), ("comparisons", "Comparisons"),
    ("labeled_comparisons", "Labeled comparisons"), ("labels", "Labels"),
    ("annotators", "Annotators"),
]


class DataPage(QWidget):
    sig_project_changed = Signal()

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self._job = None
        # Set by the main window from Settings > Compute device; the generate dialog preselects it.
        self.device_preference = "auto"
        self.available_devices: set[str] | None = None
        self.generate_dialog: GenerateDialog | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 32, 32, 32)
        layout.addWidget(heading("Data"))
        self.empty_hint = paragraph(
            "This project is empty. <b>Import</b> preference data to label or train on: "
            "prompt/chosen/rejected pairs, Anthropic HH dialogues, conversations, unlabeled "
            "response_a/response_b pairs, rankings, or prompts only (JSONL, JSON, CSV, Parquet, "
            "gzip too). Labeled pairs arrive as labels by their source and can train a reward "
            "model at once.")
        layout.addWidget(self.empty_hint)
        form = QFormLayout()
        self.count_labels = {}
        for key, title in COUNT_ROWS:
            value = QLabel("0")
            value.setObjectName(f"count_{key}")
            self.count_labels[key] = value
            form.addRow(title, value)
        layout.addLayout(form)
        self.annotator_table = QTableWidget(0, 7)
        self.annotator_table.setHorizontalHeaderLabels(
            ["Annotator", "Kind", "Labels", "A/B preferred", "Tie", "Both bad", "Skip"])
        self.annotator_table.verticalHeader().hide()
        self.annotator_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.annotator_table.horizontalHeader().setStretchLastSection(True)
        self.annotator_table.setMaximumHeight(220)
        layout.addWidget(self.annotator_table)
        buttons = QHBoxLayout()
        self.import_button = QPushButton("Import files…")
        self.import_button.clicked.connect(self._on_import_clicked)
        self.export_button = QPushButton("Export for TRL…")
        self.export_button.clicked.connect(self._on_export_clicked)
        self.generate_button = QPushButton("Generate pairs…")
        self.generate_button.setToolTip("Sample responses for the prompts with a local model; "
                                        "the pairs go to the label queue.")
        self.generate_button.clicked.connect(self.open_generate_dialog)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.export_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.status = QLabel("")
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def set_project(self, project: Project | None) -> None:
        self.close_generate_dialog()  # it reads the project it was opened for
        self.project = project
        self.refresh()

    def refresh(self) -> None:
        counts = self.project.counts() if self.project else {}
        for key, label in self.count_labels.items():
            label.setText(f"{counts.get(key, 0):,}")
        self.empty_hint.setVisible(counts.get("comparisons", 0) == 0 and counts.get("prompts", 0) == 0)
        self._fill_annotator_table()
        busy = self._job is not None
        self.import_button.setEnabled(self.project is not None and not busy)
        has_prompts = counts.get("prompts", 0) > 0
        self.generate_button.setEnabled(self.project is not None and not busy and has_prompts)
        self.export_button.setEnabled(self.project is not None and not busy and counts.get("labels", 0) > 0)

    def _fill_annotator_table(self) -> None:
        rows = []
        if self.project is not None:
            rows = [(a["name"], a["kind"], a["labels"], a["preference"], a["tie"], a["both_bad"],
                     a["skip"]) for a in annotator_choice_counts(self.project)]
        self.annotator_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                text = f"{value or 0:,}" if c >= 2 else str(value)
                self.annotator_table.setItem(r, c, QTableWidgetItem(text))
        self.annotator_table.resizeColumnsToContents()
        self.annotator_table.setVisible(bool(rows))

    def import_paths(self, paths: list[str]) -> None:
        """Import in a worker thread with its own connection; the window stays responsive."""
        project_path = self.project.path

        def job(sink):
            with Project.open(project_path) as project:
                return import_files(project, paths, sink=sink)

        self.progress.show()
        self.status.setText(f"Importing {len(paths)} file(s)…")
        self._job = start_job(self, job, self._on_import_finished, self._on_import_failed,
                              lambda step, _m: self.status.setText(f"Importing… {step:,} records"))
        self.refresh()

    def open_generate_dialog(self) -> GenerateDialog:
        if self.generate_dialog is not None and self.generate_dialog.is_running():
            self.generate_dialog.show()
            self.generate_dialog.raise_()
            return self.generate_dialog
        dialog = GenerateDialog(self.project, device=self.device_preference,
                                available=self.available_devices, parent=self)
        dialog.sig_generated.connect(self._on_generated)
        dialog.finished.connect(self._on_generate_dialog_closed)
        self.generate_dialog = dialog
        dialog.show()  # modeless: labeling can go on while pairs are generated
        return dialog

    def _on_generate_dialog_closed(self, _code: int = 0) -> None:
        if self.generate_dialog is not None:
            self.generate_dialog.deleteLater()
            self.generate_dialog = None

    def close_generate_dialog(self) -> None:
        """Stop a running generation (finished prompts are kept) and close the dialog."""
        if self.generate_dialog is not None:
            self.generate_dialog.shutdown()
            self.generate_dialog.close()
            self._on_generate_dialog_closed()

    def _on_generated(self, _result) -> None:
        self.refresh()
        self.sig_project_changed.emit()

    def _on_import_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import preference data", "", IMPORT_FILTER)
        if paths:
            self.import_paths(paths)

    def _on_import_finished(self, report) -> None:
        self._job = None
        self.progress.hide()
        self.status.setText("Imported: " + report.summary())
        self.refresh()
        self.sig_project_changed.emit()

    def _on_import_failed(self, message: str, details: str) -> None:
        self._job = None
        self.progress.hide()
        self.status.setText("Import failed; the project is unchanged.")
        self.refresh()
        box = QMessageBox(QMessageBox.Warning, "Import failed",
                          f"{message}\n\nNothing from this import was kept.", parent=self)
        box.setDetailedText(details)
        box.open()

    def _on_export_clicked(self) -> None:
        suggested = str(Path(self.project.path).with_suffix(".preferences.jsonl"))
        out, _ = QFileDialog.getSaveFileName(self, "Export for TRL", suggested,
                                             "JSON Lines (*.jsonl);;Parquet (*.parquet)")
        if out:
            self.export_to(out)

    def export_to(self, out: str) -> None:
        """Export in a worker thread with its own connection (large projects take seconds)."""
        project_path = self.project.path

        def job(_sink):
            with Project.open(project_path) as project:
                return export_project(project, out)

        self.progress.show()
        self.status.setText("Exporting…")
        # Bound methods, not closures: Qt then runs them on this (the UI) thread.
        self._job = start_job(self, job, self._on_export_finished, self._on_export_failed)
        self.refresh()

    def _on_export_finished(self, report) -> None:
        self._job = None
        self.progress.hide()
        self.status.setText(report.summary())
        self.refresh()

    def _on_export_failed(self, message: str, _details: str) -> None:
        self._job = None
        self.progress.hide()
        self.status.setText("Export failed; nothing was written.")
        self.refresh()
        QMessageBox.warning(self, "Export failed", message)
