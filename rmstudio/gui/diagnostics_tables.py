"""The Diagnose page's lower half: accuracy by annotator, and the disagreements with their ticks
and "Send to label queue".

Kept apart from ``diagnostics_page`` (which picks the model and set and runs the diagnosis):
this part only shows a finished ``Diagnostics`` and sends the ticked pairs back for review
through the window's store writer.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget, QVBoxLayout, QWidget,
)

from rmstudio.gui import diagnostics_plots
from rmstudio.gui.pages import NOTE_STYLE
from rmstudio.gui.store_writer import StoreWriter

SHOWN_DISAGREEMENTS = 1000  # a table of widgets; the most confident ones are the ones to read


class DiagnosticsTables(QWidget):
    """The two tables of a diagnosis; the ticked disagreements go to the label queue."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.writer: StoreWriter | None = None
        self._relabel_request: int | None = None
        row = QHBoxLayout(self)
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
        right.addLayout(self._build_buttons())
        row.addLayout(left, 2)
        row.addLayout(right, 5)

    def _build_buttons(self) -> QHBoxLayout:
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
        return buttons

    def set_writer(self, writer: StoreWriter | None) -> None:
        if self.writer is not None:
            self.writer.sig_saved.disconnect(self._on_saved)
        self.writer = writer
        if writer is not None:
            writer.sig_saved.connect(self._on_saved)

    def show_diagnostics(self, d) -> None:
        self.send_status.setText("")
        diagnostics_plots.fill_annotator_table(self.annotators, d)
        self._fill_disagreements(d)

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
