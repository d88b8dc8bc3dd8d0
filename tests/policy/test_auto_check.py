"""check_reward="auto": a check fitted on the labels the optimised reward did not train on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import synthetic_project
from policy_helpers import GRPO, run, save_policy_model

from rmstudio.core.policy.auto_check import (CHECK_FILE, MIN_CHECK_PAIRS, AutoCheckError, fit_auto_check,
                                             unseen_pairs)
from rmstudio.core.policy.config import PolicyConfig
from rmstudio.core.reward.data import snapshot_pairs, split_by_prompt
from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model
from rmstudio.core.store.project import Project


@pytest.fixture(scope="module")
def rewarded(tmp_path_factory):
    """A 100-label project, a tiny backbone and an instant reward run holding out 35% (over 30
    validation pairs: a smaller split may be cross-validated, and its head then sees every pair)."""
    tmp = tmp_path_factory.mktemp("auto_check")
    path = synthetic_project(tmp, n=100)
    base = save_policy_model(tmp / "base")
    trained = train_reward_model(path, RewardTrainConfig(method="instant", base=str(base), val_fraction=0.35,
                                                         seed=2, device="cpu"))
    return path, base, trained["model_dir"]


def test_the_check_uses_exactly_the_labels_the_reward_did_not_train_on(rewarded):
    path, _, reward_dir = rewarded
    with Project.open(path) as project:
        pairs, record = unseen_pairs(project, reward_dir)
        val = split_by_prompt(snapshot_pairs(project), 0.35, 2)[1]
        assert [p.comparison_id for p in pairs] == [p.comparison_id for p in val]
        assert record["comparison_ids"] == sorted(p.comparison_id for p in val)
        assert record["labels"] == "validation"
        # a function reward trained on no label: every labeled pair may fit the check
        everything, record = unseen_pairs(project, "policy_helpers:even_share")
        assert len(everything) == 100 and record["labels"] == "all"


def test_a_reward_that_saw_every_label_or_an_unknown_folder_is_refused_in_one_line(rewarded, tmp_path):
    path, base, _ = rewarded
    everything = RewardTrainConfig(method="instant", base=str(base), val_fraction=0.0, device="cpu")
    all_labels = train_reward_model(path, everything)["model_dir"]
    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    with Project.open(path) as project:
        with pytest.raises(AutoCheckError, match="trained on every label") as err:
            unseen_pairs(project, all_labels)
        assert "\n" not in str(err.value)
        with pytest.raises(AutoCheckError, match="cannot tell which labels"):
            unseen_pairs(project, str(foreign))
    small = synthetic_project(tmp_path, n=MIN_CHECK_PAIRS - 1, name="small")
    with Project.open(small) as project, pytest.raises(AutoCheckError, match=f"only {MIN_CHECK_PAIRS - 1} "):
        unseen_pairs(project, "policy_helpers:even_share")


def test_a_grpo_run_with_an_automatic_check_guards_with_it(rewarded, tmp_path):
    from rmstudio.core.policy.rewards import reward_function

    path, base, reward_dir = rewarded
    config = PolicyConfig(policy=str(base), max_steps=1, save_steps=100, held_out_fraction=0.25,
                          check_reward="auto", guard_every=1, **{**GRPO, "per_device_batch": 8})
    result, metrics, [record], _ = run(path, config)
    assert result["status"] == "finished"
    check = result["auto_check"]
    assert check["labels"] == "all" and check["pairs"] == 100 and len(check["comparison_ids"]) == 100
    folder = Path(result["model_dir"]).parent / "check_model"
    assert json.loads((folder / CHECK_FILE).read_text())["pairs"] == 100
    assert len(result["guard"]["history"]) == 2 and "guard/check" in metrics
    # the saved check is a reward model like any other, and a second fit reuses it
    check_fn = reward_function(str(folder), "cpu")
    scored = check_fn(["question 1: a?"] * 2, ["x Paris Paris capital", "x dog fox night"])
    assert scored[0] > scored[1]
    again = fit_auto_check(path, reward_dir, str(base), folder.parent)[1]
    assert again == json.loads((folder / CHECK_FILE).read_text())
