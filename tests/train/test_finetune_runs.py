"""LoRA/full through the project's training entry point: evaluation, resume, and TRL using the
exported reward model as a GRPO reward function."""

import pytest
from builders import synthetic_project
from tiny_models import save_tiny_model, tiny_model_and_tokenizer

from rmstudio.core.store.project import Project
from rmstudio.core.reward.scoring import load_reward_model
from rmstudio.core.reward.train import RewardTrainConfig, runs_dir, train_reward_model
from rmstudio.core.runs.store import list_runs

FAST = {"epochs": 2, "batch_size": 8, "max_length": 64, "learning_rate": 3e-3, "eval_every_steps": 0,
        "save_every_steps": 2}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_lora_run_is_evaluated_and_its_model_scores_like_training(tmp_path, tiny_dir):
    path = synthetic_project(tmp_path, n=64)
    config = RewardTrainConfig(method="lora", base=str(tiny_dir), device="cpu", val_fraction=0.25,
                               finetune=dict(FAST))
    result = train_reward_model(path, config)
    assert result["status"] == "finished"
    evaluation = result["evaluation"]
    assert evaluation["pairs"] == result["val_pairs"] > 0
    assert evaluation["accuracy"] == pytest.approx(result["metrics"]["val/accuracy"], abs=1e-6)
    with Project.open(path) as project:
        [run] = list_runs(project, "reward")
        assert run["status"] == "finished"
        kinds = {r[0] for r in project.conn.execute("SELECT kind FROM artifacts WHERE run_id = ?", (run["id"],))}
        assert {"model", "evaluation"} <= kinds


def test_a_cancelled_fine_tune_resumes_in_its_own_run(tmp_path, tiny_dir):
    path = synthetic_project(tmp_path, n=64)

    class StopAtStep2:
        def log(self, step, metrics):
            self.step = step

        def should_stop(self):
            return getattr(self, "step", 0) >= 2

    config = RewardTrainConfig(method="full", base=str(tiny_dir), device="cpu", finetune=dict(FAST))
    first = train_reward_model(path, config, sink=StopAtStep2())
    assert first["status"] == "cancelled" and first["checkpoint"]
    folder = runs_dir(path) / f"run-{first['run_id']}"
    resumed = train_reward_model(path, RewardTrainConfig(method="full", base=str(tiny_dir), device="cpu",
                                                         finetune={**FAST, "resume": str(folder)}))
    assert resumed["status"] == "finished" and resumed["run_id"] == first["run_id"]
    assert resumed["steps"] == resumed["total_steps"]
    with Project.open(path) as project:
        assert [r["status"] for r in list_runs(project, "reward")] == ["finished"]


def test_trl_grpo_accepts_the_exported_reward_model(tmp_path, tiny_dir):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    path = synthetic_project(tmp_path, n=32)
    result = train_reward_model(path, RewardTrainConfig(method="lora", base=str(tiny_dir), device="cpu",
                                                        finetune=dict(FAST)))
    policy, tokenizer = tiny_model_and_tokenizer(seed=1)
    args = GRPOConfig(output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=4, max_steps=1, report_to=[], use_cpu=True, logging_steps=1,
                      save_strategy="no")
    trainer = GRPOTrainer(model=policy, reward_funcs=result["model_dir"], args=args,
                          train_dataset=Dataset.from_list([{"prompt": "What is the capital of France?"}] * 4),
                          processing_class=tokenizer)
    trainer.train()
    rewards = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert rewards, trainer.state.log_history
    # the same folder scores through rmstudio too
    scorer = load_reward_model(result["model_dir"], device="cpu")
    assert scorer.hf is not None


def test_cli_train_rm_lora_writes_a_transformers_folder(tmp_path, tiny_dir, capsys):
    from transformers import AutoModelForSequenceClassification

    from rmstudio.cli import main

    path = synthetic_project(tmp_path, n=32)
    out = tmp_path / "rm"
    code = main(["train-rm", str(path), "--method", "lora", "--base", str(tiny_dir), "--device", "cpu",
                 "--epochs", "1", "--batch-size", "8", "--max-length", "64", "--out", str(out),
                 "--export-last", "--distill", "0.5"])
    assert code == 0, capsys.readouterr()
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 1
    card = (out / "README.md").read_text()
    assert card.count("accuracy") >= 1 and '"keep_best": false' in card and '"distill_weight": 0.5' in card


def test_cli_refuses_bad_settings_and_test_files_before_any_run(tmp_path, tiny_dir, capsys):
    """A bad fine-tune setting, a test file that is not there or holds no pairs: each is named
    in the message and refused before a run is recorded (no feature pass, no teacher, no run)."""
    from rmstudio.cli import main

    path = synthetic_project(tmp_path, n=16)
    start = ["train-rm", str(path), "--method", "full", "--base", str(tiny_dir), "--device", "cpu"]
    assert main(start + ["--distill", "2"]) == 2
    assert "distill_weight must be a number from 0 to 1, got 2" in capsys.readouterr().err
    assert main(start + ["--test-file", str(tmp_path / "nowhere.jsonl")]) == 1
    assert "nowhere.jsonl" in capsys.readouterr().err
    empty = tmp_path / "unlabeled.jsonl"
    empty.write_text('{"prompt": "just a prompt?"}\n')
    assert main(start + ["--test-file", str(empty)]) == 2
    assert "holds no labeled pairs" in capsys.readouterr().err
    assert main(start + ["--watch-test"]) == 2
    assert "--watch-test needs --test-file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown fine-tune setting 'learnin_rate'"):
        RewardTrainConfig(method="lora", finetune={"learnin_rate": 1e-4})
    with Project.open(path) as project:
        assert list_runs(project) == []


def test_batched_pair_scoring_matches_one_by_one(tmp_path, tiny_dir):
    from rmstudio.core.reward.data import snapshot_pairs

    path = synthetic_project(tmp_path, n=20)
    result = train_reward_model(path, RewardTrainConfig(method="full", base=str(tiny_dir), device="cpu",
                                                        finetune={**FAST, "epochs": 1}))
    scorer = load_reward_model(result["model_dir"], device="cpu")
    with Project.open(path) as project:
        pairs = snapshot_pairs(project)[:7]
    r_c, r_r = scorer.score_pairs(pairs, batch_pairs=3)
    for pair, c, r in zip(pairs, r_c, r_r):
        one = scorer.score(pair.prompt, [pair.chosen, pair.rejected])
        assert abs(one[0] - c) < 1e-4 and abs(one[1] - r) < 1e-4


class _Sink:
    def __init__(self, stop: bool):
        self.stop = stop

    def log(self, step, metrics):
        pass

    def should_stop(self):
        return self.stop


def test_distillation_fits_an_instant_teacher_from_cached_features(tmp_path, tiny_dir):
    from rmstudio.core.reward.data import snapshot_pairs, split_by_prompt
    from rmstudio.core.reward.instant_run import with_instant_teacher as _with_instant_teacher

    path = synthetic_project(tmp_path, n=48)
    config = RewardTrainConfig(method="lora", base=str(tiny_dir), device="cpu", val_fraction=0.25,
                               finetune=dict(FAST, distill_weight=0.5))
    result = train_reward_model(path, config)
    assert result["status"] == "finished" and result["evaluation"]["pairs"] > 0 and result["distilled"]
    assert "distilled from rmstudio's instant reward model" in (runs_dir(path) / f"run-{result['run_id']}" / "model" /
                                                                "README.md").read_text()
    with Project.open(path) as project:
        cached = project.conn.execute("SELECT COUNT(*) FROM feature_cache").fetchone()[0]
        assert cached > 0  # the teacher's features stay for the next run (instant or distilled)
        logged = {r[0] for r in project.conn.execute("SELECT key FROM run_metrics")}
        assert "teacher/val_accuracy" in logged
        train, val = split_by_prompt(snapshot_pairs(project))
        assert _with_instant_teacher(project, config, train, val, _Sink(stop=True)) is None
        taught = _with_instant_teacher(project, config, train, val, _Sink(stop=False))
    assert len(taught) == len(train) and all(0 < p.teacher < 1 for p in taught)
    assert [p.target for p in taught] == [p.target for p in train]
