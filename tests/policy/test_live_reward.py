"""The live instant model as a run's reward: a snapshot taken at the start, moved into the run
folder, with the labels it trained on recorded (so an automatic check fits on the others)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import synthetic_project
from policy_helpers import GRPO, run, save_policy_model

from rmstudio.core.errors import RmstudioError
from rmstudio.core.policy.auto_check import TRAINED_ON_FILE, unseen_pairs
from rmstudio.core.policy.config import PolicyConfig
from rmstudio.core.policy.live_reward import (LIVE, REWARD_DIR, SNAPSHOTS, live_title, reward_for_run,
                                              snapshot_live_model)
from rmstudio.core.policy.run import check_can_run
from rmstudio.core.reward.data import snapshot_pairs, split_by_prompt
from rmstudio.core.reward.live import LiveInstantModel
from rmstudio.core.store.project import Project

# 160 labels: the live model's 20% share is over 30 validation pairs, so it holds them out
# rather than cross-validating (whose final head would see every pair)
LABELS = 160


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live_reward")
    return synthetic_project(tmp, n=LABELS), save_policy_model(tmp / "base")


def test_a_snapshot_of_the_live_model_moves_into_the_run_and_records_its_labels(labeled, tmp_path):
    path, base = labeled
    live = LiveInstantModel(base=str(base), device="cpu")
    with pytest.raises(RmstudioError, match="not been fitted"):
        snapshot_live_model(live, path)
    status = live.refresh(path)
    staged = snapshot_live_model(live, path)
    assert staged.parent.name == SNAPSHOTS
    record = json.loads((staged / TRAINED_ON_FILE).read_text())
    assert record["labels"] == LABELS and record["val_fraction"] == 0.2
    assert record["source"] == live_title(LABELS, status.at) and "fitted" in record["source"]
    run_folder = tmp_path / "run-9"
    moved = reward_for_run(path, str(staged), str(base), run_folder)
    assert moved == str(run_folder / REWARD_DIR) and not staged.exists()
    assert reward_for_run(path, "policy_helpers:even_share", str(base), run_folder) is None
    # resumed: the run keeps the snapshot of its first start, and a newer staged one is dropped
    again = snapshot_live_model(live, path)
    assert reward_for_run(path, str(again), str(base), run_folder) == moved and not again.exists()
    # the labels it did not train on are its own validation prompts' pairs
    with Project.open(path) as project:
        pairs, why = unseen_pairs(project, moved)
        val = split_by_prompt(snapshot_pairs(project), 0.2, 0)[1]
    assert [p.comparison_id for p in pairs] == [p.comparison_id for p in val]
    assert why["labels"] == "validation"


def test_reward_live_fits_in_the_run_and_an_automatic_check_uses_the_other_labels(labeled, tmp_path):
    from rmstudio.core.models.generation import GenerationConfig
    from rmstudio.core.policy.compare import compare_policies

    path, base = labeled
    config = PolicyConfig(policy=str(base), check_reward="auto", guard_every=1, max_steps=1, save_steps=100,
                          held_out_fraction=0.1, **{**GRPO, "reward": LIVE, "per_device_batch": 8})
    check_can_run(path, config)
    result, _, _, _ = run(path, config)
    assert result["status"] == "finished"
    folder = Path(result["model_dir"]).parent
    assert result["reward"] == str(folder / REWARD_DIR)
    assert json.loads((folder / REWARD_DIR / TRAINED_ON_FILE).read_text())["val_fraction"] == 0.2
    assert result["auto_check"]["labels"] == "validation" and result["auto_check"]["pairs"] < LABELS
    assert len(result["guard"]["history"]) == 2
    # the comparison scores with the snapshot the run optimised
    comparison = compare_policies(path, result["run_id"], n_prompts=2, device="cpu",
                                  sampling=GenerationConfig(max_new_tokens=4, temperature=1.0))
    assert comparison.reward_spec == str(folder / REWARD_DIR)


def test_reward_live_needs_labels(tmp_path, policy_model):
    path = synthetic_project(tmp_path, n=3)
    with pytest.raises(RmstudioError, match="needs 8") as err:
        check_can_run(path, PolicyConfig(policy=str(policy_model), **{**GRPO, "reward": LIVE}))
    assert "\n" not in str(err.value)
