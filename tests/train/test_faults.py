"""Training faults on tiny random Llamas: a NaN loss, out of memory, a cancel during validation or
the final evaluation. (A run killed with its process: tests/train/test_interrupted_runs.py.)"""

from __future__ import annotations

import json

import pytest
import torch
from test_finetune import RecordingSink, config, make_pairs

import tiny_models
from rmstudio.core.reward import finetune, finetune_steps
from rmstudio.core.reward.finetune import FinetuneError, list_checkpoints, oom_message, train_finetune


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return str(tiny_models.save_tiny_model(tmp_path_factory.mktemp("tiny")))


def _training_calls(monkeypatch, effect):
    """Wrap pair_rewards: ``effect(n, rewards)`` sees the n-th training forward pass (gradients
    on); validation, the probe and the export run without gradients and pass through."""
    real = finetune.pair_rewards
    calls = {"train": 0, "eval": 0}

    def wrapped(model, batch, *args, **kwargs):
        if not torch.is_grad_enabled():
            calls["eval"] += 1
            return real(model, batch, *args, **kwargs)
        calls["train"] += 1
        return effect(calls["train"], real(model, batch, *args, **kwargs))

    _patch_pair_rewards(monkeypatch, wrapped)
    return calls


def _patch_pair_rewards(monkeypatch, replacement):
    """The training step calls pair_rewards from finetune, validation from finetune_steps."""
    monkeypatch.setattr(finetune, "pair_rewards", replacement)
    monkeypatch.setattr(finetune_steps, "pair_rewards", replacement)


def test_a_nan_loss_stops_the_run_at_once_and_exports_the_best_weights(base_dir, tmp_path, monkeypatch):
    """The 5th step's loss is NaN: the run stops there with a one-line error naming the step and a
    lower learning rate; the exported model is the best validated step's (finite), and the last
    checkpoint (step 4) is kept for a resume."""
    def poison(n, rewards):
        rc, rr = rewards
        return (rc * float("nan"), rr) if n >= 5 else (rc, rr)

    calls = _training_calls(monkeypatch, poison)
    sink = RecordingSink()
    val = make_pairs(16, seed=1)
    cfg = config(method="lora", learning_rate=1e-2, eval_every_steps=2, save_every_steps=2)
    with pytest.raises(FinetuneError, match=r"^the training loss became NaN at step 5; try a lower "
                                            r"learning rate than 0\.01 \(e\.g\. 0\.001\)") as caught:
        train_finetune(base_dir, make_pairs(64), val, cfg, tmp_path, sink)
    message = str(caught.value)
    assert "\n" not in message
    assert calls["train"] == 5  # at once: no forward pass after the NaN one
    assert max(step for step, m in sink.logs if "train/loss" in m) == 4
    kept = caught.value.result
    assert kept["checkpoint"].endswith("step-4") and "continues from step-4" in message
    best = json.loads((tmp_path / "best" / "meta.json").read_text())
    assert kept["best_step"] == best["step"] and f"step {best['step']}" in message
    assert kept["model_dir"] == str(tmp_path / "model") and kept["model_dir"] in message

    from transformers import AutoModelForSequenceClassification

    exported = AutoModelForSequenceClassification.from_pretrained(kept["model_dir"])
    assert all(torch.isfinite(p).all() for p in exported.parameters())
    from test_finetune import _val_loss_of_export

    monkeypatch.undo()
    assert _val_loss_of_export(kept["model_dir"], val) == pytest.approx(best["val"]["loss"], abs=1e-3)
    for checkpoint in list_checkpoints(tmp_path):
        from safetensors.torch import load_file

        assert all(torch.isfinite(t).all() for t in load_file(str(checkpoint / "trainable.safetensors")).values())


def test_a_nan_run_is_failed_in_the_project_with_its_message_and_kept_model(tmp_path, monkeypatch):
    from builders import synthetic_project

    from rmstudio.core.store.project import Project
    from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model
    from rmstudio.core.runs.store import list_runs

    tiny = tiny_models.save_tiny_model(tmp_path / "tiny")
    path = synthetic_project(tmp_path, n=64)
    _training_calls(monkeypatch, lambda n, r: (r[0] * float("nan"), r[1]) if n >= 3 else r)
    settings = {"epochs": 2, "batch_size": 8, "max_length": 64, "learning_rate": 3e-3, "eval_every_steps": 1,
                "save_every_steps": 2, "distill_weight": 0.0}
    with pytest.raises(FinetuneError, match="loss became NaN at step 3"):
        train_reward_model(path, RewardTrainConfig(method="lora", base=str(tiny), device="cpu", finetune=settings))
    with Project.open(path) as project:
        [run] = list_runs(project, "reward")
        assert run["status"] == "failed"
        assert run["error"].splitlines()[0].startswith("the training loss became NaN at step 3; try a lower")
        kinds = {r[0] for r in project.conn.execute("SELECT kind FROM artifacts WHERE run_id = ?", (run["id"],))}
        assert kinds == {"model", "checkpoint"}


@pytest.mark.parametrize("where", ["train", "validation"])
def test_out_of_memory_says_so_and_names_a_smaller_batch(base_dir, tmp_path, monkeypatch, where):
    real = finetune.pair_rewards

    def oom(model, batch, *args, **kwargs):
        if torch.is_grad_enabled() == (where == "train"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, batch, *args, **kwargs)

    _patch_pair_rewards(monkeypatch, oom)
    step = " at step 1" if where == "train" else ""
    with pytest.raises(FinetuneError, match=rf"^out of memory{step} \(batch_size=8, max_length=32\); "
                                            r"try batch_size=4 with grad_accum=2 to keep about 8 pairs a step"):
        train_finetune(base_dir, make_pairs(32), make_pairs(8, seed=1), config(eval_every_steps=0), tmp_path,
                       RecordingSink())


def test_out_of_memory_with_a_batch_of_one_names_a_shorter_length():
    assert oom_message(config(batch_size=1, max_length=512)).endswith("try max_length=256")
    assert "try batch_size=3 with grad_accum=6" in oom_message(config(batch_size=6, grad_accum=3))


def test_a_cancel_during_validation_stops_it_within_one_batch(base_dir, tmp_path, monkeypatch):
    """64 validation pairs in batches of 4 are 16 forward passes; a cancel asked during the first
    one stops the run before the second, and the run resumes from its checkpoint."""
    class StopInValidation(RecordingSink):
        def should_stop(self):
            return calls["eval"] > 0

    calls = _training_calls(monkeypatch, lambda n, rewards: rewards)
    train, val = make_pairs(48), make_pairs(64, seed=1)
    cfg = config(method="lora", batch_size=2, learning_rate=1e-2, eval_every_steps=2, save_every_steps=0,
                 epochs=1)
    result = train_finetune(base_dir, train, val, cfg, tmp_path, StopInValidation())
    assert result["status"] == "cancelled" and result["steps"] == 2
    assert calls["eval"] == 1
    assert result["checkpoint"].endswith("step-2")
    monkeypatch.undo()
    resumed = train_finetune(base_dir, train, val, cfg, tmp_path, RecordingSink(), resume=True)
    assert resumed["status"] == "finished" and resumed["steps"] == resumed["total_steps"] == 24


def test_a_cancel_during_the_final_evaluation_skips_it(tmp_path, monkeypatch):
    """The model is exported, then validation is scored through it: a cancel there stops the
    scoring at the next batch and reports the evaluation as skipped, not as a partial one."""
    from builders import synthetic_project

    from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model

    class StopAtEvaluation:
        stop = False

        def log(self, step, metrics):
            self.stop = self.stop or metrics.get("stage") == "evaluate"

        def should_stop(self):
            return self.stop

    tiny = tiny_models.save_tiny_model(tmp_path / "tiny")
    path = synthetic_project(tmp_path, n=64)
    scored = []
    real = finetune.score_texts
    monkeypatch.setattr(finetune, "score_texts", lambda *a, **k: scored.append(1) or real(*a, **k))
    settings = {"epochs": 1, "batch_size": 8, "max_length": 64, "eval_every_steps": 0, "save_every_steps": 0,
                "distill_weight": 0.0, "head_init": "random"}
    result = train_reward_model(path, RewardTrainConfig(method="lora", base=str(tiny), device="cpu",
                                                        val_fraction=0.5, finetune=settings),
                                sink=StopAtEvaluation())
    assert result["status"] == "finished" and result["model_dir"]
    assert result["evaluation"] == {} and result["evaluation_skipped"] == "cancelled"
    assert scored == []


def test_scoring_pairs_stops_at_the_next_batch_when_asked(tmp_path):
    from rmstudio.core.reward.scoring import load_reward_model

    class StopAfterFirstBatch:
        done = 0

        def log(self, step, metrics):
            self.done = step

        def should_stop(self):
            return self.done > 0

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = tiny_models.save_tiny_model(tmp_path / "tiny")
    AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1).save_pretrained(tmp_path / "rm")
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp_path / "rm")
    scorer = load_reward_model(tmp_path / "rm", device="cpu")
    chosen, rejected = scorer.score_pairs(make_pairs(20), StopAfterFirstBatch(), batch_pairs=4)
    assert len(chosen) == len(rejected) == 4
