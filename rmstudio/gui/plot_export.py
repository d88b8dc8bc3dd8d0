"""Save any plot the app draws as a PNG or an SVG file: a right-click menu on the plot, and
``save_plot`` for code (and tests) that already know the file name.

Every plot is made by ``plots.make_plot``, which calls ``install_save_menu``, so the Train,
Runs and Optimize plots all get the menu. pyqtgraph's own exporters draw the plot; the files are
written here so that a folder that cannot be written is one clear line, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from rmstudio.core.errors import RmstudioError

FORMATS = {".png": "PNG image (*.png)", ".svg": "SVG drawing (*.svg)"}


def save_plot(plot: pg.PlotWidget, path: str | Path) -> Path:
    """Write ``plot`` to ``path`` as PNG or SVG (by its suffix) at the size it is shown;
    RmstudioError says in one line what went wrong (a wrong suffix, a folder that cannot be written)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise RmstudioError(f"cannot save a plot as '{path.name}': choose a file name ending in .png or .svg")
    if not path.parent.is_dir():
        raise RmstudioError(f"cannot save the plot: the folder {path.parent} does not exist")
    item = plot.getPlotItem()
    try:
        if suffix == ".png":
            from pyqtgraph.exporters import ImageExporter

            exporter = ImageExporter(item)
            # The exporter's size follows the plot's; a plot never shown has none yet.
            if exporter.params["width"] < 10 or exporter.params["height"] < 10:
                raise RmstudioError("cannot save the plot: it has no size yet (show it first)")
            image = exporter.export(toBytes=True)
            if not image.save(str(path), "PNG"):
                raise OSError("the file could not be written")
        else:
            path.write_bytes(_svg_bytes(item))
    except RmstudioError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RmstudioError(f"cannot save the plot to {path}: {reason}") from None
    return path


def _svg_bytes(item) -> bytes:
    """pyqtgraph's SVG of ``item``. Its exporter (0.14) reads every token of a path as 'x,y' and
    fails on the 'Z' (close path) that Qt 6.8+ writes after a rectangle, so while it runs the
    'Z's are taken out of each path and put back at their places after its coordinates are fixed."""
    import sys

    from pyqtgraph.exporters import SVGExporter

    module = sys.modules[SVGExporter.__module__]
    original = module.correctCoordinates

    def correct_coordinates(node, defs, item, options):
        closes = {}
        for element in node.getElementsByTagName("path"):
            tokens = element.getAttribute("d").split()
            closes[element] = [i for i, token in enumerate(tokens) if token.upper() == "Z"]
            element.setAttribute("d", " ".join(t for t in tokens if t.upper() != "Z"))
        original(node, defs, item, options)
        for element, places in closes.items():
            tokens = element.getAttribute("d").split()
            for i in places:
                tokens.insert(i, "Z")
            element.setAttribute("d", " ".join(tokens))

    module.correctCoordinates = correct_coordinates
    try:
        return SVGExporter(item).export(toBytes=True)
    finally:
        module.correctCoordinates = original


def _plot_name(plot: pg.PlotWidget) -> str:
    """A file name from the plot's title ('Loss (Bradley-Terry)' -> 'loss-bradley-terry')."""
    from html import unescape
    import re

    title = unescape(re.sub(r"<[^>]+>", "", plot.getPlotItem().titleLabel.text or ""))
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:60] or "plot"


def ask_and_save(plot: pg.PlotWidget, suffix: str) -> Path | None:
    """Ask for a file name (a user's right-click chose this) and save; a failure is one line."""
    start = str(Path.home() / f"{_plot_name(plot)}{suffix}")
    path, _ = QFileDialog.getSaveFileName(plot, f"Save plot as {suffix[1:].upper()}", start, FORMATS[suffix])
    if not path:
        return None
    if Path(path).suffix.lower() not in FORMATS:
        path += suffix  # a name typed without its ending gets the format asked for
    try:
        return save_plot(plot, path)
    except RmstudioError as exc:
        QMessageBox.warning(plot, "Plot not saved", str(exc))
        return None


def save_menu(plot: pg.PlotWidget) -> QMenu:
    menu = QMenu(plot)
    menu.addAction("Save plot as PNG…", lambda: ask_and_save(plot, ".png"))
    menu.addAction("Save plot as SVG…", lambda: ask_and_save(plot, ".svg"))
    return menu


def install_save_menu(plot: pg.PlotWidget) -> None:
    """Right-click on the plot offers to save it (pyqtgraph's own menu is off in make_plot)."""
    plot.setContextMenuPolicy(Qt.CustomContextMenu)

    plot.customContextMenuRequested.connect(lambda pos: popup(save_menu(plot), plot.mapToGlobal(pos)))


def popup(menu: QMenu, where: QPoint) -> None:
    """Show the menu until a choice is made (tests replace this: exec would wait for a click)."""
    menu.exec(where)
    menu.deleteLater()
