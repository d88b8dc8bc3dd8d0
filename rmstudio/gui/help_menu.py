"""The Help menu: keyboard shortcuts (also '?'), the tour, the log file, and About.

``install_help_menu(window)`` adds it to a QMainWindow's menu bar; it keeps no state on the
window beyond the menu itself, so the main window needs one call and nothing else.
"""

from __future__ import annotations

import platform
import re
import sys
from html import escape
from importlib import metadata

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QHeaderView, QMainWindow, QMenu, QMessageBox, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

import rmstudio
from rmstudio.core.paths import cache_dir, data_dir, log_file
from rmstudio.gui.label_view import ACTION_BUTTONS
from rmstudio.gui.run_panel import START_KEYS

SHORTCUT_KEY = "?"


def _native_keys(keys: str) -> str:
    return QKeySequence(keys).toString(QKeySequence.NativeText)


def _native(standard: QKeySequence.StandardKey) -> str:
    return QKeySequence(standard).toString(QKeySequence.NativeText)


def menu_shortcuts(window: QMainWindow) -> list[tuple[str, str, str]]:
    """(menu, keys, action) for each menu action with a shortcut, as this platform spells them."""
    rows = []
    for top in window.menuBar().actions():
        menu = top.menu()
        for action in menu.actions() if menu is not None else []:
            keys = action.shortcut().toString(QKeySequence.NativeText)
            if keys and action.shortcutContext() != Qt.WidgetShortcut:
                rows.append((top.text().replace("&", ""), keys, action.text().replace("&", "").rstrip("…")))
    return rows


def shortcut_rows(window: QMainWindow | None = None) -> list[tuple[str, str, str]]:
    """(where, keys, what) for every keyboard shortcut: the menus' (read from ``window``), then the
    workspaces'; the Label rows come from its buttons' captions, so they cannot drift apart."""
    rows = [("Everywhere", SHORTCUT_KEY, "This list of shortcuts")]
    rows += menu_shortcuts(window) if window is not None else []
    for text, _choice, _strength in ACTION_BUTTONS:
        keys = re.search(r"\[(.+?)\]", text)
        what = re.sub(r"\s*\[.+?\]\s*|[◀▶]", " ", text).strip()
        if keys:
            rows.append(("Label", keys.group(1).replace("⇧", "Shift+"), what))
    rows += [
        ("Label", "← / →", "Left better / Right better (with Shift: much better)"),
        ("Label", _native(QKeySequence.Undo), "Undo the last label"),
        ("Label", "Esc", "Close the 'write a better response' box, or leave the note field"),
        ("Label", "Ctrl+Enter", "Save the better response you wrote"),
        ("Rank", "Alt+↑ / Alt+↓", "Move the selected response up / down"),
        ("Rank", "Enter", "Save the ranking"),
        ("Train, Optimize", _native_keys(START_KEYS), "Start the run (as the Start button)"),
        ("Results, Runs", "Alt+X", "Export the model to a folder you choose"),
    ]
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(600, 560)
        layout = QVBoxLayout(self)
        rows = shortcut_rows(parent if isinstance(parent, QMainWindow) else None)
        self.table = QTableWidget(len(rows), 3)
        self.table.setObjectName("shortcuts_table")
        self.table.setHorizontalHeaderLabels(["Where", "Keys", "What it does"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.NoSelection)
        self.table.setFocusPolicy(Qt.NoFocus)
        for row, values in enumerate(rows):
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                if col == 1:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, col, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_html() -> str:
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    rows = [("rmstudio", rmstudio.__version__),
            ("Python", f"{platform.python_version()} ({sys.executable})"),
            ("Qt / PySide6", f"{qVersion()} / {pyside_version}"), ("PyTorch", _version("torch")),
            ("Transformers", _version("transformers")), ("TRL", _version("trl")),
            ("Data folder", str(data_dir())), ("Model cache", str(cache_dir())),
            ("Log file", str(log_file()))]
    table = "".join(f"<tr><td><b>{escape(k)}</b>&nbsp;&nbsp;</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return ("<h3>Reward Model Studio</h3><p>Collect, label, train and score preference data in one "
            "local app. Apache-2.0 licensed.</p>" f"<table>{table}</table>")


class HelpMenu(QMenu):
    """Help: Keyboard shortcuts, Tour, Open log file, About. Dialog openers are methods tests replace."""

    def __init__(self, window: QMainWindow):
        super().__init__("&Help", window)
        self.window_ = window
        self.dialog: ShortcutsDialog | None = None
        self.shortcuts_action = self._add("&Keyboard shortcuts", self.show_shortcuts)
        self.shortcuts_action.setShortcut(QKeySequence(SHORTCUT_KEY))
        # The menu's shortcut only works while the menu bar is visible; '?' must work always.
        self.shortcuts_action.setShortcutContext(Qt.WidgetShortcut)
        self.key = QShortcut(QKeySequence(SHORTCUT_KEY), window)
        self.key.activated.connect(self.show_shortcuts)
        self.tour_action = self._add("&Tour of rmstudio", self.show_tour)
        self.log_action = self._add("Open &log file", self.open_log)
        self.addSeparator()
        self.about_action = self._add("&About rmstudio", self.show_about)
        self.about_action.setMenuRole(QAction.AboutRole)

    def _add(self, text: str, slot) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def show_shortcuts(self) -> ShortcutsDialog:
        if self.dialog is None:
            self.dialog = ShortcutsDialog(self.window_)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def show_tour(self) -> None:
        """The first-run tour again (gui/tour.py), from its first step."""
        tour = getattr(self.window_, "tour", None)
        if tour is not None:
            tour.start()

    def open_log(self) -> bool:
        path = log_file()
        if not path.exists():
            path.touch()  # the app logs here from the start; an empty file beats an error
        if self.open_url(QUrl.fromLocalFile(str(path))):
            return True
        QMessageBox.information(self.window_, "Log file", f"The log file is {path}")
        return False

    def open_url(self, url: QUrl) -> bool:
        """QDesktopServices.openUrl (tests replace this method)."""
        return QDesktopServices.openUrl(url)

    def show_about(self) -> None:
        QMessageBox.about(self.window_, "About rmstudio", about_html())


def install_help_menu(window: QMainWindow) -> HelpMenu:
    """Add Help to ``window``'s menu bar (last) and the '?' key; returns the menu."""
    menu = HelpMenu(window)
    window.menuBar().addMenu(menu)
    window.help_menu = menu
    return menu
