"""The Browse table's model: label ids only, pages of ids through fetchMore, columns on demand."""

from __future__ import annotations

import html

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal

from rmstudio.core.labeling.browse import LabelFilter, label_ids, label_rows
from rmstudio.core.store.project import Project

CHOICE_NAMES = {"a": "A better", "b": "B better", "tie": "Tie", "both_bad": "Both bad",
                "skip": "Skip"}
STRENGTH_NAMES = {1: "better", 2: "much better"}
# A/B labels from a file or implied by a ranking carry no strength: say so instead of a blank
# cell that reads as missing data. Ties, skips and "both bad" have no strength to give.
NO_STRENGTH = "—"
NO_STRENGTH_TIP = "No strength given (labels imported from a file or implied by a ranking have none)"
# Note last: the table stretches its last column, and a note is the one cell that runs long.
COLUMNS = ["Comparison", "Prompt", "Annotator", "Choice", "Strength", "Time", "Note"]
NOTE = COLUMNS.index("Note")
STRENGTH = COLUMNS.index("Strength")


def strength_text(choice: str, strength: int | None) -> str:
    if choice not in ("a", "b"):
        return ""
    return STRENGTH_NAMES.get(strength, NO_STRENGTH)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


class LabelTableModel(QAbstractTableModel):
    """Label ids only; a row's columns are read on demand in blocks, and the ids arrive a page
    at a time through fetchMore, so a project with a million labels opens at once."""

    sig_loaded = Signal()  # after every page read, also one that found nothing more

    PAGE = 500
    BLOCK = 100  # rows whose columns are read in one query
    CACHE_LIMIT = 20_000  # cached row tuples before the cache is dropped

    def __init__(self, parent=None):
        super().__init__(parent)
        self.project: Project | None = None
        self._ids: list[int] = []
        self._rows: dict[int, tuple] = {}
        self._exhausted = True
        self._filter = LabelFilter()

    # -- filters and loading ---------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.set_filters()

    def set_filters(self, annotator_id: int | None = None, choice: str | None = None,
                    search: str = "") -> None:
        self._filter = LabelFilter(annotator_id, choice, search)
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self._ids, self._rows = [], {}
        self._exhausted = self.project is None
        self._fetch_page(notify=False)
        self.endResetModel()
        self.sig_loaded.emit()

    def _fetch_page(self, notify: bool) -> None:
        if self._exhausted:
            return
        before = self._ids[-1] if self._ids else None  # keyset paging: newest first
        ids = label_ids(self.project, self._filter, before_id=before, limit=self.PAGE)
        self._exhausted = len(ids) < self.PAGE
        if not ids:
            return
        if notify:
            self.beginInsertRows(QModelIndex(), len(self._ids), len(self._ids) + len(ids) - 1)
        self._ids.extend(ids)
        if notify:
            self.endInsertRows()

    def canFetchMore(self, parent=QModelIndex()) -> bool:
        return not parent.isValid() and not self._exhausted

    def fetchMore(self, parent=QModelIndex()) -> None:
        if not parent.isValid():
            self._fetch_page(notify=True)
            self.sig_loaded.emit()

    # -- rows ------------------------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return COLUMNS[section]
        return None

    def label_id(self, row: int) -> int:
        return self._ids[row]

    def row_values(self, row: int) -> tuple | None:
        """(label id, comparison id, prompt line, annotator, choice, strength, note, time)."""
        label_id = self._ids[row]
        if label_id not in self._rows:
            start = row - row % self.BLOCK
            self._load(self._ids[start:start + self.BLOCK])
        return self._rows.get(label_id)

    def _load(self, ids: list[int]) -> None:
        if len(self._rows) > self.CACHE_LIMIT:
            self._rows.clear()
        self._rows.update(label_rows(self.project, ids))

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid() or role not in (Qt.DisplayRole, Qt.ToolTipRole):
            return None
        values = self.row_values(index.row())
        if values is None:  # deleted since the page was read
            return "—" if index.column() == 0 and role == Qt.DisplayRole else None
        _, cid, prompt, annotator, choice, strength, note, at = values
        column = index.column()
        if role == Qt.ToolTipRole:
            if column == STRENGTH and strength_text(choice, strength) == NO_STRENGTH:
                return NO_STRENGTH_TIP
            if column == NOTE and note:  # rich text, so Qt wraps a long note instead of one line
                return f"<p style='white-space:pre-wrap'>{html.escape(note)}</p>"
            return prompt if column == 1 else None
        return [
            str(cid), _first_line(prompt), annotator, CHOICE_NAMES.get(choice, choice),
            strength_text(choice, strength), (at or "")[:19].replace("T", " "),
            (note or "").replace("\n", " "),
        ][column]

    def refresh_label(self, label_id: int) -> None:
        """Re-read one row after it changed."""
        self._rows.pop(label_id, None)
        if label_id in self._ids:
            row = self._ids.index(label_id)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def remove_label(self, label_id: int) -> None:
        if label_id in self._ids:
            row = self._ids.index(label_id)
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._ids[row]
            self._rows.pop(label_id, None)
            self.endRemoveRows()
