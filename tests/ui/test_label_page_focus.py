"""Every control on the Label page leaves the label keys working (issue #19: a clicked
"Highlight differences" took Space), and the difference view says when it marks nothing."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QComboBox

from builders import add_pairs

ANNOTATOR = "alice"


@pytest.fixture
def page(qtbot, project):
    from rmstudio.gui.label_page import LabelPage

    add_pairs(project, 12, prompt="Question {i}?", a="I am response A of pair {i}.",
              b="I am response B of pair {i}.")
    widget = LabelPage()
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.set_annotator(ANNOTATOR)
    widget.set_project(project)
    widget.show()
    widget.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget)
    yield widget
    widget.shutdown()


def press(qtbot, page, key, modifier=Qt.NoModifier):
    """A key as a user presses it: to whatever has the keyboard focus now."""
    target = QApplication.focusWidget()
    assert target is not None
    with qtbot.waitSignal(page.sig_labeled, timeout=5000):
        qtbot.keyClick(target, key, modifier)


def assert_keys_label(qtbot, page, project):
    """Space skips, 3 ties, 1 prefers the left: each stored for the pair on screen."""
    for key, expected in ((Qt.Key_Space, {"skip"}), (Qt.Key_3, {"tie"}), (Qt.Key_1, {"a", "b"})):
        cid = page.current.id
        press(qtbot, page, key)
        assert project.label(cid, ANNOTATOR).choice in expected


def test_no_button_checkbox_or_list_on_the_page_takes_the_keyboard(page):
    controls = page.findChildren(QAbstractButton) + page.findChildren(QComboBox)
    assert page.diff_check in controls and len(controls) >= 12
    assert all(c.focusPolicy() == Qt.NoFocus for c in controls)


def test_after_clicking_highlight_differences_space_skips(page, qtbot, project):
    qtbot.mouseClick(page.diff_check, Qt.LeftButton)
    assert page.diff_check.isChecked()
    cid = page.current.id
    press(qtbot, page, Qt.Key_Space)
    assert page.diff_check.isChecked()  # Space did not toggle it back
    assert project.label(cid, ANNOTATOR).choice == "skip"
    assert_keys_label(qtbot, page, project)


def test_after_choosing_an_order_the_keys_label(page, qtbot, project):
    qtbot.mouseClick(page.order_box, Qt.LeftButton)
    view = page.order_box.view()
    qtbot.waitUntil(view.isVisible)
    qtbot.wait(QApplication.doubleClickInterval() + 50)  # a release sooner is the opening click's
    random_order = view.visualRect(view.model().index(1, 0)).center()
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=random_order)
    qtbot.waitUntil(lambda: not view.isVisible())
    assert page.order == "random"
    # the list was a window of its own; when it closes the page's window is active again
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None, timeout=2000)
    assert_keys_label(qtbot, page, project)


def test_after_stepping_the_second_label_share_the_keys_label(page, qtbot, project):
    box = page.overlap_box
    up = QPoint(box.width() - 6, 4)  # the up arrow
    qtbot.mouseClick(box, Qt.LeftButton, pos=up)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is page)
    assert box.value() == 1
    assert_keys_label(qtbot, page, project)


def test_a_typed_share_takes_digits_until_enter_then_the_keys_label(page, qtbot, project):
    box = page.overlap_box
    qtbot.mouseClick(box.lineEdit(), Qt.LeftButton)
    assert QApplication.focusWidget() is box
    box.lineEdit().selectAll()
    qtbot.keyClicks(box, "25")
    assert project.counts()["labels"] == 0  # the digits were the share, not labels
    qtbot.keyClick(box, Qt.Key_Return)
    assert box.value() == 25 and QApplication.focusWidget() is page
    assert_keys_label(qtbot, page, project)


@pytest.mark.parametrize("choice", [("left", 2), ("left", 1), ("tie", None), ("skip", None),
                                    ("right", 1), ("right", 2)])
def test_after_clicking_a_label_button_the_keys_still_label(page, qtbot, project, choice):
    cid = page.current.id
    with qtbot.waitSignal(page.sig_labeled, timeout=5000):
        qtbot.mouseClick(page.action_buttons[choice], Qt.LeftButton)
    assert project.label(cid, ANNOTATOR) is not None
    assert_keys_label(qtbot, page, project)


def test_after_undo_and_both_bad_buttons_the_keys_still_label(page, qtbot, project):
    press(qtbot, page, Qt.Key_3)
    with qtbot.waitSignal(page.sig_labeled, timeout=5000):
        qtbot.mouseClick(page.undo_button, Qt.LeftButton)
    qtbot.mouseClick(page.action_buttons[("both_bad", None)], Qt.LeftButton)
    assert page.better_box.isVisible()
    with qtbot.waitSignal(page.sig_labeled, timeout=5000):
        qtbot.mouseClick(page.skip_writing_button, Qt.LeftButton)
    assert_keys_label(qtbot, page, project)


def test_unlike_responses_get_a_note_instead_of_marks(page, qtbot, project):
    from builders import add_pairs as more_pairs

    page.diff_check.setChecked(True)
    assert page.diff_note.isHidden()  # similar responses: marked, no note
    assert "background-color" in page.left_view.toHtml()
    [cid] = more_pairs(project, 1, prompt="Other question {i}?",
                       a="Paris is the capital of France, on the Seine.",
                       b="I cannot help with that; please ask something else.")
    page.show_comparison(cid)
    assert not page.diff_note.isHidden() and "nothing is highlighted" in page.diff_note.text()
    assert "background-color" not in page.left_view.toHtml()
    page.diff_check.setChecked(False)
    assert page.diff_note.isHidden()
