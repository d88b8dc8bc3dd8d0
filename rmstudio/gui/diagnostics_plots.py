"""The four plots (and the annotator table) of the Diagnose workspace, drawn once from a
finished ``Diagnostics``.

Plain functions over plot widgets made with ``plots.make_plot``: the page owns the widgets, these
only draw. Large sets are thinned for the scatter (a plot of 200,000 points tells no more than
one of 4,000 and stalls the window); every figure in the text is computed on all of them.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

from rmstudio.gui.plots import SPLIT_COLORS, make_plot, set_title

SCATTER_POINTS = 4000
ANNOTATOR_BARS = 20
CHOSEN, REJECTED = SPLIT_COLORS["train"], SPLIT_COLORS["val"]


def make_plots(parent) -> dict[str, pg.PlotWidget]:
    plots = {
        "length": make_plot(parent, "Reward vs length", "length (characters)", "reward"),
        "histogram": make_plot(parent, "Rewards of chosen and rejected", "reward", "pairs"),
        "reliability": make_plot(parent, "Reliability", "confidence max(p, 1 − p)", "observed accuracy",
                                 legend=False),
        "annotators": make_plot(parent, "Accuracy by annotator (95% interval)", "", "accuracy", legend=False),
    }
    return plots


def clear(plots: dict[str, pg.PlotWidget]) -> None:
    for plot in plots.values():
        plot.clear()
        plot.getPlotItem().getAxis("bottom").setTicks(None)


def _thin(n: int) -> np.ndarray:
    """Indices of at most SCATTER_POINTS rows, spread evenly (the same each time)."""
    if n <= SCATTER_POINTS:
        return np.arange(n)
    return np.random.default_rng(0).choice(n, SCATTER_POINTS, replace=False)


def draw_length(plot: pg.PlotWidget, diagnostics) -> None:
    rows = diagnostics.rows
    keep = _thin(len(rows))
    for name, colour, length, reward in (
            ("chosen", CHOSEN, [rows[i].len_chosen for i in keep], [rows[i].r_chosen for i in keep]),
            ("rejected", REJECTED, [rows[i].len_rejected for i in keep], [rows[i].r_rejected for i in keep])):
        brush = pg.mkColor(colour)
        brush.setAlpha(150)
        plot.plot(length, reward, pen=None, symbol="o", symbolSize=5, symbolPen=None, symbolBrush=brush,
                  name=name)
    pearson = "–" if diagnostics.pearson is None else f"{diagnostics.pearson:+.2f}"
    spearman = "–" if diagnostics.spearman is None else f"{diagnostics.spearman:+.2f}"
    shown = f", {len(keep):,} pairs drawn" if len(keep) < len(rows) else ""
    set_title(plot, f"Reward vs length: Pearson {pearson}, Spearman {spearman} (n = "
                    f"{diagnostics.correlation_n:,}{shown})")


def draw_histograms(plot: pg.PlotWidget, diagnostics) -> None:
    edges = diagnostics.histogram_edges
    if not edges:
        return
    for name, counts, colour in (("chosen", diagnostics.histogram_chosen, CHOSEN),
                                 ("rejected", diagnostics.histogram_rejected, REJECTED)):
        fill = pg.mkColor(colour)
        fill.setAlpha(90)
        plot.plot(edges, counts, stepMode="center", fillLevel=0, brush=fill, pen=pg.mkPen(colour, width=1.5),
                  name=name)


def draw_reliability(plot: pg.PlotWidget, diagnostics) -> None:
    plot.plot([0.5, 1.0], [0.5, 1.0], pen=pg.mkPen("#888888", width=1, style=Qt.DashLine))
    bins = diagnostics.reliability
    if bins:
        biggest = max(b["count"] for b in bins)
        sizes = [6 + 10 * np.sqrt(b["count"] / biggest) for b in bins]
        plot.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins],
                  pen=pg.mkPen(REJECTED, width=2), symbol="o", symbolSize=sizes, symbolBrush=REJECTED,
                  symbolPen=None)
    plot.setXRange(0.48, 1.02, padding=0)
    plot.setYRange(0.0, 1.05, padding=0)
    if diagnostics.ece is not None:
        set_title(plot, f"Reliability (ECE {diagnostics.ece:.3f}; on the diagonal is calibrated)")


def draw_annotators(plot: pg.PlotWidget, diagnostics) -> None:
    shown = diagnostics.by_annotator[:ANNOTATOR_BARS]  # the annotators with the most pairs
    if not shown:
        return
    x = np.arange(len(shown))
    accuracy = np.array([a.accuracy for a in shown])
    plot.addItem(pg.BarGraphItem(x=x, height=accuracy, width=0.6, brush=CHOSEN))
    plot.addItem(pg.ErrorBarItem(x=x, y=accuracy, top=np.array([a.high for a in shown]) - accuracy,
                                 bottom=accuracy - np.array([a.low for a in shown]), beam=0.2,
                                 pen=pg.mkPen(plot.palette().text().color(), width=1.5)))
    plot.plot([-0.5, len(shown) - 0.5], [0.5, 0.5], pen=pg.mkPen("#888888", style=Qt.DashLine))
    plot.getPlotItem().getAxis("bottom").setTicks([[(i, a.name[:14]) for i, a in enumerate(shown)]])
    plot.setYRange(0, 1.05, padding=0)
    plot.setXRange(-0.6, len(shown) - 0.4, padding=0)


def draw_all(plots: dict[str, pg.PlotWidget], diagnostics) -> None:
    clear(plots)
    draw_length(plots["length"], diagnostics)
    draw_histograms(plots["histogram"], diagnostics)
    draw_reliability(plots["reliability"], diagnostics)
    draw_annotators(plots["annotators"], diagnostics)


def fill_annotator_table(table: QTableWidget, diagnostics) -> None:
    """One row per annotator: pairs, accuracy and its 95% interval."""
    def pct(value: float) -> str:
        return f"{100 * value:.1f}%"

    table.setRowCount(len(diagnostics.by_annotator))
    for row, a in enumerate(diagnostics.by_annotator):
        interval = f"{pct(a.low)} – {pct(a.high)}"
        for col, text in enumerate([a.name, f"{a.pairs:,}", pct(a.accuracy), interval]):
            item = QTableWidgetItem(text)
            if col in (1, 2):
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            table.setItem(row, col, item)


def fill_disagreement_table(table: QTableWidget, rows, checkable: bool) -> None:
    """One row per disputed pair; the first cell holds its comparison id (Qt.UserRole) and, for
    project pairs, the box that ticks it for the label queue."""
    table.setRowCount(len(rows))
    for row, r in enumerate(rows):
        cid = r.comparison_id  # a file's pair has no comparison: minus the line it came from
        first = QTableWidgetItem(str(cid) if cid > 0 else f"line {-cid}")
        first.setData(Qt.UserRole, cid)
        if checkable:
            first.setFlags(first.flags() | Qt.ItemIsUserCheckable)
            first.setCheckState(Qt.Unchecked)
        table.setItem(row, 0, first)
        for col, text in enumerate([", ".join(r.annotators), f"{r.p_chosen:.3f}", f"{r.margin:+.3f}",
                                    " ".join(r.prompt.split())], 1):
            table.setItem(row, col, QTableWidgetItem(text))
