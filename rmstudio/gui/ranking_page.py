"""The Rank workspace: put several responses to one prompt in order, best first.

Drag the responses, or move the selected one with Alt+Up / Alt+Down; Enter saves. Saving
stores the ranking and the pairwise labels it implies (core/ranking.py).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
    QPlainTextEdit, QPushButton, QStackedWidget, QVBoxLayout, QWidget,
)

from rmstudio.core.errors import RmstudioError
from rmstudio.core.store.project import Project
from rmstudio.core.labeling.ranking import (
    prompt_responses, prompts_with_many_responses, ranking_order, save_ranking,
)
from rmstudio.gui.pages import heading, paragraph

PREVIEW_CHARS = 80
RANKING_IS = ("Ranking puts three or more responses to one prompt in order, best first, and "
              "stores every pair that order implies as a label.")


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[:PREVIEW_CHARS - 1] + "…"


class RankingPage(QWidget):
    sig_ranking_saved = Signal(int)  # prompt id

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.annotator = ""
        self.prompt_id: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 24, 24, 24)
        layout.addWidget(heading("Rank responses"))
        # Nothing to rank: one paragraph in place of the prompt and list boxes, which stood empty.
        self.empty = paragraph("")
        self.empty.setObjectName("ranking_empty")
        self.empty_view = QWidget()
        empty_layout = QVBoxLayout(self.empty_view)
        empty_layout.setContentsMargins(0, 24, 0, 0)
        empty_layout.addWidget(self.empty)
        empty_layout.addStretch(1)
        self.ranking_view = QWidget()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_view)
        self.stack.addWidget(self.ranking_view)
        layout.addWidget(self.stack, 1)
        layout = QVBoxLayout(self.ranking_view)  # the ranking controls go in their own view
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(QLabel("Prompt"))
        self.prompt_choice = QComboBox()
        self.prompt_choice.setMinimumContentsLength(40)
        top.addWidget(self.prompt_choice, 1)
        layout.addLayout(top)
        self.prompt = QPlainTextEdit()
        self.prompt.setReadOnly(True)
        self.prompt.setMaximumHeight(160)
        layout.addWidget(self.prompt)
        layout.addWidget(QLabel("<b>Best first</b> — drag, or Alt+Up / Alt+Down; Enter saves"))
        self.responses = QListWidget()
        self.responses.setDragDropMode(QAbstractItemView.InternalMove)
        self.responses.setDefaultDropAction(Qt.MoveAction)
        self.responses.setWordWrap(True)
        self.responses.setAlternatingRowColors(True)
        self.responses.setSpacing(2)
        self.responses.setStyleSheet("QListWidget::item { padding: 8px; }")
        layout.addWidget(self.responses, 1)
        bottom = QHBoxLayout()
        self.status = QLabel("")
        bottom.addWidget(self.status, 1)
        self.save_button = QPushButton("Save ranking")
        self.save_button.clicked.connect(self.save)
        bottom.addWidget(self.save_button)
        layout.addLayout(bottom)
        self.prompt_choice.currentIndexChanged.connect(self._on_prompt_changed)
        # Shortcuts are data: (keys, handler), live while focus is inside this page.
        self._shortcuts = []
        for keys, handler in [("Alt+Up", lambda: self.move_selected(-1)),
                              ("Alt+Down", lambda: self.move_selected(1)),
                              ("Return", self.save), ("Enter", self.save)]:
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.WidgetWithChildrenShortcut)
            shortcut.activated.connect(handler)
            self._shortcuts.append(shortcut)
        self.set_project(None)

    # -- public --------------------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.refresh()

    def set_annotator(self, name: str) -> None:
        self.annotator = name
        self.show_prompt(self.prompt_id)

    def refresh(self) -> None:
        prompts = prompts_with_many_responses(self.project) if self.project else []
        self.prompt_choice.blockSignals(True)
        self.prompt_choice.clear()
        for p in prompts:
            self.prompt_choice.addItem(f"{_preview(p['text'])}  ({p['responses']} responses)",
                                       p["id"])
        self.prompt_choice.blockSignals(False)
        if self.project is None:
            self.empty.setText(f"{RANKING_IS} Open a project to rank responses.")
        elif not prompts:
            self.empty.setText(f"{RANKING_IS} No prompt has more than two responses yet: import "
                               "rankings on the <b>Data</b> page, or generate several responses "
                               "per prompt there (<b>Generate pairs…</b>), to rank them here.")
        else:
            self.empty.setText("")
        self.stack.setCurrentWidget(self.empty_view if self.empty.text() else self.ranking_view)
        keep = self.prompt_choice.findData(self.prompt_id)
        self.prompt_choice.setCurrentIndex(keep if keep >= 0 else 0)
        self.show_prompt(self.prompt_choice.currentData())

    def show_prompt(self, prompt_id: int | None) -> None:
        self.prompt_id = prompt_id
        self.responses.clear()
        self.status.setText("")
        enabled = self.project is not None and prompt_id is not None
        for widget in (self.prompt_choice, self.responses, self.save_button):
            widget.setEnabled(enabled)
        if not enabled:
            self.prompt.clear()
            return
        text = self.project.prompt_text(prompt_id)
        self.prompt.setPlainText(text.strip("\n"))
        responses = {r["id"]: r for r in prompt_responses(self.project, prompt_id)}
        saved = ranking_order(self.project, prompt_id, self.annotator) if self.annotator else None
        order = [rid for rid in saved or [] if rid in responses]
        order += [rid for rid in responses if rid not in order]
        for rid in order:
            r = responses[rid]
            item = QListWidgetItem(r["text"].strip() + (f"\n— {r['model']}" if r["model"] else ""))
            item.setData(Qt.UserRole, rid)
            self.responses.addItem(item)
        self.responses.setCurrentRow(0)
        if saved:
            self.status.setText("Showing your saved ranking.")

    def order(self) -> list[int]:
        return [self.responses.item(i).data(Qt.UserRole) for i in range(self.responses.count())]

    def move_selected(self, step: int) -> None:
        row = self.responses.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < self.responses.count():
            return
        item = self.responses.takeItem(row)
        self.responses.insertItem(target, item)
        self.responses.setCurrentRow(target)

    def save(self) -> None:
        if self.project is None or self.prompt_id is None or not self.save_button.isEnabled():
            return
        if not self.annotator:
            self.status.setText("Set your annotator name first.")
            return
        self.save_button.setEnabled(False)  # keys are ignored while a save is in flight
        try:
            save_ranking(self.project, self.prompt_id, self.annotator, self.order())
        except RmstudioError as exc:
            self.status.setText(f"Not saved: {exc}")
            return
        finally:
            self.save_button.setEnabled(True)
        n = self.responses.count()
        self.status.setText(f"Saved: {n} responses, {n * (n - 1) // 2} pairwise labels.")
        self.sig_ranking_saved.emit(self.prompt_id)

    # -- internals -------------------------------------------------------------------------

    def _on_prompt_changed(self, _index: int) -> None:
        self.show_prompt(self.prompt_choice.currentData())
