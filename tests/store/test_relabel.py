"""The review queue: confident mistakes marked for another look, labels kept."""

from __future__ import annotations

import time

import pytest

from rmstudio.core.errors import ProjectError
from rmstudio.core.labeling.relabel import (
    REVIEW_KEY, clear_review_queue, next_for_review, review_queue, send_to_relabel,
)
from builders import add_pairs





def test_queued_pairs_keep_their_labels_and_come_first_in_order(project):
    ids = add_pairs(project, 4)
    for cid in ids:
        project.set_label(cid, "alice", "a")
    assert send_to_relabel(project, [ids[2], ids[0], ids[2]]) == 2
    assert review_queue(project) == [ids[2], ids[0]]
    assert next_for_review(project, "bob") == ids[2]
    assert project.counts()["labels"] == 4  # nothing deleted: training still sees the current labels
    assert [e["comparison_id"] for e in project.setting(REVIEW_KEY)] == [ids[2], ids[0]]


def test_an_entry_closes_once_relabeled_after_queueing(project):
    ids = add_pairs(project, 2)
    project.set_label(ids[0], "alice", "a")
    time.sleep(0.002)
    send_to_relabel(project, [ids[0], ids[1]])
    time.sleep(0.002)
    project.set_label(ids[0], "alice", "b")  # looked again: a new label after it was queued
    assert review_queue(project) == [ids[1]]
    assert next_for_review(project, "bob") == ids[1]


def test_named_annotators_each_review(project):
    ids = add_pairs(project, 1)
    send_to_relabel(project, ids, annotator_names=["alice", "bob"])
    assert next_for_review(project, "carol") is None
    time.sleep(0.002)
    project.set_label(ids[0], "alice", "tie")
    assert review_queue(project, "alice") == []
    assert review_queue(project, "bob") == ids
    assert review_queue(project) == ids  # bob has not looked yet
    project.set_label(ids[0], "bob", "a")
    assert review_queue(project) == []


def test_requeueing_refreshes_and_unknown_ids_are_refused(project):
    ids = add_pairs(project, 2)
    send_to_relabel(project, [ids[0]])
    send_to_relabel(project, [ids[1], ids[0]])
    assert review_queue(project) == [ids[1], ids[0]]
    with pytest.raises(ProjectError, match="9999"):
        send_to_relabel(project, [9999])
    assert send_to_relabel(project, []) == 0
    clear_review_queue(project)
    assert review_queue(project) == []


def test_plain_id_lists_are_read_too(project):
    ids = add_pairs(project, 2)
    project.set_setting(REVIEW_KEY, [ids[1]])
    assert review_queue(project, "alice") == [ids[1]]
