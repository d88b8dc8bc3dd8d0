"""Diagnostics of a reward model on a labeled set: every figure checked against a hand count."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builders import synthetic_project
from tiny_models import save_tiny_model

from rmstudio.core.data.records import Text
from rmstudio.core.errors import RmstudioError
from rmstudio.core.reward.data import TrainingPair
from rmstudio.core.reward.diagnostics import (
    DiagnosisCancelled, diagnose, file_pairs, project_pairs, wilson_interval,
)


def _pair(cid, chosen, rejected, annotator="ann", target=1.0, prompt="p"):
    return TrainingPair(comparison_id=cid, prompt_id=cid, prompt=Text(f"{prompt} {cid}"),
                        chosen_id=2 * cid, chosen=Text(chosen), rejected_id=2 * cid + 1,
                        rejected=Text(rejected), target=target, annotator=annotator)


class ConstructedScorer:
    """Rewards given by hand, per comparison: (r_chosen, r_rejected)."""

    def __init__(self, rewards: dict[int, tuple[float, float]]):
        self.rewards = rewards
        self.calls = 0

    def score_pairs(self, pairs, sink=None):
        self.calls += len(pairs)
        return (np.array([self.rewards[p.comparison_id][0] for p in pairs]),
                np.array([self.rewards[p.comparison_id][1] for p in pairs]))


def _hand_pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def _hand_ranks(x):
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


PAIRS = [
    _pair(1, "long chosen answer", "no", "ann"),         # right, margin 2
    _pair(2, "ok", "a rejected one, longer", "ann"),       # wrong, margin -3 (most confident)
    _pair(3, "yes yes", "no no no", "bob"),                # wrong, margin -0.5
    _pair(4, "fine", "bad", "bob"),                        # right
    _pair(5, "same", "same!", "cy"),                       # wrong, margin -1
    _pair(6, "tie a", "tie b", "cy", target=0.5),          # a tie: left out
    _pair(1, "long chosen answer", "no", "bob"),          # bob agrees with ann on pair 1
]
REWARDS = {1: (1.0, -1.0), 2: (-2.0, 1.0), 3: (0.25, 0.75), 4: (0.5, 0.0), 5: (0.0, 1.0), 6: (0.0, 0.0)}


def test_every_figure_matches_a_hand_count():
    scorer = ConstructedScorer(REWARDS)
    d = diagnose(scorer, PAIRS)
    assert scorer.calls == 5  # the tie is not scored, pair 1 once though two annotators labeled it
    assert d.ties_left_out == 1 and len(d.rows) == 5
    assert d.rows[0].annotators == ("ann", "bob")
    assert d.accuracy == pytest.approx(2 / 5)
    assert d.length_unit == "characters" and d.rows[0].len_chosen == len("long chosen answer")

    # Disagreements: exactly the mis-ranked rows, the most confident first.
    assert [r.comparison_id for r in d.disagreements] == [2, 5, 3]
    assert [r.p_chosen for r in d.disagreements] == sorted(r.p_chosen for r in d.disagreements)
    assert d.disagreements[0].p_chosen == pytest.approx(1 / (1 + math.exp(3)))

    # Accuracy by annotator: ann 1 of 2, bob 2 of 3 (pairs 1, 3, 4), cy 0 of 1.
    by = {a.name: a for a in d.by_annotator}
    assert (by["ann"].pairs, by["ann"].correct) == (2, 1)
    assert (by["bob"].pairs, by["bob"].correct, by["bob"].accuracy) == (3, 2, pytest.approx(2 / 3))
    assert (by["cy"].pairs, by["cy"].correct) == (1, 0)
    assert by["bob"].low < 2 / 3 < by["bob"].high and by["cy"].low == 0.0

    # Histograms count every scored pair once, chosen and rejected apart.
    assert sum(d.histogram_chosen) == sum(d.histogram_rejected) == 5
    assert len(d.histogram_edges) == len(d.histogram_chosen) + 1
    assert sum(b["count"] for b in d.reliability) == 5

    # Correlation over the 10 distinct responses, as computed by hand.
    rewards, lengths = [], []
    for p in PAIRS[:5]:
        rewards += list(REWARDS[p.comparison_id])
        lengths += [len(p.chosen.text), len(p.rejected.text)]
    assert d.correlation_n == 10
    assert d.pearson == pytest.approx(_hand_pearson(rewards, lengths))
    assert d.spearman == pytest.approx(_hand_pearson(_hand_ranks(rewards), _hand_ranks(lengths)))

    out = d.to_json()
    assert out["disagreements"][0]["comparison_id"] == 2 and "p_chosen" in out["rows"][0]


def test_average_ranks_share_ties_like_the_slow_count():
    from rmstudio.core.reward.diagnostics import average_ranks
    from rmstudio.core.reward.evaluate import _ranks

    values = np.random.default_rng(1).integers(0, 12, 300).astype(float)
    assert average_ranks(values) == pytest.approx(_ranks(values))
    few = [3.0, 1.0, 3.0, 2.0]
    assert list(average_ranks(few)) == _hand_ranks(few) == [2.5, 0.0, 2.5, 1.0]


def test_wilson_interval_matches_the_formula():
    low, high = wilson_interval(8, 10)
    z = 1.959963984540054
    centre = (0.8 + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(0.8 * 0.2 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (low, high) == (pytest.approx(centre - half), pytest.approx(centre + half))
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0


def test_a_cancel_gives_no_result_and_an_empty_set_gives_no_figures():
    class Stopped:
        def log(self, step, metrics):
            pass

        def should_stop(self):
            return True

    with pytest.raises(DiagnosisCancelled):
        diagnose(ConstructedScorer(REWARDS), PAIRS, Stopped())
    empty = diagnose(ConstructedScorer(REWARDS), [PAIRS[5]])
    assert empty.rows == [] and empty.accuracy is None and empty.ties_left_out == 1


def test_a_runs_validation_split_and_a_file_with_a_real_model(tmp_path):
    from rmstudio.core.reward.scoring import load_reward_model
    from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model
    from rmstudio.core.store.project import Project

    base = save_tiny_model(tmp_path / "tiny")
    path = synthetic_project(tmp_path, n=40)
    result = train_reward_model(path, RewardTrainConfig(method="instant", base=str(base), val_fraction=0.3,
                                                        seed=5, cross_validation="off"))
    scorer = load_reward_model(result["model_dir"], device="cpu")
    with Project.open(path) as project:
        every = project_pairs(project)
        val = project_pairs(project, result["run_id"])
        with pytest.raises(RmstudioError, match="no reward run #99"):
            project_pairs(project, 99)
    assert len(every) == 40 and 0 < len(val) < 40
    d = diagnose(scorer, val)
    # The run's own evaluation of its validation split, reproduced from the recorded seed/share.
    assert len(d.rows) == result["evaluation"]["pairs"]
    assert d.accuracy == pytest.approx(result["evaluation"]["accuracy"])

    data = tmp_path / "held.jsonl"
    data.write_text('{"prompt": "q?", "chosen": "Paris Paris", "rejected": "dog fox"}\n'
                    '{"prompt": "r?", "chosen": "capital Paris", "rejected": "night"}\n')
    from_file = diagnose(scorer, file_pairs(data))
    assert len(from_file.rows) == 2 and all(r.comparison_id < 0 for r in from_file.rows)
    (tmp_path / "empty.jsonl").write_text('{"prompt": "q?", "response": "only one"}\n')
    with pytest.raises(RmstudioError):
        file_pairs(tmp_path / "empty.jsonl")
