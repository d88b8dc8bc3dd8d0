"""The core reads the GUI pages call instead of running SQL themselves (labels to browse, counts
per annotator, runs' last values and files, quick project questions)."""

from __future__ import annotations

import pytest

from rmstudio.core.errors import ProjectError
from rmstudio.core.labeling.browse import LabelFilter, label_ids, label_rows, like_pattern
from rmstudio.core.labeling.stats import annotator_choice_counts, labels_left_out_of_training
from rmstudio.core.runs.store import (add_artifact, last_metric_values, log_metrics, run_artifacts,
                                      start_run)
from rmstudio.core.store.backups import list_backups
from builders import add_pairs


# -- Project's quick reads ----------------------------------------------------------------------

def test_has_labels_and_has_comparisons_follow_what_is_stored(project):
    assert not project.has_comparisons() and not project.has_labels()
    ids = add_pairs(project, 2)
    assert project.has_comparisons() and not project.has_labels()
    project.set_label(ids[0], "ann", "a")
    assert project.has_labels()
    project.delete_label(ids[0], "ann")
    assert not project.has_labels()


def test_prompt_ids_in_import_order_and_prompt_text(project):
    assert project.prompt_ids() == []
    add_pairs(project, 3, prompt="question {i}")
    ids = project.prompt_ids()
    assert len(ids) == 3 and ids == sorted(ids)
    assert [project.prompt_text(i) for i in ids] == ["question 0", "question 1", "question 2"]
    with pytest.raises(ProjectError, match="no prompt #999"):
        project.prompt_text(999)


def test_backup_if_changed_makes_one_then_waits(project):
    add_pairs(project, 2)
    made = project.backup_if_changed(15)
    assert made is not None and made.reason == "periodic"
    assert project.backup_if_changed(15) is None  # too soon
    assert [b.path for b in list_backups(project.path)] == [made.path]


# -- browsing labels ----------------------------------------------------------------------------

def test_like_pattern_escapes_the_wildcards():
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_label_ids_newest_first_in_keyset_pages(project):
    cids = add_pairs(project, 7)
    for cid in cids:
        project.set_label(cid, "ann", "a")
    everything = label_ids(project)
    assert len(everything) == 7 and everything == sorted(everything, reverse=True)
    first = label_ids(project, limit=3)
    second = label_ids(project, before_id=first[-1], limit=3)
    third = label_ids(project, before_id=second[-1], limit=3)
    assert first + second + third == everything and len(third) == 1  # short page: the last


def test_label_ids_filter_by_annotator_choice_and_text(project):
    cids = add_pairs(project, 4, prompt="prompt {i}", a="answer A to {i}", b="answer B to {i}")
    project.set_label(cids[0], "ann", "a", note="100% sure")
    project.set_label(cids[1], "ann", "tie")
    project.set_label(cids[2], "bob", "a")
    project.set_label(cids[3], "bob", "skip")
    ann = project.annotator_id("ann", create=False)

    def comparisons(**kwargs):
        return {label_rows(project, [i])[i][1] for i in label_ids(project, LabelFilter(**kwargs))}

    assert comparisons(annotator_id=ann) == {cids[0], cids[1]}
    assert comparisons(choice="a") == {cids[0], cids[2]}
    assert comparisons(annotator_id=ann, choice="a") == {cids[0]}
    assert comparisons(search="  prompt 3 ") == {cids[3]}  # in the prompt, trimmed
    assert comparisons(search="ANSWER B TO 2") == {cids[2]}  # a response, any case
    assert comparisons(search="100%") == {cids[0]}  # the note; % is a character, not a wildcard
    assert comparisons(search="0%") == {cids[0]}
    assert comparisons(search="_") == set()  # _ is a character too
    assert comparisons(search="   ") == set(cids)  # blank: no text filter


def test_label_rows_have_the_browse_columns_and_skip_missing_ids(project):
    [cid] = add_pairs(project, 1, prompt="x" * 1000)
    project.set_label(cid, "ann", "b", strength=2, note="close call")
    [label_id] = label_ids(project)
    row = label_rows(project, [label_id, label_id + 1000])
    assert list(row) == [label_id]
    lid, comparison, prompt, annotator, choice, strength, note, created_at = row[label_id]
    assert (lid, comparison, annotator, choice, strength, note) == (
        label_id, cid, "ann", "b", 2, "close call")
    assert prompt == "x" * 400 and created_at
    assert label_rows(project, []) == {}


# -- label counts -------------------------------------------------------------------------------

def test_annotator_choice_counts_busiest_first_with_zeros(project):
    cids = add_pairs(project, 5)
    for cid, choice in zip(cids, ["a", "b", "tie", "both_bad"]):
        project.set_label(cid, "ann", choice)
    project.set_label(cids[4], "bob", "skip")
    project.annotator_id("idle")
    assert annotator_choice_counts(project) == [
        {"name": "ann", "kind": "human", "labels": 4, "preference": 2, "tie": 1, "both_bad": 1,
         "skip": 0},
        {"name": "bob", "kind": "human", "labels": 1, "preference": 0, "tie": 0, "both_bad": 0,
         "skip": 1},
        {"name": "idle", "kind": "human", "labels": 0, "preference": 0, "tie": 0, "both_bad": 0,
         "skip": 0},
    ]


def test_labels_left_out_of_training_counts_both_bad_and_skip(project):
    cids = add_pairs(project, 5)
    for cid, choice in zip(cids, ["a", "both_bad", "both_bad", "skip"]):
        project.set_label(cid, "ann", choice)
    project.set_label(cids[4], "bob", "skip")
    assert labels_left_out_of_training(project) == {"both_bad": 2, "skip": 2}
    assert labels_left_out_of_training(project, []) == {"both_bad": 2, "skip": 2}
    assert labels_left_out_of_training(project, ["bob"]) == {"skip": 1}
    assert labels_left_out_of_training(project, ["nobody"]) == {}


# -- runs ---------------------------------------------------------------------------------------

def test_last_metric_values_take_each_runs_highest_step(project):
    first = start_run(project, "reward", "one", {})
    second = start_run(project, "reward", "two", {})
    start_run(project, "reward", "never logged", {})
    log_metrics(project, first, 2, {"val/accuracy": 0.8})
    log_metrics(project, first, 1, {"val/accuracy": 0.6, "train/loss": 0.5})
    log_metrics(project, second, 5, {"train/loss": 0.2})
    log_metrics(project, second, 10, {"val/accuracy": 0.7})
    assert last_metric_values(project, "val/accuracy") == {first: 0.8, second: 0.7}
    assert last_metric_values(project, "train/loss") == {first: 0.5, second: 0.2}
    assert last_metric_values(project, "missing") == {}


def test_run_artifacts_in_recorded_order_with_meta_decoded(project):
    run = start_run(project, "reward", "one", {})
    other = start_run(project, "reward", "two", {})
    add_artifact(project, run, "model", "/runs/1/model", {"method": "probe"})
    add_artifact(project, other, "model", "/runs/2/model")
    add_artifact(project, run, "evaluation", "/runs/1/result.json")
    assert run_artifacts(project, run) == [
        {"kind": "model", "path": "/runs/1/model", "meta": {"method": "probe"}},
        {"kind": "evaluation", "path": "/runs/1/result.json", "meta": None},
    ]
    assert run_artifacts(project, 999) == []
