"""Live curves for any run kind, drawn as the kind declares them.

A kind lists its plots (``runs.kinds.Plot``: a title and the metrics that share its axis), so
this widget draws curves it has never heard of: one plot per declared group, one curve per
metric, created when its first value arrives. Progress only appends to a buffer; a 10 Hz timer
pushes what changed into the curves with ``setData`` (never a redraw per signal). Metrics under
``val/`` or ``test/`` are dashed with dots (they come every few steps), the rest solid.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

from rmstudio.core.runs.kinds import Plot
from rmstudio.gui.plots import color, live_curve, make_plot

REFRESH_MS = 100


class LivePlots(QWidget):
    def __init__(self, plots: tuple[Plot, ...], columns: int = 2, parent: QWidget | None = None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.plots = {}  # title -> PlotWidget
        self._home = {}  # metric -> the plot title it belongs to
        for i, plot in enumerate(plots):
            widget = make_plot(self, plot.title, y_label=plot.y_label)
            grid.addWidget(widget, i // columns, i % columns)
            self.plots[plot.title] = widget
            for metric in plot.metrics:
                self._home[metric] = plot.title
        self.curves = {}  # metric -> PlotDataItem
        self._buffer: dict[str, tuple[list[int], list[float]]] = {}
        self._dirty: set[str] = set()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.flush)

    def add(self, step: int, metrics: dict) -> None:
        """A progress report: keep the numbers of declared metrics for the next refresh."""
        for key, value in metrics.items():
            if key in self._home and isinstance(value, (int, float)) and not isinstance(value, bool):
                steps, values = self._buffer.setdefault(key, ([], []))
                steps.append(int(step))
                values.append(float(value))
                self._dirty.add(key)
        if self._dirty and not self.timer.isActive():
            self.timer.start()

    def flush(self) -> None:
        """Push what changed into the curves (the timer calls this; call it once at the end)."""
        for key in self._dirty:
            curve = self.curves.get(key)
            if curve is None:
                plot = self.plots[self._home[key]]
                dashed = key.startswith(("val/", "test/"))
                curve = live_curve(plot, key, color(len(plot.getPlotItem().listDataItems())), dashed)
                self.curves[key] = curve
            curve.setData(*self._buffer[key])
        self._dirty.clear()
        self.timer.stop()

    def clear(self) -> None:
        self._buffer.clear()
        self._dirty.clear()
        for curve in self.curves.values():
            curve.setData([], [])
