"""Saving a plot as PNG or SVG: save_plot for code, a right-click menu on every plot for people."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest

from rmstudio.core.errors import RmstudioError


@pytest.fixture
def loss_plot(qtbot):
    from rmstudio.gui.plots import live_curve, make_plot

    plot = make_plot(None, "Loss (Bradley-Terry)", y_label="loss")
    qtbot.addWidget(plot)
    live_curve(plot, "train", "#0072B2").setData([1, 2, 3, 4], [1.0, 0.5, 0.3, 0.2])
    live_curve(plot, "validation", "#D55E00", dashed=True).setData([2, 4], [0.7, 0.45])
    plot.resize(500, 300)
    plot.show()
    qtbot.waitExposed(plot)
    return plot


def test_png_is_an_image_of_the_plot_at_its_size(loss_plot, tmp_path):
    from PySide6.QtGui import QImage

    from rmstudio.gui.plot_export import save_plot

    out = save_plot(loss_plot, tmp_path / "loss.png")
    image = QImage(str(out))
    assert not image.isNull() and (image.width(), image.height()) == (500, 300)
    # Not a blank image: the blue training curve is in it.
    colours = {image.pixelColor(x, y).name() for x in range(0, 500, 2) for y in range(0, 300, 2)}
    assert "#0072b2" in colours


def test_svg_is_xml_with_the_curves_as_paths(loss_plot, tmp_path):
    from rmstudio.gui.plot_export import save_plot

    out = save_plot(loss_plot, tmp_path / "loss.SVG")
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    shapes = [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] in ("path", "polyline")]
    assert len(shapes) > 5
    text = out.read_text()
    assert "Loss (Bradley-Terry)" in text and "#0072b2" in text.lower()


def test_the_svg_workaround_leaves_pyqtgraph_as_it_was(loss_plot, tmp_path):
    from pyqtgraph.exporters import SVGExporter

    from rmstudio.gui.plot_export import save_plot

    module = sys.modules[SVGExporter.__module__]
    before = module.correctCoordinates
    save_plot(loss_plot, tmp_path / "a.svg")
    assert module.correctCoordinates is before


@pytest.mark.parametrize("name, words", [("loss.txt", "ending in .png or .svg"),
                                         ("missing/loss.png", "does not exist"),
                                         ("missing/loss.svg", "does not exist")])
def test_a_plot_that_cannot_be_saved_says_why_in_one_line(loss_plot, tmp_path, name, words):
    from rmstudio.gui.plot_export import save_plot

    with pytest.raises(RmstudioError, match=words) as error:
        save_plot(loss_plot, tmp_path / name)
    assert "\n" not in str(error.value)


def test_a_file_that_cannot_be_written_is_one_line(loss_plot, tmp_path):
    from rmstudio.gui.plot_export import save_plot

    (tmp_path / "taken.svg").mkdir()  # a folder where the file should go
    with pytest.raises(RmstudioError, match="cannot save the plot to") as error:
        save_plot(loss_plot, tmp_path / "taken.svg")
    assert "\n" not in str(error.value)


def test_right_click_menu_asks_for_a_file_and_saves(loss_plot, tmp_path, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from rmstudio.gui import plot_export

    assert loss_plot.contextMenuPolicy() == Qt.CustomContextMenu
    menu = plot_export.save_menu(loss_plot)
    actions = {a.text(): a for a in menu.actions()}
    assert list(actions) == ["Save plot as PNG…", "Save plot as SVG…"]
    asked = []

    def dialog(parent, caption, start, filters):
        asked.append((caption, start, filters))
        return str(tmp_path / "chosen"), filters  # typed without an ending

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    actions["Save plot as SVG…"].trigger()
    assert asked[0][1].endswith("loss-bradley-terry.svg")
    assert ET.parse(tmp_path / "chosen.svg").getroot().tag.endswith("svg")
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda *args: warnings.append(args[2])))
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a: (str(tmp_path / "nowhere" / "x.png"), "")))
    actions["Save plot as PNG…"].trigger()
    assert len(warnings) == 1 and "does not exist" in warnings[0]


def test_every_results_and_live_plot_has_the_menu(qtbot):
    from PySide6.QtCore import Qt

    from rmstudio.core.reward.kind import PAIRWISE_PLOTS
    from rmstudio.gui.live_plots import LivePlots
    from rmstudio.gui.optimize_results import OptimizeResults
    from rmstudio.gui.train_results import ResultsPanel

    live, results, optimize = LivePlots(PAIRWISE_PLOTS), ResultsPanel(), OptimizeResults()
    for widget in (live, results, optimize):
        qtbot.addWidget(widget)
    plots = [*live.plots.values(), results.hist_plot, results.reliability_plot, results.margin_plot,
             results.ratings_plot, optimize.kl_plot]
    assert all(p.contextMenuPolicy() == Qt.CustomContextMenu for p in plots)


def test_a_right_click_on_the_plot_opens_the_save_menu(loss_plot, qtbot, monkeypatch):
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication

    from rmstudio.gui import plot_export

    shown = []
    monkeypatch.setattr(plot_export, "popup",
                        lambda menu, where: shown.append([a.text() for a in menu.actions()]))
    event = QContextMenuEvent(QContextMenuEvent.Mouse, QPoint(200, 150))
    QApplication.sendEvent(loss_plot.viewport(), event)  # where the platform delivers a right-click
    assert shown == [["Save plot as PNG…", "Save plot as SVG…"]]
