"""A small searchable list of the project's prompts, for the Score page's "From project…".

It lists prompts that have two or more responses (``core.labeling.prompt_responses``: the
query lives in the core) and says which one the user picked; the page then reads that prompt's
responses and fills its candidates. A search reads the list again after a pause in typing.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget,
)

from rmstudio.core.labeling.prompt_responses import LIST_LIMIT, find_prompts
from rmstudio.core.store.project import Project

SEARCH_PAUSE_MS = 200  # a search over a big project's prompts is a table scan: not one per key
SHOWN_CHARS = 140


class ProjectPromptsDialog(QDialog):
    sig_chosen = Signal(int)  # the prompt id

    def __init__(self, project: Project, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.setWindowTitle("Candidates from the project")
        self.resize(640, 420)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Pick a prompt: its responses become the candidates."))
        self.search = QLineEdit()
        self.search.setObjectName("prompt_search")
        self.search.setPlaceholderText("Search the prompts…")
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self.list = QListWidget()
        self.list.setObjectName("project_prompts")
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        layout.addWidget(self.list, 1)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text); font-size: 12px;")
        layout.addWidget(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.use_button = buttons.button(QDialogButtonBox.Ok)
        self.use_button.setText("Use these responses")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_PAUSE_MS)
        self._timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _text: self._timer.start())
        self.list.currentRowChanged.connect(lambda row: self.use_button.setEnabled(row >= 0))
        self.refresh()

    def refresh(self) -> None:
        self._timer.stop()
        search = self.search.text()
        choices = find_prompts(self.project, search)
        self.list.clear()
        for choice in choices:
            first = " ".join(choice.text.split())
            shown = first if len(first) <= SHOWN_CHARS else first[:SHOWN_CHARS - 1] + "…"
            item = QListWidgetItem(f"{shown}   ({choice.responses} responses)")
            item.setData(Qt.UserRole, choice.prompt_id)
            item.setToolTip(choice.text[:2000])
            self.list.addItem(item)
        if choices:
            self.list.setCurrentRow(0)
        self.use_button.setEnabled(bool(choices))
        if not choices:
            self.note.setText(f"No prompt matches “{search.strip()}”." if search.strip() else
                              "No prompt in this project has two responses yet: import pairs or "
                              "generate them first.")
        else:
            more = " (the first ones: search to find others)" if len(choices) == LIST_LIMIT else ""
            self.note.setText(f"{len(choices)} prompts with two or more responses{more}.")

    def chosen_prompt_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.UserRole))

    def accept(self) -> None:
        prompt_id = self.chosen_prompt_id()
        if prompt_id is None:
            return
        super().accept()
        self.sig_chosen.emit(prompt_id)
