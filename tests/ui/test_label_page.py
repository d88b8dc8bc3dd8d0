"""The Label page with real widgets: keys write the right rows, through the writer thread."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from rmstudio.core.labeling.queue import side_swap
from builders import add_pairs as _add_pairs

ANNOTATOR = "alice"





def add_pairs(project, n):
    return _add_pairs(project, n, prompt="Question number {i}?", a="I am response A of pair {i}.", b="I am response B of pair {i}.")


@pytest.fixture
def make_page(qtbot):
    from rmstudio.gui.label_page import LabelPage

    pages = []

    def make(project):
        page = LabelPage()
        qtbot.addWidget(page)
        page.resize(1200, 800)
        page.set_annotator(ANNOTATOR)
        page.set_project(project)
        page.show()
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.shutdown()  # before the project fixture closes the file


def shown_left(page) -> str:
    """Which stored response ('a' or 'b') is on the left, read from the screen."""
    text = page.left_view.toPlainText()
    assert ("response A" in text) != ("response B" in text)
    return "a" if "response A" in text else "b"


def press(qtbot, page, key, modifier=Qt.NoModifier):
    """Press a key and wait until the commit is answered and the page has moved on."""
    with qtbot.waitSignal(page.sig_labeled, timeout=5000):
        qtbot.keyClick(page, key, modifier)


OTHER = {"a": "b", "b": "a"}


@pytest.mark.parametrize("key, meaning", [
    (Qt.Key_1, "left"), (Qt.Key_Left, "left"), (Qt.Key_2, "right"), (Qt.Key_Right, "right"),
    (Qt.Key_3, "tie"), (Qt.Key_Space, "skip"),
])
def test_each_key_stores_the_choice_about_the_real_responses(project, make_page, qtbot, key, meaning):
    add_pairs(project, 3)
    page = make_page(project)
    cid, left = page.current.id, shown_left(page)
    assert page.swapped == (left == "b") == side_swap(cid, ANNOTATOR)
    press(qtbot, page, key)
    label = project.label(cid, ANNOTATOR)
    expected = {"left": left, "right": OTHER[left]}.get(meaning, meaning)
    assert label.choice == expected
    assert label.strength == (1 if meaning in ("left", "right") else None)
    assert page.current.id != cid


def test_the_side_swap_never_flips_a_stored_preference(project, make_page, qtbot):
    add_pairs(project, 40)
    page = make_page(project)
    seen = set()
    for i in range(40):
        cid, left = page.current.id, shown_left(page)
        seen.add(page.swapped)
        key = Qt.Key_1 if i % 2 else Qt.Key_Right
        press(qtbot, page, key)
        assert project.label(cid, ANNOTATOR).choice == (left if i % 2 else OTHER[left])
        # the same pair shows on the same sides when it comes back
        page.show_comparison(cid)
        assert shown_left(page) == left
        page.show_next()
    assert seen == {True, False}
    assert page.stack.currentWidget() is page.empty


@pytest.mark.parametrize("key", [Qt.Key_1, Qt.Key_Left, Qt.Key_2, Qt.Key_Right])
def test_shift_means_much_better(project, make_page, qtbot, key):
    add_pairs(project, 2)
    page = make_page(project)
    cid, left = page.current.id, shown_left(page)
    press(qtbot, page, key, Qt.ShiftModifier)
    label = project.label(cid, ANNOTATOR)
    assert label.strength == 2
    assert label.choice == (left if key in (Qt.Key_1, Qt.Key_Left) else OTHER[left])


def test_undo_restores_the_previous_state_and_shows_the_pair_again(project, make_page, qtbot):
    add_pairs(project, 3)
    page = make_page(project)
    first = page.current.id
    press(qtbot, page, Qt.Key_1)
    assert project.label(first, ANNOTATOR) is not None and page.current.id != first
    press(qtbot, page, Qt.Key_Z, Qt.ControlModifier)
    assert project.label(first, ANNOTATOR) is None
    assert page.current.id == first
    assert "Undone" in page.status.text()
    # relabel it, then undo brings back "no label" again, not something else
    press(qtbot, page, Qt.Key_3)
    assert project.label(first, ANNOTATOR).choice == "tie"


def test_the_note_field_keeps_digits_and_is_stored_with_the_next_label(project, make_page, qtbot):
    add_pairs(project, 3)
    page = make_page(project)
    cid = page.current.id
    page.note.setFocus()
    with qtbot.assertNotEmitted(page.writer.sig_saved, wait=300):
        qtbot.keyClicks(page.note, "typo in 2 places")
        qtbot.keyClick(page.note, Qt.Key_1)
        qtbot.keyClick(page.note, Qt.Key_Left)
        qtbot.keyClick(page.note, Qt.Key_Space)
    assert page.note.text() == "typo in 2 places 1"  # typed, the arrow moved the cursor
    assert project.counts()["labels"] == 0
    page.note.setText("typo in 2 places")
    qtbot.keyClick(page.note, Qt.Key_Return)  # back to the keys; nothing stored yet
    assert project.counts()["labels"] == 0 and page.note.text() == "typo in 2 places"
    press(qtbot, page, Qt.Key_2)
    assert project.label(cid, ANNOTATOR).note == "typo in 2 places"
    assert page.note.text() == ""


def test_both_bad_with_a_written_response_adds_it_and_two_labeled_pairs(project, make_page, qtbot):
    add_pairs(project, 2)
    page = make_page(project)
    cid = page.current.id
    before = project.counts()
    qtbot.keyClick(page, Qt.Key_4)
    assert page.better_box.isVisible() and project.counts()["labels"] == 0
    page.better_edit.setPlainText("A kind, correct and short answer.")
    with qtbot.waitSignal(page.writer.sig_saved, timeout=5000) as blocker:
        qtbot.mouseClick(page.save_better_button, Qt.LeftButton)
    new_id = blocker.args[0]["response_id"]
    qtbot.waitUntil(lambda: page.current.id != cid)
    after = project.counts()
    assert after["responses"] == before["responses"] + 1
    assert after["comparisons"] == before["comparisons"] + 2
    assert project.label(cid, ANNOTATOR).choice == "both_bad"
    rows = project.conn.execute(
        "SELECT id, response_a_id, response_b_id FROM comparisons WHERE ? IN (response_a_id, response_b_id)",
        (new_id,)).fetchall()
    assert len(rows) == 2
    for comparison_id, a_id, b_id in rows:
        label = project.label(comparison_id, ANNOTATOR)
        assert (a_id if label.choice == "a" else b_id) == new_id
    assert not page.better_box.isVisible()


def test_both_bad_without_writing_stores_just_both_bad(project, make_page, qtbot):
    add_pairs(project, 2)
    page = make_page(project)
    cid = page.current.id
    qtbot.keyClick(page, Qt.Key_4)
    with qtbot.waitSignal(page.sig_labeled, timeout=5000):
        qtbot.mouseClick(page.skip_writing_button, Qt.LeftButton)
    assert project.label(cid, ANNOTATOR).choice == "both_bad"
    assert project.counts()["responses"] == 4


def test_saved_shows_only_after_the_commit_and_keys_wait_for_it(project, make_page, qtbot):
    add_pairs(project, 3)
    page = make_page(project)
    first = page.current.id
    with qtbot.waitSignal(page.writer.sig_saved, timeout=5000):
        qtbot.keyClick(page, Qt.Key_1)
        assert "Saved" not in page.status.text() and page.saving
        qtbot.keyClick(page, Qt.Key_2)  # ignored: the save is in flight
    qtbot.waitUntil(lambda: "Saved ✓" in page.status.text(), timeout=5000)
    assert page.current.id != first
    assert project.counts()["labels"] == 1
    assert project.label(first, ANNOTATOR) is not None


def test_progress_line_counts_labels(project, make_page, qtbot):
    add_pairs(project, 4)
    page = make_page(project)
    press(qtbot, page, Qt.Key_1)
    qtbot.waitUntil(lambda: page.progress_text.text().startswith("1 / 4 labeled"))
    assert page.progress_bar.value() == 1 and "3 left" in page.progress_text.text()


def test_empty_project_and_finished_queue_show_what_to_do(project, make_page, qtbot):
    page = make_page(project)
    assert page.stack.currentWidget() is page.empty
    assert "no comparisons" in page.empty_text.text()
    qtbot.keyClick(page, Qt.Key_1)  # nothing to label: nothing happens
    add_pairs(project, 1)
    page.show_next()
    press(qtbot, page, Qt.Key_3)
    assert page.stack.currentWidget() is page.empty
    assert "Everything is labeled" in page.empty_title.text()


def test_highlight_differences_marks_changed_words(project, make_page, qtbot):
    add_pairs(project, 1)
    page = make_page(project)
    page.diff_check.setChecked(True)
    html = page.left_view.toHtml()
    assert "background-color" in html and "response" in page.left_view.toPlainText()


def test_a_pair_sent_back_for_review_comes_first_with_a_badge_and_the_earlier_label(make_page, project, qtbot):
    from rmstudio.core.labeling.relabel import send_to_relabel

    ids = add_pairs(project, 3)
    project.set_label(ids[2], ANNOTATOR, "a")
    send_to_relabel(project, [ids[2]])
    page = make_page(project)
    assert page.current.id == ids[2]
    header = page.prompt_header.text()
    assert "sent back for review" in header
    assert f"your earlier label: {'right' if page.swapped else 'left'}" in header
    press(qtbot, page, Qt.Key_3)  # relabeled: a tie this time
    assert project.label(ids[2], ANNOTATOR).choice == "tie"
    assert page.current.id != ids[2] and "review" not in page.prompt_header.text()


def test_saving_a_written_response_says_why_the_counters_jump(project, make_page, qtbot):
    """Both bad + a written response stores 2 new pairs, each labeled, besides the shown pair's
    both-bad: the page says so at once, and total +2, labeled +3, you +3 follow from it."""
    add_pairs(project, 4)
    page = make_page(project)
    press(qtbot, page, Qt.Key_1)
    qtbot.waitUntil(lambda: page.progress_text.text().startswith("1 / 4 labeled  ·  you: 1 "),
                    timeout=180_000)
    qtbot.keyClick(page, Qt.Key_4)
    page.better_edit.setPlainText("A kind, correct and short answer.")
    with qtbot.waitSignal(page.sig_labeled, timeout=180_000):
        qtbot.mouseClick(page.save_better_button, Qt.LeftButton)
    assert "2 new comparisons labeled, yours beats both" in page.status.text()
    assert "both bad" in page.status.text()
    qtbot.waitUntil(lambda: page.progress_text.text().startswith("4 / 6 labeled  ·  you: 4 "),
                    timeout=180_000)


def test_a_skip_does_not_count_under_you(project, make_page, qtbot):
    add_pairs(project, 3)
    page = make_page(project)
    press(qtbot, page, Qt.Key_1)
    press(qtbot, page, Qt.Key_Space)
    qtbot.waitUntil(lambda: page.progress_text.text().startswith("1 / 3 labeled  ·  you: 1 "),
                    timeout=180_000)


def test_a_one_line_prompt_leaves_the_height_to_the_responses(project, make_page, qtbot):
    _add_pairs(project, 1, prompt="What is the capital of France?")
    _add_pairs(project, 1, prompt="\n\n".join(f"Paragraph {i} of a long prompt." for i in range(60)),
               a="long A", b="long B")
    page = make_page(project)
    qtbot.waitExposed(page)
    prompt_h, responses_h = page.splitter.sizes()
    assert prompt_h < 0.2 * (prompt_h + responses_h)
    assert page.prompt_view.verticalScrollBar().maximum() == 0  # all of it shows
    press(qtbot, page, Qt.Key_1)  # the long prompt: capped, then it scrolls
    prompt_h, responses_h = page.splitter.sizes()
    assert prompt_h <= page.splitter.PROMPT_MAX_SHARE * (prompt_h + responses_h) + 1
    assert prompt_h > 0.3 * (prompt_h + responses_h)
    assert page.prompt_view.verticalScrollBar().maximum() > 0


def test_the_progress_bar_keeps_its_width_whatever_the_texts_beside_it_say(project, make_page, qtbot):
    add_pairs(project, 3)
    page = make_page(project)
    qtbot.waitExposed(page)
    width = page.progress_bar.width()
    page.status.setText("Saved ✓  (both bad; your response: 2 new comparisons labeled, yours beats both)")
    page.progress_text.setText("1,234 / 56,789 labeled  ·  you: 1,000  ·  120/h  ·  55,555 left")
    qtbot.waitUntil(lambda: page.progress_text.width() >= page.progress_text.sizeHint().width(),
                    timeout=180_000)
    assert page.progress_bar.width() == width > 0
