"""The reward models a project offers to Score and Optimize."""

import shutil

from builders import synthetic_project
from tiny_models import save_tiny_model

from rmstudio.core.reward.catalog import reward_models
from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model
from rmstudio.core.store.project import Project


def test_finished_runs_with_a_model_folder_are_offered_newest_first(tmp_path):
    base = save_tiny_model(tmp_path / "tiny")
    path = synthetic_project(tmp_path, n=60)
    first = train_reward_model(path, RewardTrainConfig(method="instant", base=str(base), val_fraction=0.25))
    second = train_reward_model(path, RewardTrainConfig(method="instant", base=str(base), val_fraction=0.25,
                                                        seed=3))
    with Project.open(path) as project:
        entries = reward_models(project)
        assert [e.run_id for e in entries] == [second["run_id"], first["run_id"]]
        newest = entries[0]
        assert newest.method == "instant" and newest.path == second["model_dir"]
        assert newest.val_accuracy == second["metrics"]["val/accuracy"]
        assert len(newest.rewards_chosen) == len(newest.rewards_rejected) == second["evaluation"]["pairs"] > 0
        assert f"Run #{newest.run_id}: instant" in newest.title

        # A folder deleted by hand is not offered; a damaged result only loses the figures.
        shutil.rmtree(first["model_dir"])
        from rmstudio.core.runs.store import run_artifacts

        [evaluation] = [a["path"] for a in run_artifacts(project, second["run_id"]) if a["kind"] == "evaluation"]
        with open(evaluation, "w") as f:
            f.write("{not json")
        [only] = reward_models(project)
        assert only.run_id == second["run_id"] and only.val_accuracy is None and only.rewards_chosen == []
