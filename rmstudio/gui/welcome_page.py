"""The first screen: what the app is for, the demo, new/open project, and recent projects."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from rmstudio.gui.pages import heading, paragraph


class WelcomePage(QWidget):
    def __init__(self, window):
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(48, 48, 48, 48)
        layout.addWidget(heading("Reward Model Studio"))
        layout.addWidget(paragraph(
            "Collect preference pairs, label them, train a reward model and see how it scores, "
            "all on this computer.<br><br><b>Start here:</b> open the demo project to try it at "
            "once, or create a project and import your own data."))
        row = QHBoxLayout()
        for text, slot in [("Open the &demo project", window.open_demo),
                           ("&New project…", window.new_project_dialog),
                           ("&Open project…", window.open_project_dialog)]:
            button = QPushButton(text)
            button.setMinimumHeight(36)
            button.clicked.connect(slot)
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        hh = QPushButton("Open the HH-RLHF harmless example (content warning)…")
        hh.setFlat(True)
        hh.clicked.connect(window.open_hh_demo)
        layout.addWidget(hh, alignment=Qt.AlignLeft)
        layout.addSpacing(16)
        layout.addWidget(QLabel("Recent projects"))
        self.recent = QListWidget()
        self.recent.setMaximumHeight(180)
        self.recent.itemActivated.connect(lambda item: window.open_project(item.data(Qt.UserRole)))
        layout.addWidget(self.recent)
        layout.addStretch(1)

    def show_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        for path in paths:
            item = QListWidgetItem(f"{Path(path).name}    —    {Path(path).parent}")
            item.setData(Qt.UserRole, path)
            self.recent.addItem(item)
        if not paths:
            self.recent.addItem("No recent projects yet.")
