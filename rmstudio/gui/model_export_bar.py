"""'Export model…' and 'Open folder' for one run's reward model, with the line that loads it.

Shared by the Train page's results and the Runs page. The copy itself is the core's
(``rmstudio.core.reward.export_model``) and runs off the UI thread: a fine-tuned model is hundreds
of megabytes.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QTextOption
from PySide6.QtWidgets import (
    QFileDialog, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget,
)

from rmstudio.core.reward.export_model import export_destination, export_model, load_hint
from rmstudio.gui.theme import colour
from rmstudio.gui.worker import start_job


class ModelExportBar(QWidget):
    """Buttons for the model folder set with :meth:`set_model`; hidden while there is none."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model_dir: Path | None = None
        self.run_id: int | None = None
        self.exported: Path | None = None
        self._job = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        self.export_button = QPushButton("E&xport model…")
        self.export_button.setToolTip("Copy this run's model folder to a folder you choose (a new or "
                                      "empty one; a folder with files gets a new folder inside it).")
        self.export_button.clicked.connect(self.export_clicked)
        self.open_button = QPushButton("Open folder")
        self.open_button.setToolTip("Show the model folder in your file manager.")
        self.open_button.clicked.connect(self.open_folder)
        row.addWidget(self.export_button)
        row.addWidget(self.open_button)
        row.addStretch(1)
        layout.addLayout(row)
        # Read-only text, not a label: a long path wraps anywhere, and it selects and copies as code.
        self.hint = QPlainTextEdit()
        self.hint.setObjectName("model_load_hint")
        self.hint.setReadOnly(True)
        self.hint.setFrameShape(QFrame.NoFrame)
        self.hint.setWordWrapMode(QTextOption.WrapAtWordBoundaryOrAnywhere)
        self.hint.setVerticalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        self.hint.setStyleSheet("QPlainTextEdit { font-family: monospace; font-size: 11px; "
                                "background: transparent; }")
        self.hint.setFixedHeight(4 * self.hint.fontMetrics().lineSpacing() + 8)
        layout.addWidget(self.hint)
        self.status = QLabel("")
        self.status.setObjectName("model_export_status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.set_model(None)

    # -- public --------------------------------------------------------------------------

    def set_model(self, folder: str | Path | None, run_id: int | None = None) -> None:
        """Show the buttons for ``folder`` (a run's saved model), or hide them (None, or a folder
        that is gone)."""
        folder = Path(folder) if folder else None
        if folder is not None and (folder, run_id) == (self.model_dir, self.run_id):
            return  # the same model again (a page refresh): keep what the last export said
        self.model_dir = folder if folder is not None and folder.is_dir() else None
        self.run_id = run_id
        self.exported = None
        self.status.setText("")
        self.setVisible(self.model_dir is not None)
        self._show_hint()

    def choose_destination(self) -> str:
        """Ask for the folder to export to ('' when cancelled). Tests replace this method."""
        return QFileDialog.getExistingDirectory(self, "Export the reward model to…", str(Path.home()))

    def export_clicked(self) -> None:
        if self.model_dir is None or self._job is not None:
            return
        picked = self.choose_destination()
        if not picked:
            return
        source = self.model_dir
        destination = export_destination(picked, source, self.run_id)
        self.export_button.setEnabled(False)
        self.status.setText(f"Copying to {destination}…")
        self._job = start_job(self, lambda _sink: export_model(source, destination),
                              self._on_exported, self._on_failed)

    def open_folder(self) -> None:
        folder = self.exported or self.model_dir
        if folder is not None:
            self.open_url(QUrl.fromLocalFile(str(folder)))

    def open_url(self, url: QUrl) -> bool:
        """QDesktopServices.openUrl (tests replace this method)."""
        return QDesktopServices.openUrl(url)

    def busy(self) -> bool:
        return self._job is not None

    # -- internals -----------------------------------------------------------------------

    def _show_hint(self) -> None:
        folder = self.exported or self.model_dir
        self.hint.setPlainText(load_hint(folder) if folder is not None else "")

    def _on_exported(self, destination) -> None:
        self._finish_job()
        self.exported = Path(destination)
        self.status.setText(f"Exported to {destination}")
        self._show_hint()

    def _on_failed(self, message: str, _details: str) -> None:
        self._finish_job()
        self.status.setText(f"<span style='color:{colour('error')}'>Not exported: {escape(message)}</span>")

    def _finish_job(self) -> None:
        self._job = None  # its thread quits by itself (start_job connects the end to quit)
        self.export_button.setEnabled(True)
