"""'Save report…' for one run: a single HTML file with its settings, figures and curves.

Shared by the Train page's results, the Runs page and the Optimize results. The report itself
is the core's (``rmstudio.core.runs.report``); it is written off the UI thread, on a connection
of its own, because a run's metrics and result file can be large.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from rmstudio.gui.theme import colour
from rmstudio.gui.worker import start_job


def write_run_report(project_path: str | Path, run_id: int, out: str | Path) -> Path:
    """The job: open the project in this (worker) thread and write the report."""
    from rmstudio.core.runs.report import write_report
    from rmstudio.core.store.project import Project

    with Project.open(project_path) as project:
        return write_report(project, run_id, out)


class ReportButton(QWidget):
    """The button and a line saying where the report went; hidden while there is no run."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project_path: Path | None = None
        self.run_id: int | None = None
        self.saved: Path | None = None
        self._job = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        self.button = QPushButton("Save report…")
        self.button.setToolTip("Write this run as one HTML file (settings, data counts, results, curves "
                               "and the model folder) that opens in any browser and can be shared.")
        self.button.clicked.connect(self.save_clicked)
        layout.addWidget(self.button)
        self.status = QLabel("")
        self.status.setObjectName("report_status")
        self.status.setWordWrap(True)
        self.status.setOpenExternalLinks(True)
        layout.addWidget(self.status, 1)
        self.setVisible(False)  # until set_run names a run

    def set_run(self, project_path: str | Path | None, run_id: int | None) -> None:
        """The run a click reports on (None: nothing to report, the button hides)."""
        new = (Path(project_path) if project_path else None, run_id)
        if new == (self.project_path, self.run_id):
            return  # the same run again (a refresh): keep what the last save said
        self.project_path, self.run_id = new
        self.saved = None
        if self._job is None:
            self.status.setText("")
        self.setVisible(self.project_path is not None and self.run_id is not None)

    def choose_file(self) -> str:
        """Ask where to save ('' when cancelled). Tests replace this method."""
        start = str(Path.home() / f"run-{self.run_id}-report.html")
        path, _ = QFileDialog.getSaveFileName(self, "Save the run report", start, "HTML page (*.html)")
        if path and Path(path).suffix.lower() not in (".html", ".htm"):
            path += ".html"
        return path

    def save_clicked(self) -> None:
        if self.project_path is None or self.run_id is None or self._job is not None:
            return
        out = self.choose_file()
        if not out:
            return
        project_path, run_id = self.project_path, self.run_id
        self.button.setEnabled(False)
        self.status.setText("Writing the report…")
        self._job = start_job(self, lambda _sink: write_run_report(project_path, run_id, out),
                              self._on_saved, self._on_failed)

    def busy(self) -> bool:
        return self._job is not None

    def _on_saved(self, path) -> None:
        self._finish_job()
        self.saved = Path(path)
        url = QUrl.fromLocalFile(str(self.saved)).toString()
        self.status.setText(f"Saved to <a href='{escape(url)}'>{escape(str(self.saved))}</a>")

    def _on_failed(self, message: str, _details: str) -> None:
        self._finish_job()
        error = colour("error")
        self.status.setText(f"<span style='color:{error}'>Report not saved: {escape(message)}</span>")

    def _finish_job(self) -> None:
        self._job = None  # its thread quits by itself (start_job connects the end to quit)
        self.button.setEnabled(True)
