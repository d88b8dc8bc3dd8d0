"""The Go menu: every workspace on Ctrl+1 … Ctrl+9, in the order of the navigation list.

The app is keyboard first: labeling never needs the mouse, and neither should moving between the
workspaces of the loop (label, train, score, optimize). The menu is built from the navigation
list itself, so a workspace added there gets its entry and shortcut without a change here, and
the shortcut sheet (Help → Keyboard shortcuts, '?') lists them because it reads the menus.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QListWidget, QMainWindow

MAX_SHORTCUTS = 9  # Ctrl+1 … Ctrl+9


def install_workspace_menu(window: QMainWindow, nav: QListWidget) -> list[QAction]:
    """Add a Go menu to ``window`` with one action per row of ``nav``; returns the actions."""
    menu = window.menuBar().addMenu("&Go")
    actions = []
    for row in range(nav.count()):
        title = nav.item(row).text()
        action = QAction(title, window)
        if row < MAX_SHORTCUTS:
            action.setShortcut(QKeySequence(f"Ctrl+{row + 1}"))
        # Only with a project open: without one the workspaces are hidden behind the welcome page.
        action.triggered.connect(lambda _checked=False, r=row: _go(window, nav, r))
        menu.addAction(action)
        actions.append(action)
    return actions


def _go(window: QMainWindow, nav: QListWidget, row: int) -> None:
    if getattr(window, "project", None) is None:
        window.statusBar().showMessage("Open a project first: the workspaces belong to a project.", 5000)
        return
    nav.setCurrentRow(row)
    page = window.pages.currentWidget() if hasattr(window, "pages") else None
    if page is not None:
        # Focus moves into the workspace (where it last was, else the page itself), so its own
        # keys (the label keys, Tab to its controls) work at once.
        (page.focusWidget() or page).setFocus()
