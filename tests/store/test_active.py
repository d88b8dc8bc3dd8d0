"""Active learning orders for the label queue (issue #18): smallest margin, D-optimal, and the
queue serving an order held in memory before its default one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rmstudio.core.labeling.active import (
    d_optimal_order,
    head_direction,
    informative_order,
    margin_order,
)
from rmstudio.core.labeling.queue import next_for_annotator
from rmstudio.core.reward.features import store_vectors
from rmstudio.core.reward.instant import InstantHead
from rmstudio.core.store.project import Project
from builders import add_pairs

torch.set_num_threads(1)


def logdet(diffs, probs, lam, chosen):
    info = lam * np.eye(diffs.shape[1])
    for i in chosen:
        info += probs[i] * (1 - probs[i]) * np.outer(diffs[i], diffs[i])
    return np.linalg.slogdet(info)[1]


def test_margin_order_puts_the_smallest_margin_first():
    diffs = np.array([[2.0, 0.0], [0.1, 0.0], [-0.5, 0.0], [0.0, 3.0]])
    order, reasons = margin_order(diffs, np.array([1.0, 0.0]))
    assert order[0] == 3 and order[1] == 1  # |0| then |0.1|
    assert list(order) == [3, 1, 2, 0]
    assert reasons[1] == "smallest margin: 0.10"


def test_d_optimal_greedy_matches_brute_force_each_step():
    rng = np.random.default_rng(3)
    diffs, probs, lam = rng.normal(size=(9, 4)), rng.uniform(0.05, 0.95, 9), 0.5
    order, gains = d_optimal_order(diffs, probs, lam, k=4)
    chosen: list[int] = []
    for step in range(4):
        base = logdet(diffs, probs, lam, chosen)
        best = max((i for i in range(9) if i not in chosen),
                   key=lambda i: logdet(diffs, probs, lam, chosen + [i]))
        assert order[step] == best
        assert gains[step] == pytest.approx(logdet(diffs, probs, lam, chosen + [best]) - base, rel=1e-9)
        chosen.append(best)
    # Greedy on submodular log det: its first pick is also the best single pair of all.
    assert order[0] == max(range(9), key=lambda i: logdet(diffs, probs, lam, [i]))


def test_d_optimal_counts_what_is_already_labeled():
    # Candidate 0 repeats a labeled direction; candidate 1 is new: new information wins.
    diffs, probs = np.array([[1.0, 0.0], [0.0, 0.9]]), np.array([0.5, 0.5])
    labeled, labeled_probs = np.array([[1.0, 0.0]] * 5), np.full(5, 0.5)
    assert d_optimal_order(diffs, probs, 1.0, 1)[0][0] == 0
    assert d_optimal_order(diffs, probs, 1.0, 1, labeled, labeled_probs)[0][0] == 1


def test_d_optimal_differs_from_margin_when_it_should():
    # Two near-duplicates of the most uncertain pair: margin takes both, D-optimal takes one
    # and then a different direction (the duplicate adds little information).
    w = np.array([1.0, 0.0, 0.0])
    diffs = np.array([[0.05, 2.0, 0.0], [0.06, 2.0, 0.0], [0.3, 0.0, 2.0], [3.0, 0.0, 0.0]])
    probs = 1 / (1 + np.exp(-diffs @ w))
    by_margin, _ = margin_order(diffs, w)
    by_design, _ = d_optimal_order(diffs, probs, 1.0, 2)
    assert list(by_margin[:2]) == [0, 1]
    assert set(by_design) == {0, 2} or set(by_design) == {1, 2}


def _linear_head(weight):
    head = InstantHead(len(weight))
    with torch.no_grad():
        head.net.weight.copy_(torch.tensor([weight], dtype=torch.float32))
    return head


class FakeModel:
    feature_key = "test|features"

    def __init__(self, head):
        self.head = head


def _project_with_features(tmp_path, margins):
    """One comparison per margin; response a's feature is [margin, 0], b's is [0, 0]."""
    project = Project.create(tmp_path / "p.rmstudio")
    ids = add_pairs(project, len(margins))
    rows = [project.comparison(cid) for cid in ids]
    store_vectors(project, FakeModel.feature_key,
                  [(c.response_a_id, np.array([m, 0.0])) for c, m in zip(rows, margins)]
                  + [(c.response_b_id, np.zeros(2)) for c in rows])
    return project, ids


def test_informative_order_uses_cached_features_only(tmp_path):
    project, ids = _project_with_features(tmp_path, [2.0, 0.25, -1.0, 0.5])
    extra = add_pairs(project, 2, prompt="later {i}")  # no cached features
    model = FakeModel(_linear_head([1.0, 0.0]))
    assert head_direction(model.head).tolist() == [1.0, 0.0]
    order = informative_order(project, model, "margin")
    assert order.ids == [ids[1], ids[3], ids[2], ids[0]]
    assert order.reasons[ids[1]] == "smallest margin: 0.25"
    assert not set(extra) & set(order.ids) and order.candidates == 4
    design = informative_order(project, model, "doptimal")
    assert sorted(design.ids) == sorted(ids)
    assert design.reasons[design.ids[0]].startswith("most informative: +")
    assert informative_order(project, FakeModel(None), "margin").ids == []
    project.close()


def test_queue_serves_the_front_first_then_falls_back(tmp_path):
    project, ids = _project_with_features(tmp_path, [2.0, 0.25, -1.0, 0.5])
    assert next_for_annotator(project, "ann") == ids[0]  # default unchanged
    front = [ids[2], ids[1]]
    assert next_for_annotator(project, "ann", front=front) == ids[2]
    project.set_label(ids[2], "someone", "a")  # labeled by another: no longer served first
    assert next_for_annotator(project, "ann", front=front) == ids[1]
    project.set_label(ids[1], "ann", "skip")
    assert next_for_annotator(project, "ann", front=front) == ids[0]  # front used up: default order
    served = []
    for _ in itertools.count():
        cid = next_for_annotator(project, "ann", front=front)
        if cid is None:
            break
        served.append(cid)
        project.set_label(cid, "ann", "a")
    assert served == [ids[0], ids[3]]
    project.close()
