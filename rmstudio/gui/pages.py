"""Small building blocks shared by the workspaces: empty states and headings."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QButtonGroup, QGroupBox, QLabel, QRadioButton, QVBoxLayout, QWidget


def heading(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("font-size: 20px; font-weight: 600; margin-bottom: 4px;")
    return label


def paragraph(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.RichText)
    label.setStyleSheet("color: palette(text); font-size: 13px;")
    return label


NOTE_STYLE = "color: palette(placeholder-text); font-size: 12px;"


def method_choice(parent: QWidget, methods: list[tuple[str, str, str]]
                  ) -> tuple[QGroupBox, QButtonGroup, dict[str, QRadioButton]]:
    """A "Method" box: one radio button per (key, title, what it does), the first checked, each
    with its one-line explanation under it. Returns (box, group with ids in order, buttons by key)."""
    box = QGroupBox("Method")
    layout = QVBoxLayout(box)
    group = QButtonGroup(parent)
    buttons: dict[str, QRadioButton] = {}
    for i, (key, title, what) in enumerate(methods):
        button = QRadioButton(title)
        button.setObjectName(f"method_{key}")
        group.addButton(button, i)
        buttons[key] = button
        note = QLabel(what)
        note.setWordWrap(True)
        note.setStyleSheet(NOTE_STYLE + " margin-left: 22px;")
        layout.addWidget(button)
        layout.addWidget(note)
    buttons[methods[0][0]].setChecked(True)
    return box, group, buttons
