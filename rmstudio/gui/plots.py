"""Small pyqtgraph helpers shared by the Train and Runs workspaces.

Every live curve is one ``PlotDataItem`` made once and fed with ``setData`` from a timer,
with downsampling and clip-to-view on, so a long run never redraws per progress signal.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QWidget

from rmstudio.gui.plot_export import install_save_menu

# A colour-blind friendly cycle (Okabe-Ito, then Tableau): runs and splits keep their colour.
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
          "#8c564b", "#7f7f7f"]
SPLIT_COLORS = {"train": "#0072B2", "val": "#D55E00", "test": "#009E73"}


def color(index: int) -> str:
    return COLORS[index % len(COLORS)]


def set_title(plot: pg.PlotWidget, title: str) -> None:
    text = plot.palette().color(QPalette.Text).name()
    plot.getPlotItem().setTitle(f"<span style='color:{text}; font-size:10pt'>{title}</span>")


def make_plot(parent: QWidget | None, title: str, x_label: str = "step", y_label: str = "",
              legend: bool = True) -> pg.PlotWidget:
    """A plot that follows the widget palette (light or dark), with a grid and an optional legend."""
    palette = (parent or QWidget()).palette()
    plot = pg.PlotWidget(parent, background=palette.color(QPalette.Base))
    text = palette.color(QPalette.Text).name()
    item = plot.getPlotItem()
    set_title(plot, title)
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setTextPen(text)
        axis.setPen(palette.color(QPalette.Mid))
    if x_label:
        item.setLabel("bottom", x_label, color=text)
    if y_label:
        item.setLabel("left", y_label, color=text)
    item.showGrid(x=True, y=True, alpha=0.15)
    item.setMenuEnabled(False)
    if legend:
        fill = palette.color(QPalette.Base)
        fill.setAlpha(170)  # curves stay visible under the legend
        item.addLegend(offset=(-8, 8), labelTextColor=text, brush=fill)
    plot.setMinimumHeight(150)
    install_save_menu(plot)  # right-click: save as PNG or SVG
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
