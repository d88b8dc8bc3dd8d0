import pytest
from PySide6.QtCore import Qt

from rmstudio.core.store.inserts import ProjectWriter
from builders import add_pairs as _add_pairs
from rmstudio.gui.browse_model import COLUMNS, NOTE





def add_comparisons(project, n):
    return _add_pairs(project, n, prompt="\n\nHuman: question number {i}?\n\nAssistant:", a=" answer {i} from the left", b=" answer {i} from the right")


@pytest.fixture
def labeled(project):
    ids = add_comparisons(project, 6)
    for cid, choice in zip(ids, ["a", "b", "tie", "a", "both_bad", "skip"]):
        project.set_label(cid, "alice", choice, note="hard to say" if cid == ids[2] else None)
    for cid, choice in zip(ids[:4], ["a", "a", "tie", "b"]):
        project.set_label(cid, "bob", choice)
    project.comparison_ids = ids
    return project


@pytest.fixture
def page(qtbot):
    from rmstudio.gui.browse_page import BrowsePage

    widget = BrowsePage()
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    return widget


def rows(page):
    model = page.model
    return [tuple(model.index(r, c).data() for c in (0, 2, 3)) for r in range(model.rowCount())]


def test_without_a_project_or_labels_it_says_what_to_do(page, project):
    assert "Open a project" in page.empty.text() and page.empty.isVisible()
    page.set_project(project)
    assert "No labels yet" in page.empty.text()
    assert not page.table.isVisible()


def test_lists_newest_first_and_filters_by_annotator_and_choice(page, labeled):
    page.set_project(labeled)
    assert page.model.rowCount() == 10
    assert page.model.index(0, 1).data() == "Human: question number 3?"  # bob's last label
    page.annotator_filter.setCurrentText("bob")
    assert {r[1] for r in rows(page)} == {"bob"} and len(rows(page)) == 4
    page.choice_filter.setCurrentIndex(page.choice_filter.findData("a"))
    assert len(rows(page)) == 2
    page.annotator_filter.setCurrentIndex(0)  # All annotators
    assert len(rows(page)) == 4 and {r[2] for r in rows(page)} == {"A better"}
    page.choice_filter.setCurrentIndex(page.choice_filter.findData("skip"))
    assert rows(page) == [(str(labeled.comparison_ids[5]), "alice", "Skip")]
    page.annotator_filter.setCurrentText("bob")
    assert rows(page) == [] and page.empty.text() == "No labels match these filters."


def test_search_is_debounced_and_finds_notes_and_texts(page, labeled, qtbot):
    page.set_project(labeled)
    page.search.setText("HARD to")
    assert page.model.rowCount() == 10  # not yet: the search waits for typing to pause
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=2000)
    assert page.model.index(0, NOTE).data() == "hard to say"
    page.search.setText("answer 4 from the right")  # a response text
    qtbot.waitUntil(lambda: page.model.index(0, 0).data() == str(labeled.comparison_ids[4]),
                    timeout=2000)
    assert page.model.rowCount() == 1
    page.search.setText("question number 1?")  # prompt text, labeled by alice and bob
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=2000)
    page.search.setText("100%_")  # LIKE wildcards are searched for literally
    qtbot.waitUntil(lambda: page.model.rowCount() == 0, timeout=2000)


def test_open_change_and_delete_a_label(page, labeled, qtbot):
    page.set_project(labeled)
    page.set_annotator("alice")
    page.annotator_filter.setCurrentText("bob")
    page.table.setFocus()
    page.table.setCurrentIndex(page.model.index(0, 0))
    qtbot.keyClick(page.table, Qt.Key_Return)
    cid = labeled.comparison_ids[3]
    assert page.detail.title.text() == f"Comparison {cid}"
    assert "answer 3 from the left" in page.detail.response_a.toPlainText()
    assert "bob" in page.detail.label_text.text() and "not yours" in page.detail.label_text.text()
    assert page.detail.choice_buttons["b"].isChecked()
    page.detail.choice_buttons["tie"].click()
    assert labeled.label(cid, "bob").choice == "tie"
    assert labeled.label(cid, "alice").choice == "a"  # someone else's label is untouched
    assert page.model.index(0, 3).data() == "Tie"
    history = labeled.conn.execute(
        "SELECT count(*) FROM label_events WHERE comparison_id = ?", (cid,)).fetchone()[0]
    page.detail.delete_button.click()
    assert labeled.label(cid, "bob") is None
    assert page.model.rowCount() == 3
    assert labeled.conn.execute(
        "SELECT count(*) FROM label_events WHERE comparison_id = ?", (cid,)).fetchone()[0] == history + 1
    assert "deleted" in page.detail.label_text.text()
    with qtbot.waitSignal(page.sig_open_comparison) as blocker:
        page.detail.open_button.click()
    assert blocker.args == [cid]


def test_double_click_opens_a_label(page, labeled, qtbot):
    page.set_project(labeled)
    rect = page.table.visualRect(page.model.index(1, 1))
    # A real double-click is press, release, then the double-click event.
    qtbot.mouseClick(page.table.viewport(), Qt.LeftButton, pos=rect.center())
    qtbot.mouseDClick(page.table.viewport(), Qt.LeftButton, pos=rect.center())
    assert page.detail.title.text().startswith("Comparison ")
    assert page.detail.choice_buttons["a"].isEnabled()


def test_agreement_panel_shows_pairs_and_refreshes(page, labeled):
    page.set_project(labeled)
    table = page.agreement.table
    # alice/bob on the first four: [a b tie a] vs [a a tie b] -> 2 of 4 agree
    assert table.rowCount() == 1
    assert [table.item(0, c).text() for c in range(3)] == ["alice / bob", "4", "50.0%"]
    assert "Fleiss' κ" in page.agreement.fleiss.text()
    labeled.set_label(labeled.comparison_ids[1], "bob", "b")
    page.agreement.refresh_button.click()
    assert table.item(0, 2).text() == "75.0%"


def test_model_fetches_5000_labels_a_page_at_a_time(page, project):
    ids = add_comparisons(project, 2500)
    writer = ProjectWriter(project)
    alice, bob = project.annotator_id("alice"), project.annotator_id("bob")
    with project.write():
        for cid in ids:
            writer.label(cid, alice, "a", None, None, None)
            writer.label(cid, bob, "b", None, f"note {cid}", None)
    page.set_project(project)
    model = page.model
    assert model.rowCount() == model.PAGE and model.canFetchMore()
    model.fetchMore()
    assert model.rowCount() == 2 * model.PAGE
    while model.canFetchMore():
        model.fetchMore()
    assert model.rowCount() == 5000
    assert len(set(model._ids)) == 5000
    assert model.index(4999, 2).data() == "alice"  # the oldest label is the last row
    assert len(model._rows) < 5000  # only rows that were looked at are read
    page.table.scrollToBottom()
    assert page.count.text() == "5,000 labels"


def test_the_note_column_is_last_and_stretches_with_the_whole_note_in_its_tooltip(page, project, qtbot):
    ids = add_comparisons(project, 1)
    note = "a long note: " + "the left answer misses the point of the question; " * 6 + "THE END"
    project.set_label(ids[0], "alice", "a", strength=1, note=note)
    page.resize(1600, 800)
    page.set_project(project)
    qtbot.waitUntil(lambda: page.table.viewport().width() > 800)
    assert COLUMNS[-1] == "Note" and page.table.horizontalHeader().stretchLastSection()
    header = page.table.horizontalHeader()
    # the note gets the width the other columns leave, not a fixed 140 px
    assert header.sectionSize(NOTE) > 150
    assert header.sectionViewportPosition(NOTE) + header.sectionSize(NOTE) == page.table.viewport().width()
    assert "THE END" in page.model.index(0, NOTE).data(Qt.ToolTipRole)


def test_imported_a_b_labels_show_that_no_strength_was_given(page, project):
    from rmstudio.gui.browse_model import NO_STRENGTH, STRENGTH

    ids = add_comparisons(project, 3)
    project.set_label(ids[0], "source:file", "a")  # as an import stores it: no strength
    project.set_label(ids[1], "alice", "b", strength=2)
    project.set_label(ids[2], "alice", "tie")
    page.set_project(project)
    by_comparison = {page.model.index(r, 0).data(): page.model.index(r, STRENGTH) for r in range(3)}
    imported = by_comparison[str(ids[0])]
    assert imported.data() == NO_STRENGTH and "No strength given" in imported.data(Qt.ToolTipRole)
    assert by_comparison[str(ids[1])].data() == "much better"
    assert by_comparison[str(ids[2])].data() == ""  # a tie has no strength to give
    page.open_row(imported.row())
    assert "A better (no strength given)" in page.detail.label_text.text()
