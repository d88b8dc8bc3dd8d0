"""The labeling core: side swap, queue with overlap, better responses, progress."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rmstudio.core.errors import ProjectError
from rmstudio.core.labeling.queue import (
    add_better_response, displayed_to_stored, in_overlap_share, next_for_annotator, progress,
    side_swap,
)
from rmstudio.core.data.records import Text
from rmstudio.core.store.inserts import ProjectWriter
from builders import add_pairs





def test_side_swap_is_stable_and_balanced():
    swaps = [side_swap(cid, "alice") for cid in range(1, 4001)]
    assert swaps == [side_swap(cid, "alice") for cid in range(1, 4001)]
    assert 0.45 < sum(swaps) / len(swaps) < 0.55
    # another annotator sees other sides for some pairs
    assert swaps != [side_swap(cid, "bob") for cid in range(1, 4001)]


@pytest.mark.parametrize("swapped", [False, True])
def test_displayed_choice_maps_to_the_real_response(swapped):
    assert displayed_to_stored("left", swapped) == ("b" if swapped else "a")
    assert displayed_to_stored("right", swapped) == ("a" if swapped else "b")
    for same in ("tie", "both_bad", "skip"):
        assert displayed_to_stored(same, swapped) == same
    with pytest.raises(ValueError):
        displayed_to_stored("a", swapped)


def test_queue_serves_unlabeled_first_in_import_order(project):
    ids = add_pairs(project, 5)
    assert next_for_annotator(project, "alice") == ids[0]
    project.set_label(ids[0], "alice", "a")
    assert next_for_annotator(project, "alice") == ids[1]
    project.set_label(ids[1], "bob", "skip")  # a skip by someone else leaves it unlabeled
    assert next_for_annotator(project, "alice") == ids[1]
    assert next_for_annotator(project, "alice", order="random") in ids[1:]
    with pytest.raises(ProjectError):
        next_for_annotator(project, "alice", order="sideways")


def test_overlap_serves_a_share_of_pairs_labeled_by_exactly_one_other(project):
    ids = add_pairs(project, 400)
    for cid in ids[:300]:
        project.set_label(cid, "bob", "a")
    share = 0.3
    eligible = {cid for cid in ids[:300] if in_overlap_share(project, cid, share)}
    assert 0.15 * 300 < len(eligible) < 0.45 * 300
    served_overlap, served_new = [], []
    for _ in range(150):
        cid = next_for_annotator(project, "alice", overlap_share=share)
        (served_overlap if cid in ids[:300] else served_new).append(cid)
        project.set_label(cid, "alice", "b")
    assert set(served_overlap) <= eligible
    assert served_new and served_overlap  # interleaved
    assert 0.1 < len(served_overlap) / 150 < 0.5
    # pairs that already have two labels are never served again
    for cid in served_overlap:
        assert project.conn.execute("SELECT label_count FROM comparisons WHERE id = ?",
                                    (cid,)).fetchone()[0] == 2
    # without an overlap share only unlabeled pairs come
    assert next_for_annotator(project, "carol") not in ids[:300]


def test_overlap_is_all_that_is_left_once_everything_has_one_label(project):
    ids = add_pairs(project, 50)
    for cid in ids:
        project.set_label(cid, "bob", "tie")
    assert next_for_annotator(project, "alice") is None
    found = next_for_annotator(project, "alice", overlap_share=1.0)
    assert found in ids
    # a skip is no label to agree with: the pair is unlabeled again and served as new
    project.set_label(ids[0], "bob", "skip")
    assert next_for_annotator(project, "carol") == ids[0]
    # bob has a label or skip on every pair: nothing for him, overlap or not
    assert next_for_annotator(project, "bob", overlap_share=1.0) is None


def test_add_better_response_is_one_transaction(project):
    (cid,) = add_pairs(project, 1)
    saved = add_better_response(project, cid, "alice", "A much better answer", note="both rude")
    new_id = saved.response_id
    assert saved.comparisons_added == 2
    model = project.conn.execute("SELECT model FROM responses WHERE id = ?", (new_id,)).fetchone()[0]
    assert model == "human:alice"
    assert project.label(cid, "alice").choice == "both_bad"
    assert project.label(cid, "alice").note == "both rude"
    rows = project.conn.execute(
        "SELECT id, response_a_id, response_b_id FROM comparisons WHERE id <> ?", (cid,)).fetchall()
    assert len(rows) == 2
    for comparison_id, a_id, b_id in rows:
        label = project.label(comparison_id, "alice")
        winner = a_id if label.choice == "a" else b_id
        assert winner == new_id


def test_add_better_response_keeps_nothing_when_it_fails(project, monkeypatch):
    (cid,) = add_pairs(project, 1)
    before = project.counts()
    calls = []
    original = project.set_label

    def failing(*args, **kw):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(*args, **kw)

    monkeypatch.setattr(project, "set_label", failing)
    with pytest.raises(RuntimeError):
        add_better_response(project, cid, "alice", "Better")
    after = project.counts()
    assert {k: after[k] for k in ("responses", "comparisons", "labels")} == \
        {k: before[k] for k in ("responses", "comparisons", "labels")}
    with pytest.raises(ProjectError):
        add_better_response(project, cid, "alice", "answer A to 0")  # same as a shown response
    with pytest.raises(ProjectError):
        add_better_response(project, cid, "alice", "   ")


def test_progress_counts_and_rate(project):
    ids = add_pairs(project, 20)
    for cid in ids[:6]:
        project.set_label(cid, "alice", "a")
    project.set_label(ids[6], "bob", "b")
    now = datetime.now(timezone.utc)
    # Pretend alice's six labels were given over the last 30 minutes.
    for i, cid in enumerate(ids[:6]):
        at = (now - timedelta(minutes=30 - 6 * i)).isoformat(timespec="microseconds")
        project.conn.execute("UPDATE labels SET created_at = ? WHERE comparison_id = ?", (at, cid))
    p = progress(project, "alice", now=now)
    assert (p["total"], p["labeled"], p["mine"], p["remaining"]) == (20, 7, 6, 13)
    assert p["last_hour"] == 6
    assert p["rate_per_hour"] == pytest.approx(12.0)
    assert p["eta_seconds"] == pytest.approx(13 / 12 * 3600)
    empty = progress(project, "nobody", now=now)
    assert empty["mine"] == 0 and empty["rate_per_hour"] == 0 and empty["eta_seconds"] is None


def test_progress_leaves_skips_out_of_every_count(project):
    """A skip leaves the pair in the queue: it moved "you" but not "labeled" before."""
    ids = add_pairs(project, 5)
    project.set_label(ids[0], "alice", "a")
    project.set_label(ids[1], "alice", "skip")
    p = progress(project, "alice")
    assert (p["labeled"], p["mine"], p["last_hour"], p["remaining"]) == (1, 1, 1, 4)


def test_better_response_moves_the_counters_by_what_it_stores(project):
    """Both bad + a written response: 2 new pairs (total +2), those two and the shown pair
    labeled (labeled +3, you +3)."""
    ids = add_pairs(project, 4)
    project.set_label(ids[0], "alice", "a")
    before = progress(project, "alice")
    saved = add_better_response(project, ids[1], "alice", "A better answer")
    after = progress(project, "alice")
    assert saved.comparisons_added == 2
    assert after["total"] - before["total"] == 2
    assert after["labeled"] - before["labeled"] == 3
    assert after["mine"] - before["mine"] == 3
    assert after["remaining"] == before["remaining"] - 1


def test_pairs_sent_back_for_review_come_first_until_relabeled(project):
    from rmstudio.core.labeling.queue import next_for_annotator
    from rmstudio.core.labeling.relabel import send_to_relabel

    writer = ProjectWriter(project)
    with project.write():
        ids = []
        for i in range(3):
            pid, ph, _ = writer.prompt(Text(f"p{i}"))
            a = writer.response(pid, Text("x"), "t")[:2]
            b = writer.response(pid, Text("y"), "t")[:2]
            ids.append(writer.comparison(pid, ph, a, b)[0])
    project.set_label(ids[2], "ann", "a")
    assert next_for_annotator(project, "ann") == ids[0]
    send_to_relabel(project, [ids[2]])
    assert next_for_annotator(project, "ann") == ids[2]
    project.set_label(ids[2], "ann", "b")
    assert next_for_annotator(project, "ann") == ids[0]


def test_a_writer_that_comes_back_fast_cannot_starve_a_label(project):
    """Another process takes the write lock again 1 ms after each release (a busy import, or
    other labelers). SQLite's own busy handler sleeps 25-100 ms between tries and so kept
    missing those gaps: a labeler waited 4.5 s or failed with 'busy'. The write lock is polled
    instead, so each label gets in at one of the first gaps."""
    import subprocess
    import sys
    import time

    ids = add_pairs(project, 12)
    hog = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    c.execute('BEGIN IMMEDIATE'); time.sleep(0.03); c.execute('COMMIT'); time.sleep(0.001)\n"),
        str(project.path)], stdout=subprocess.PIPE, text=True)
    waits = []
    try:
        assert hog.stdout.readline().strip() == "ready"
        for cid in ids:
            start = time.perf_counter()
            project.set_label(cid, "ann", "a")
            waits.append(time.perf_counter() - start)
    finally:
        hog.kill()
        hog.wait()
    assert max(waits) < 1.0, f"a label waited {max(waits):.2f} s (all: {sorted(waits)})"
