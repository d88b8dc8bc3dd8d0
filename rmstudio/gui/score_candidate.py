"""One response on the Score page: its text, its reward, a box to pick it for a comparison,
and a frame that marks it when it has the highest reward on the page."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout,
)

from rmstudio.gui.plots import color

# The green of the best bar in the ranking chart (color(2)), so the eye links the two.
BEST_STYLE = (f"QGroupBox#best_candidate {{ border: 2px solid {color(2)}; border-radius: 4px; "
              "margin-top: 1.2em; } QGroupBox#best_candidate::title { subcontrol-origin: margin; "
              "left: 8px; font-weight: bold; }")


class Candidate(QGroupBox):
    """One response: its text, its reward, and a box to pick it for a new comparison."""

    def __init__(self, number: int, text: str = ""):
        super().__init__(f"Response {number}")
        self.number, self.best = number, False
        layout = QVBoxLayout(self)
        self.edit = QPlainTextEdit(text)
        self.edit.setPlaceholderText("Type or paste a response…")
        self.edit.setMinimumHeight(70)
        self.edit.setTabChangesFocus(True)
        row = QHBoxLayout()
        self.pick = QCheckBox("compare")
        self.pick.setToolTip("Tick two responses and send them to the label queue as a new comparison.")
        self.reward = QLabel("—")
        self.reward.setObjectName("reward")
        self.remove = QPushButton("Remove")
        row.addWidget(self.reward, 1)
        row.addWidget(self.pick)
        row.addWidget(self.remove)
        layout.addWidget(self.edit)
        layout.addLayout(row)

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_number(self, number: int) -> None:
        self.number = number
        self._retitle()

    def set_best(self, best: bool) -> None:
        """Frame it (and say so in its title) when its reward is the highest on the page."""
        if best == self.best:
            return
        self.best = best
        self.setObjectName("best_candidate" if best else "")
        self.setStyleSheet(BEST_STYLE if best else "")
        self._retitle()

    def _retitle(self) -> None:
        self.setTitle(f"Response {self.number}" + (" · best" if self.best else ""))
