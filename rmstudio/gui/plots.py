"""Small pyqtgraph helpers shared by the Train and Runs workspaces.

Every live curve is one ``PlotDataItem`` made once and fed with ``setData`` from a timer,
with downsampling and clip-to-view on, so a long run never redraws per progress signal.
Plots take their background, axes and title colours from the palette, again whenever it
changes (Settings → Theme), so they follow a light or dark theme without the pages knowing.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QWidget

# A colour-blind friendly cycle (Okabe-Ito, then Tableau): runs and splits keep their colour.
# Its black is None here: the theme's text colour, so that curve shows on a dark plot too.
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", None,
          "#8c564b", "#7f7f7f"]
SPLIT_COLORS = {"train": "#0072B2", "val": "#D55E00", "test": "#009E73"}


def color(index: int) -> str:
    return COLORS[index % len(COLORS)] or QApplication.palette().color(QPalette.Text).name()


def set_title(plot: pg.PlotWidget, title: str) -> None:
    plot.setProperty("plot_title", title)  # kept to colour it again when the theme changes
    text = plot.palette().color(QPalette.Text).name()
    plot.getPlotItem().setTitle(f"<span style='color:{text}; font-size:10pt'>{title}</span>")


class _PaletteFollower(QObject):
    """Colours a plot from its palette now and on every palette change."""

    def __init__(self, plot: pg.PlotWidget, labels: dict[str, str]):
        super().__init__(plot)
        self.plot, self.labels = plot, labels
        plot.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.PaletteChange:
            self.apply()
        return False

    def apply(self) -> None:
        plot, palette = self.plot, self.plot.palette()
        text = palette.color(QPalette.Text).name()
        item = plot.getPlotItem()
        plot.setBackground(palette.color(QPalette.Base))
        set_title(plot, str(plot.property("plot_title") or ""))
        for side in ("left", "bottom"):
            axis = item.getAxis(side)
            axis.setTextPen(text)
            axis.setPen(palette.color(QPalette.Mid))
            if self.labels.get(side):
                item.setLabel(side, self.labels[side], color=text)
        if item.legend is not None:
            fill = palette.color(QPalette.Base)
            fill.setAlpha(170)  # curves stay visible under the legend
            item.legend.setBrush(fill)
            item.legend.setLabelTextColor(text)


def make_plot(parent: QWidget | None, title: str, x_label: str = "step", y_label: str = "",
              legend: bool = True) -> pg.PlotWidget:
    """A plot that follows the palette (light or dark), with a grid and an optional legend."""
    plot = pg.PlotWidget(parent)
    item = plot.getPlotItem()
    plot.setProperty("plot_title", title)
    item.showGrid(x=True, y=True, alpha=0.15)
    item.setMenuEnabled(False)
    if legend:
        item.addLegend(offset=(-8, 8))
    _PaletteFollower(plot, {"bottom": x_label, "left": y_label}).apply()
    plot.setMinimumHeight(150)
    return plot


def place_legend(plot: pg.PlotWidget, rising: bool) -> None:
    """Put the legend where rising (accuracy) or falling (loss) curves leave room."""
    legend = plot.getPlotItem().legend
    if legend is not None:
        corner = (1, 1) if rising else (1, 0)
        legend.anchor(corner, corner, offset=(-8, -8) if rising else (-8, 8))


def live_curve(plot: pg.PlotWidget, name: str, color_hex: str, dashed: bool = False) -> pg.PlotDataItem:
    """One curve for one metric: downsampled and clipped to the view, fed later with setData."""
    from PySide6.QtCore import Qt

    pen = pg.mkPen(color_hex, width=2, style=Qt.DashLine if dashed else Qt.SolidLine)
    # Validation is logged every few steps: dots show each one (and a single point at all).
    symbol = {"symbol": "o", "symbolSize": 5, "symbolBrush": color_hex, "symbolPen": None} if dashed else {}
    curve = plot.plot([], [], pen=pen, name=name, **symbol)
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    return curve
