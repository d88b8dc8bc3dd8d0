"""The window's layout kept between runs: geometry, toolbars, splitters, the last workspace.

The main window calls ``restore_window_state`` once its pages exist and ``save_window_state``
when it closes; pages know nothing of it. Splitters are found, not registered: each one is
keyed by its page's class and its place among that page's splitters, so a new splitter in a
page needs no code here. (A page whose splitters change in number or order loses its saved
sizes once: QSplitter.restoreState refuses a state with another count of widgets.)
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QListWidget, QMainWindow, QSplitter, QWidget

GEOMETRY = "window/geometry"
STATE = "window/state"
WORKSPACE = "window/workspace"
SPLITTERS = "window/splitters"


def splitters(pages: list[QWidget]) -> dict[str, QSplitter]:
    """Every splitter of ``pages`` by its key, e.g. 'ScorePage/0'."""
    found = {}
    for page in pages:
        for i, splitter in enumerate(page.findChildren(QSplitter)):
            found[f"{type(page).__name__}/{i}"] = splitter
    return found


def _bytes(value) -> QByteArray | None:
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    if isinstance(value, (bytes, bytearray)) and value:
        return QByteArray(bytes(value))
    return None  # absent, or not what we wrote (a hand-edited file): keep the defaults


def save_window_state(window: QMainWindow, settings: QSettings, pages: list[QWidget],
                      nav: QListWidget) -> None:
    """Keep geometry, toolbar state, splitter sizes and the workspace chosen in ``nav``."""
    settings.setValue(GEOMETRY, window.saveGeometry())
    settings.setValue(STATE, window.saveState())
    for key, splitter in splitters(pages).items():
        settings.setValue(f"{SPLITTERS}/{key}", splitter.saveState())
    if nav.currentItem() is not None:  # by title, not row: a reordered nav still finds it
        settings.setValue(WORKSPACE, nav.currentItem().text())


def restore_window_state(window: QMainWindow, settings: QSettings, pages: list[QWidget]) -> None:
    """Put back what ``save_window_state`` kept; anything missing or unreadable keeps its default."""
    geometry = _bytes(settings.value(GEOMETRY))
    if geometry is not None:
        window.restoreGeometry(geometry)
    state = _bytes(settings.value(STATE))
    if state is not None:
        window.restoreState(state)
    for key, splitter in splitters(pages).items():
        sizes = _bytes(settings.value(f"{SPLITTERS}/{key}"))
        if sizes is not None:
            splitter.restoreState(sizes)


def workspace_row(settings: QSettings, nav: QListWidget, default: int) -> int:
    """The row of the workspace shown when the window last closed, if it still exists, else ``default``."""
    title = str(settings.value(WORKSPACE, "") or "")
    rows = [i for i in range(nav.count()) if nav.item(i).text() == title]
    return rows[0] if rows else default
