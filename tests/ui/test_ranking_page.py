import pytest
from PySide6.QtCore import Qt

from rmstudio.core.labeling.ranking import ranking_order
from rmstudio.core.data.records import Text
from rmstudio.core.store.inserts import ProjectWriter


@pytest.fixture
def ranked_project(project):
    writer = ProjectWriter(project)
    with project.write():
        pid, _, _ = writer.prompt(Text("Which is best?"))
        ids = [writer.response(pid, Text(f"answer {i}"), "test")[0] for i in range(3)]
        two, _, _ = writer.prompt(Text("only two"))
        writer.response(two, Text("x"), None)
        writer.response(two, Text("y"), None)
    project.prompt_id, project.response_ids = pid, ids
    return project


@pytest.fixture
def page(qtbot):
    from rmstudio.gui.ranking_page import RankingPage

    widget = RankingPage()
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    return widget


def test_empty_states(page, project):
    assert "Open a project" in page.empty.text()
    page.set_project(project)
    assert "more than two responses" in page.empty.text()
    assert not page.save_button.isEnabled()


def test_nothing_to_rank_shows_one_paragraph_not_empty_boxes(page, project):
    assert page.stack.currentWidget() is page.empty_view  # no project
    page.set_project(project)
    assert page.stack.currentWidget() is page.empty_view
    assert not page.responses.isVisible() and not page.prompt.isVisible()
    assert "best first" in page.empty.text() and "Data" in page.empty.text()
    writer = ProjectWriter(project)
    with project.write():
        pid, _, _ = writer.prompt(Text("Which is best?"))
        for i in range(3):
            writer.response(pid, Text(f"answer {i}"), "test")
    page.refresh()
    assert page.stack.currentWidget() is page.ranking_view
    assert page.responses.isVisible() and page.responses.count() == 3


def test_keys_reorder_and_enter_saves(page, ranked_project, qtbot):
    r0, r1, r2 = ranked_project.response_ids
    page.set_annotator("alice")
    page.set_project(ranked_project)
    assert page.prompt_choice.count() == 1
    assert page.prompt.toPlainText() == "Which is best?"
    assert page.order() == [r0, r1, r2]
    page.responses.setFocus()
    page.responses.setCurrentRow(2)
    qtbot.keyClick(page.responses, Qt.Key_Up, Qt.AltModifier)
    qtbot.keyClick(page.responses, Qt.Key_Up, Qt.AltModifier)
    assert page.order() == [r2, r0, r1]
    qtbot.keyClick(page.responses, Qt.Key_Up, Qt.AltModifier)  # already first: stays
    qtbot.keyClick(page.responses, Qt.Key_Down, Qt.AltModifier)
    assert page.order() == [r0, r2, r1] and page.responses.currentRow() == 1
    with qtbot.waitSignal(page.sig_ranking_saved) as blocker:
        qtbot.keyClick(page.responses, Qt.Key_Return)
    assert blocker.args == [ranked_project.prompt_id]
    assert ranking_order(ranked_project, ranked_project.prompt_id, "alice") == [r0, r2, r1]
    assert ranked_project.counts()["labels"] == 3
    assert "3 pairwise labels" in page.status.text()
    # Reopening shows the saved order.
    page.set_project(ranked_project)
    assert page.order() == [r0, r2, r1]
    assert "saved ranking" in page.status.text()


def test_save_needs_an_annotator(page, ranked_project):
    page.set_project(ranked_project)
    page.save_button.click()
    assert "annotator" in page.status.text()
    assert ranked_project.counts()["rankings"] == 0
