import pytest

from rmstudio.core.errors import ProjectError
from rmstudio.core.labeling.ranking import (
    prompt_responses, prompts_with_many_responses, ranking_order, save_ranking,
)
from rmstudio.core.data.records import Text
from rmstudio.core.store.inserts import ProjectWriter


@pytest.fixture
def four_answers(project):
    """Prompt 'many' with four responses, one stored comparison (r3 as A, r1 as B), and a
    prompt 'pair' with only two responses."""
    writer = ProjectWriter(project)
    with project.write():
        pid, ph, _ = writer.prompt(Text("many"))
        rs = [writer.response(pid, Text(f"r{i}"), "test")[:2] for i in range(4)]
        writer.comparison(pid, ph, rs[3], rs[1])
        other, oh, _ = writer.prompt(Text("pair"))
        writer.response(other, Text("x"), "test")
        writer.response(other, Text("y"), "test")
    project.prompt_id = pid
    project.response_ids = [r[0] for r in rs]
    return project


def implied_winners(project, annotator):
    """{(winner id, loser id)} from the stored labels, whichever side each response is on."""
    rows = project.conn.execute(
        """SELECT c.response_a_id, c.response_b_id, l.choice FROM labels l
           JOIN comparisons c ON c.id = l.comparison_id JOIN annotators a ON a.id = l.annotator_id
           WHERE a.name = ?""", (annotator,))
    return {(a, b) if choice == "a" else (b, a) for a, b, choice in rows}


def test_lists_prompts_with_more_than_two_responses(four_answers):
    found = prompts_with_many_responses(four_answers)
    assert [(p["text"], p["responses"]) for p in found] == [("many", 4)]
    assert [r["text"] for r in prompt_responses(four_answers, four_answers.prompt_id)] == [
        "r0", "r1", "r2", "r3"]


def test_save_stores_entries_and_every_implied_pair(four_answers):
    r0, r1, r2, r3 = four_answers.response_ids
    order = [r2, r0, r3, r1]
    save_ranking(four_answers, four_answers.prompt_id, "alice", order)
    assert ranking_order(four_answers, four_answers.prompt_id, "alice") == order
    scores = dict(four_answers.conn.execute("SELECT response_id, score FROM ranking_entries"))
    assert scores == {r2: 0.0, r0: -1.0, r3: -2.0, r1: -3.0}
    # 4 responses -> 6 pairs; the stored r3-vs-r1 comparison is reused (r3 is its A: 'a').
    assert four_answers.counts()["comparisons"] == 6
    assert implied_winners(four_answers, "alice") == {
        (r2, r0), (r2, r3), (r2, r1), (r0, r3), (r0, r1), (r3, r1)}
    stored = four_answers.conn.execute(
        "SELECT l.choice FROM labels l JOIN comparisons c ON c.id = l.comparison_id "
        "WHERE c.response_a_id = ? AND c.response_b_id = ?", (r3, r1)).fetchone()
    assert stored[0] == "a"


def test_flipped_comparison_gets_choice_b(four_answers):
    r0, r1, r2, r3 = four_answers.response_ids
    save_ranking(four_answers, four_answers.prompt_id, "alice", [r1, r3])
    # The comparison is stored with r3 as A; r1 is better, so the label says 'b'.
    row = four_answers.conn.execute(
        "SELECT c.response_a_id, l.choice FROM labels l JOIN comparisons c "
        "ON c.id = l.comparison_id").fetchone()
    assert tuple(row) == (r3, "b")


def test_saving_again_replaces_the_ranking_and_keeps_label_history(four_answers):
    r0, r1, r2, r3 = four_answers.response_ids
    pid = four_answers.prompt_id
    first = save_ranking(four_answers, pid, "alice", [r0, r1, r2, r3])
    save_ranking(four_answers, pid, "bob", [r0, r1, r2, r3])
    second = save_ranking(four_answers, pid, "alice", [r3, r2, r1, r0])
    assert first != second
    assert four_answers.counts()["rankings"] == 2
    assert four_answers.conn.execute("SELECT count(*) FROM ranking_entries").fetchone()[0] == 8
    assert ranking_order(four_answers, pid, "alice") == [r3, r2, r1, r0]
    assert ranking_order(four_answers, pid, "bob") == [r0, r1, r2, r3]
    assert implied_winners(four_answers, "alice") == {
        (r3, r2), (r3, r1), (r3, r0), (r2, r1), (r2, r0), (r1, r0)}
    assert four_answers.counts()["labels"] == 12
    # Each of alice's 6 labels was written twice: 12 events, so undo can go back.
    events = four_answers.conn.execute(
        "SELECT count(*) FROM label_events e JOIN annotators a ON a.id = e.annotator_id "
        "WHERE a.name = 'alice'").fetchone()[0]
    assert events == 12


def test_bad_rankings_are_refused_and_change_nothing(four_answers):
    r0, r1, r2, r3 = four_answers.response_ids
    pid = four_answers.prompt_id
    other = four_answers.conn.execute(
        "SELECT id FROM responses WHERE prompt_id <> ? LIMIT 1", (pid,)).fetchone()[0]
    with pytest.raises(ProjectError, match="at least two"):
        save_ranking(four_answers, pid, "alice", [r0])
    with pytest.raises(ProjectError, match="twice"):
        save_ranking(four_answers, pid, "alice", [r0, r0])
    with pytest.raises(ProjectError, match="not responses to prompt"):
        save_ranking(four_answers, pid, "alice", [r0, other])
    with pytest.raises(ProjectError, match="no prompt"):
        save_ranking(four_answers, 999, "alice", [r0, r1])
    assert four_answers.counts()["labels"] == 0 and four_answers.counts()["rankings"] == 0
