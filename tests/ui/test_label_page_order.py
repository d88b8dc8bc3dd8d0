"""The Label page's "Order" choice (issue #18): enabled once the live model has a fit, serves
the most informative pair first with its reason, falls back to the default order, and leaves
the label keys working."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from builders import add_pairs
from rmstudio.core.labeling.active import ActiveOrder
from rmstudio.gui.live_model import LiveModelController

ANNOTATOR = "alice"


class Live(LiveModelController):
    """The real controller's signals, with the refit faked: a test decides when a fit exists."""

    fitted = False
    asked: list = []

    @property
    def has_fit(self) -> bool:
        return self.fitted

    def set_strategy(self, strategy):
        self.strategy = strategy
        self.asked.append(strategy)


@pytest.fixture
def setup(qtbot, project):
    from rmstudio.gui.label_page import LabelPage

    ids = add_pairs(project, 6, prompt="Question {i}?", a="I am response A of pair {i}.",
                    b="I am response B of pair {i}.")
    page = LabelPage()
    qtbot.addWidget(page)
    live = Live(page)
    live.asked = []
    page.attach_live_model(live)
    page.resize(1200, 800)
    page.set_annotator(ANNOTATOR)
    page.set_project(project)
    page.show()
    page.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is page)
    yield page, live, ids
    page.shutdown()


def test_order_choice_needs_a_fit_then_serves_the_informative_pair_first(setup, qtbot, project):
    page, live, ids = setup
    box = page.active.box
    assert not box.isEnabled() and page.current.id == ids[0]
    assert box.focusPolicy() == Qt.NoFocus
    live.fitted = True
    live.sig_fitted.emit(True)
    assert box.isEnabled()

    box.setCurrentIndex(box.findData("margin"))
    box.activated.emit(box.currentIndex())
    assert live.asked == ["margin"]
    assert page.current.id == ids[0]  # the pair on screen stays until its order arrives
    order = ActiveOrder("margin", [ids[4], ids[2]], {ids[4]: "smallest margin: 0.03",
                                                     ids[2]: "smallest margin: 0.20"}, 2)
    live.sig_order.emit(order)
    assert page.current.id == ids[4]
    assert page.active.reason.text() == "smallest margin: 0.03"
    assert QApplication.focusWidget() is page

    # The label keys still work, and the order goes on: then the default order behind it.
    with qtbot.waitSignal(page.sig_labeled, timeout=5000):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key_1)
    assert project.label(ids[4], ANNOTATOR) is not None
    assert page.current.id == ids[2] and page.active.reason.text() == "smallest margin: 0.20"
    with qtbot.waitSignal(page.sig_labeled, timeout=5000):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Space)
    assert page.current.id == ids[0]
    assert page.active.reason.text() == "default order (not embedded yet)"

    # An order computed for another choice is ignored; Default brings the plain queue back.
    live.sig_order.emit(ActiveOrder("doptimal", [ids[5]], {ids[5]: "most informative: +0.41 log det"}, 1))
    assert page.active.order.strategy == "margin"
    box.setCurrentIndex(box.findData(None))
    box.activated.emit(box.currentIndex())
    assert live.asked == ["margin", None]
    assert page.current.id == ids[0] and page.active.reason.text() == ""


def test_most_informative_shows_its_log_det_gain(setup, qtbot):
    page, live, ids = setup
    live.fitted = True
    live.sig_fitted.emit(True)
    box = page.active.box
    box.setCurrentIndex(box.findData("doptimal"))
    box.activated.emit(box.currentIndex())
    live.sig_order.emit(ActiveOrder("doptimal", [ids[3]], {ids[3]: "most informative: +0.41 log det"}, 1))
    assert page.current.id == ids[3]
    assert page.active.reason.text() == "most informative: +0.41 log det"
    live.sig_fitted.emit(False)  # e.g. another project: no fit, no choice
    assert not box.isEnabled() and page.active.front() is None
