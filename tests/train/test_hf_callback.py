"""RecorderCallback: a transformers/TRL Trainer writes its curves into a run and obeys a cancel."""

from __future__ import annotations

import math
import re

import pytest
from tiny_models import tiny_reward_classifier

from rmstudio.core.runs.hf_callback import RecorderCallback, metric_name, recorded_logs
from rmstudio.core.runs.recorder import ProjectRecorder, RunRecorder
from rmstudio.core.runs.store import run_metrics

PAIRS = [
    ("What is the capital of France? Paris.", "What is the capital of France? The sea."),
    ("How do I boil an egg? Eight minutes in boiling water.", "How do I boil an egg? A poem."),
    ("Give me three tips for sleeping better at night.", "The quick brown fox."),
    ("Write a short poem about the sea and the wind.", "user assistant system"),
]


class FakeRecorder(RunRecorder):
    def __init__(self, stop: bool = False):
        self.calls: list[tuple[int, dict]] = []
        self.stop = stop

    def log(self, step, metrics):
        self.calls.append((step, dict(metrics)))

    def should_stop(self):
        return self.stop


class StopsAfterStep(ProjectRecorder):
    """Asks to stop once it has recorded step ``after``."""

    def __init__(self, path, after: int):
        super().__init__(path)
        self.after = after

    def should_stop(self):
        return self.step >= self.after


# -- the name mapping ------------------------------------------------------------------------

def test_log_names_follow_the_rules():
    from transformers import TrainerControl, TrainerState

    logs = {
        "loss": 0.5, "learning_rate": 1e-4, "grad_norm": 2.0, "epoch": 0.25,
        "eval_loss": 0.7, "eval_rewards/chosen": 1.5, "eval_runtime": 0.1,
        "rewards/chosen": 0.3, "completions/clipped_ratio": 0.0, "kl": 0.01,
        "train_loss": 0.45,  # the end-of-training summary must not overwrite train/loss
        "nan": float("nan"), "inf": float("inf"), "eval_ninf": float("-inf"),
        "text": "hello", "a_list": [1.0, 2.0], "flag": True, "none": None, "steps": 3,
        "step": 4,
    }
    state = TrainerState(global_step=4, max_steps=20)
    recorder = FakeRecorder()
    RecorderCallback(recorder).on_log(None, state, TrainerControl(), logs=logs)

    assert recorder.calls == [(4, {
        "train/loss": 0.5, "train/learning_rate": 1e-4, "train/grad_norm": 2.0, "train/epoch": 0.25,
        "val/loss": 0.7, "val/rewards/chosen": 1.5, "val/runtime": 0.1,
        "rewards/chosen": 0.3, "completions/clipped_ratio": 0.0, "train/kl": 0.01,
        "train/train_loss": 0.45, "train/steps": 3.0,
        "done": 4, "total": 20, "total_steps": 20, "unit": "steps",
    })]
    assert all(isinstance(v, float) for k, v in recorder.calls[0][1].items() if "/" in k)
    assert metric_name("eval_loss") == "val/loss" and metric_name("loss") == "train/loss"


def test_tensor_and_numpy_scalars_are_numbers():
    import numpy as np
    import torch

    assert recorded_logs({"a": np.float32(0.5), "b": torch.tensor(2.0), "c": torch.tensor([1.0, 2.0]),
                          "d": np.array([1.0]), "e": torch.tensor(float("nan"))}) == \
        {"train/a": 0.5, "train/b": 2.0}


def test_cancel_flags_and_progress_reports():
    from transformers import TrainerControl, TrainerState

    recorder = FakeRecorder()
    callback = RecorderCallback(recorder, every_n_steps=2)
    state = TrainerState(global_step=0, max_steps=10)
    control = TrainerControl()
    callback.on_train_begin(None, state, control)
    assert recorder.calls[-1] == (0, {"stage": "train", "done": 0, "total": 10, "total_steps": 10, "unit": "steps"})
    for step in (1, 2):
        state.global_step = step
        callback.on_step_end(None, state, control)
    assert recorder.calls[-1] == (2, {"done": 2, "total": 10, "total_steps": 10, "unit": "steps"}) and len(recorder.calls) == 2

    recorder.stop = True
    control.should_save = control.should_evaluate = control.should_log = True
    callback.on_step_end(None, state, control)
    assert control.should_training_stop and not control.should_save and not control.should_evaluate
    assert control.should_log  # the last step's loss is still recorded
    control.should_save = control.should_evaluate = True  # as DefaultFlowCallback.on_epoch_end may
    callback.on_epoch_end(None, state, control)
    assert not control.should_save and not control.should_evaluate
    assert callback.stopped


# -- a real TRL trainer ----------------------------------------------------------------------

def reward_trainer(tmp_path, callback, rows: int = 8, **overrides):
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    model, tokenizer = tiny_reward_classifier()
    pairs = [PAIRS[i % len(PAIRS)] for i in range(rows)]
    dataset = Dataset.from_dict({"chosen": [c for c, _ in pairs], "rejected": [r for _, r in pairs]})
    settings = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=2,
                    per_device_eval_batch_size=4, max_length=64, report_to=[], logging_steps=1,
                    save_strategy="no", use_cpu=True, bf16=False, dataloader_num_workers=0,
                    disable_tqdm=True, learning_rate=1e-3)
    settings.update(overrides)
    return RewardTrainer(model=model, args=RewardConfig(**settings), train_dataset=dataset,
                         eval_dataset=dataset.select(range(4)), processing_class=tokenizer,
                         callbacks=[callback])


@pytest.fixture
def project_path(tmp_path):
    from rmstudio.core.store.project import Project

    path = tmp_path / "p.rmstudio"
    Project.create(path).close()
    return path


def test_reward_trainer_curves_are_the_trainers_logs(tmp_path, project_path):
    recorder = ProjectRecorder(project_path)
    run_id = recorder.begin("test", "reward trainer", {})
    trainer = reward_trainer(tmp_path, RecorderCallback(recorder), max_steps=3,
                             eval_strategy="steps", eval_steps=2)
    try:
        trainer.train()
        series = run_metrics(recorder.project, run_id)
    finally:
        recorder.close()

    history = trainer.state.log_history
    train_logs = [e for e in history if "loss" in e]
    eval_logs = [e for e in history if "eval_loss" in e]
    assert [e["step"] for e in train_logs] == [1, 2, 3]
    assert [e["step"] for e in eval_logs] == [2, 3]  # every 2 steps, and at the end
    assert series["train/loss"] == [(e["step"], e["loss"]) for e in train_logs]
    assert series["val/loss"] == [(e["step"], e["eval_loss"]) for e in eval_logs]
    assert series["train/learning_rate"] == [(e["step"], e["learning_rate"]) for e in train_logs]
    assert series["train/epoch"][-1][0] == 3
    # every other number the trainer logged is a curve too, under its mapped name
    for entry in history:
        for key, value in entry.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                assert (entry["step"], value) in series[metric_name(key)], key
    assert any(k.startswith("val/") and k != "val/loss" for k in series)  # e.g. val/accuracy


def checkpoint_steps(folder) -> list[int]:
    return sorted(int(m.group(1)) for p in folder.glob("checkpoint-*")
                  if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)))


def test_cancel_stops_within_a_step_and_saves_nothing_after_it(tmp_path, project_path):
    recorder = StopsAfterStep(project_path, after=2)
    run_id = recorder.begin("test", "cancelled", {})
    callback = RecorderCallback(recorder)
    trainer = reward_trainer(tmp_path, callback, rows=64, max_steps=20, save_strategy="steps",
                             save_steps=1, eval_strategy="steps", eval_steps=1)
    try:
        trainer.train()
        series = run_metrics(recorder.project, run_id)
    finally:
        recorder.close()

    stopped_at = trainer.state.global_step
    assert callback.stopped and 2 <= stopped_at <= 3
    # the periodic checkpoints before the cancel are there; none for the step that saw it
    assert checkpoint_steps(tmp_path / "out") == list(range(1, stopped_at))
    # its loss is recorded, its evaluation skipped
    assert series["train/loss"][-1][0] == stopped_at
    assert [s for s, _ in series["val/loss"]] == list(range(1, stopped_at))


def test_cancel_between_accumulated_micro_batches(tmp_path, project_path):
    import torch

    recorder = FakeRecorder(stop=True)
    callback = RecorderCallback(recorder)
    trainer = reward_trainer(tmp_path, callback, max_steps=5, gradient_accumulation_steps=4,
                             per_device_train_batch_size=1, save_strategy="steps", save_steps=1)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()

    assert trainer.state.global_step == 0  # stopped after the first micro-batch, no optimizer step
    assert all(torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    assert checkpoint_steps(tmp_path / "out") == []
