"""Live curves for any run kind, drawn as the kind declares them.

A kind lists its plots (``runs.kinds.Plot``: a title and the metrics that share its axis), so
this widget draws curves it has never heard of: one plot per declared group, one curve per
metric, created when its first value arrives. Progress only appends to a buffer; a 10 Hz timer
pushes what changed into the curves with ``setData`` (never a redraw per signal).

Where a plot holds one measure on several splits (``train/loss``, ``val/loss``) its curves are
named by split and keep the split's colour in every plot; otherwise by metric. Metrics under
``val/`` or ``test/`` are dashed with dots (they come every few steps), the rest solid.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QWidget

from rmstudio.core.runs.kinds import Plot
from rmstudio.gui.plots import SPLIT_COLORS, color, live_curve, make_plot, place_legend

REFRESH_MS = 100  # 10 Hz: smooth enough, and never a redraw per progress signal
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "monitor"}


def _split_and_measure(metric: str) -> tuple[str, str]:
    split, _, measure = metric.partition("/")
    return (split, measure) if measure else ("", metric)


class LivePlots(QWidget):
    def __init__(self, plots: tuple[Plot, ...], columns: int = 2, parent: QWidget | None = None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.grid = grid
        self.plots = {}  # title -> PlotWidget
        self._home = {}  # metric -> the plot title it belongs to
        self._by_split: set[str] = set()  # plots whose curves are named by split
        self._names: dict[str, str] = {}  # metric -> the legend's name, where the kind gives one
        for i, plot in enumerate(plots):
            widget = make_plot(self, plot.title, y_label=plot.y_label)
            last_alone = i == len(plots) - 1 and i % columns == 0 and i > 0
            # An odd last plot takes the whole row rather than leaving a hole beside it.
            grid.addWidget(widget, i // columns, i % columns, 1, columns if last_alone else 1)
            if plot.y_limits is not None:
                widget.getPlotItem().getViewBox().setLimits(yMin=plot.y_limits[0], yMax=plot.y_limits[1])
            place_legend(widget, rising=plot.rising)
            self.plots[plot.title] = widget
            measures = {_split_and_measure(m)[1] for m in plot.metrics}
            splits = [_split_and_measure(m)[0] for m in plot.metrics]
            if len(measures) == 1 and all(s in SPLIT_NAMES for s in splits):
                self._by_split.add(plot.title)
            for metric in plot.metrics:
                self._home[metric] = plot.title
            self._names.update(zip(plot.metrics, plot.names))
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

    def values(self, metric: str) -> list[float]:
        """What has arrived for ``metric`` (drawn or waiting for the next refresh)."""
        return list(self._buffer.get(metric, ((), ()))[1])

    def flush(self) -> None:
        """Push what changed into the curves (the timer calls this; call it once at the end)."""
        for key in self._dirty:
            curve = self.curves.get(key)
            if curve is None:
                curve = self.curves[key] = self._new_curve(key)
            curve.setData(*self._buffer[key])
        self._dirty.clear()
        self.timer.stop()

    def _new_curve(self, key: str):
        title = self._home[key]
        plot = self.plots[title]
        split, _ = _split_and_measure(key)
        dashed = split in ("val", "test")
        if key in self._names:
            return live_curve(plot, self._names[key], color(len(plot.getPlotItem().listDataItems())), dashed)
        if title in self._by_split:
            return live_curve(plot, SPLIT_NAMES[split], SPLIT_COLORS.get(split, color(2)), dashed)
        return live_curve(plot, key, color(len(plot.getPlotItem().listDataItems())), dashed)

    def clear(self) -> None:
        self._buffer.clear()
        self._dirty.clear()
        for curve in self.curves.values():
            curve.setData([], [])
