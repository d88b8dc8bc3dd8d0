"""The policy run kind end to end on a tiny random model (CPU, one thread): GRPO learns a synthetic
reward with the KL term logged, DPO learns the labels, a cancel stops at a step and a resume
continues from the checkpoint, RLOO runs, and the result exports to a plain HF folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import synthetic_project
from policy_helpers import GRPO, run, save_policy_model

from rmstudio.core.errors import RmstudioError
from rmstudio.core.policy.config import PolicyConfig
from rmstudio.core.policy.export import export_policy
from rmstudio.core.policy.kind import POLICY
from rmstudio.core.policy.run import LENGTH_WARNING
from rmstudio.core.runs.launch import start
from rmstudio.core.runs.recorder import ProjectRecorder
from rmstudio.core.runs.store import list_runs


def mean(values):
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory):
    """One GRPO run (40 steps) shared by the tests that read it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("grpo")
    project_path = synthetic_project(tmp, n=40)
    config = PolicyConfig(policy=str(save_policy_model(tmp / "policy")), learning_rate=2e-2, max_steps=40,
                          save_steps=20, seed=0, **GRPO)
    try:
        yield (project_path, *run(project_path, config))
    finally:
        torch.set_num_threads(threads)


def test_grpo_raises_a_learnable_reward_with_the_kl_logged(grpo_run):
    project_path, result, metrics, [record], artifacts = grpo_run
    assert result["status"] == "finished" and result["steps"] == 40 and record["status"] == "finished"
    rewards = [v for _, v in metrics["train/reward"]]
    assert [s for s, _ in metrics["train/reward"]] == list(range(1, 41))
    assert mean(rewards[-10:]) > mean(rewards[:10]) + 0.05, rewards
    kl = [v for _, v in metrics["train/kl"]]
    assert len(kl) == 40 and min(kl) >= 0 and max(kl) > 0  # beta > 0: the KL to the start is a curve
    assert "rewards/even_share/mean" in metrics and "train/loss" in metrics
    # the kind's plots find their curves
    assert {"train/reward", "train/kl", "completions/mean_length", "completions/clipped_ratio",
            "train/loss"} <= set(metrics)
    # the run's files
    run_dir = Path(project_path).with_name("syn.runs") / f"run-{record['id']}"
    kinds = {a["kind"]: a for a in artifacts}
    assert Path(kinds["model"]["path"]) == run_dir / "model"
    assert (run_dir / "model" / "adapter_config.json").is_file()  # LoRA: the adapter alone
    assert Path(kinds["checkpoint"]["path"]).name == "checkpoint-40"
    assert kinds["checkpoint"]["meta"] == {"step": 40}
    assert json.loads((run_dir / "result.json").read_text())["metrics"]["train/reward"] == rewards[-1]
    held = [json.loads(line) for line in (run_dir / "held_out.jsonl").read_text().splitlines()]
    assert len(held) == result["held_out_items"] and result["train_items"] + len(held) == 40


def test_completions_cut_at_the_limit_raise_the_length_warning(grpo_run):
    _, result, metrics, _, _ = grpo_run
    # a random model almost never says end-of-turn within 8 tokens: nearly all are clipped
    assert mean([v for _, v in metrics["completions/clipped_ratio"]]) > 0.5
    assert metrics["policy/length_warning"][-1][1] == 1.0
    assert 0.5 < metrics["policy/clipped_recent"][-1][1] <= 1
    assert result["warning"] == LENGTH_WARNING


def test_the_export_is_a_plain_model_that_generates(grpo_run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    project_path, result, *_ = grpo_run
    out = export_policy(Path(result["model_dir"]).parent, tmp_path / "export")
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert not (out / "adapter_config.json").exists()
    card = (out / "README.md").read_text()
    assert "grpo" in card and "train/reward" in card and "40 steps" in card
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer("question 1: the sea?", return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**ids, max_new_tokens=5, do_sample=False,
                                   pad_token_id=tokenizer.pad_token_id)
    assert generated.shape[1] > ids["input_ids"].shape[1]
    # the merge is the trained policy, not the base: greedy logits differ from the untouched model
    base = AutoModelForCausalLM.from_pretrained(json.loads((Path(result["model_dir"]).parent / "policy.json")
                                                           .read_text())["base"])
    with torch.no_grad():
        assert not torch.allclose(model(**ids).logits, base(**ids).logits)


def test_dpo_learns_the_labeled_preference(tmp_path, policy_model):
    project_path = synthetic_project(tmp_path, n=40)
    config = PolicyConfig(method="dpo", policy=str(policy_model), lora_rank=8, lora_alpha=16,
                          per_device_batch=8, learning_rate=1e-2, max_steps=15, save_steps=100,
                          held_out_fraction=0.2, device="cpu")
    result, metrics, [record], artifacts = run(project_path, config)
    assert result["status"] == "finished" and record["status"] == "finished"
    accuracy = [v for _, v in metrics["rewards/accuracies"]]
    margins = [v for _, v in metrics["rewards/margins"]]
    assert mean(accuracy[-5:]) > mean(accuracy[:3]) and mean(accuracy[-5:]) >= 0.9
    assert mean(margins[-5:]) > mean(margins[:3]) + 0.2
    # the held-out pairs, never trained on, are evaluated at the end
    assert result["held_out_items"] > 0 and metrics["val/rewards/accuracies"][-1][1] >= 0.5
    assert {a["kind"] for a in artifacts} >= {"model", "evaluation"}


class StopsAfterStep(ProjectRecorder):
    def __init__(self, path, after: int):
        super().__init__(path)
        self.after = after

    def should_stop(self):
        return self.step >= self.after


def test_a_cancel_stops_early_and_resume_continues_from_the_checkpoint(tmp_path, policy_model):
    project_path = synthetic_project(tmp_path, n=20)
    config = PolicyConfig(policy=str(policy_model), learning_rate=1e-2, max_steps=6, save_steps=2,
                          **{**GRPO, "per_device_batch": 8})
    result, metrics, [record], _ = run(project_path, config, StopsAfterStep(project_path, after=3))
    assert result["status"] == "cancelled" and record["status"] == "cancelled"
    assert 3 <= result["steps"] < 6 and result["model_dir"] == ""
    assert Path(result["checkpoint"]).name == "checkpoint-2"  # no save at the cancelled step

    resumed = PolicyConfig(**{**config.__dict__, "resume": True})
    result, metrics, [record], _ = run(project_path, resumed)
    assert record["status"] == "finished" and result["status"] == "finished"  # the same run, claimed again
    assert Path(result["resumed_from"]).name == "checkpoint-2" and result["steps"] == 6
    assert [s for s, _ in metrics["train/loss"]] == list(range(1, 7))
    assert Path(result["model_dir"]).is_dir()


def test_rloo_runs_with_the_kl_logged(tmp_path, policy_model):
    project_path = synthetic_project(tmp_path, n=12)
    config = PolicyConfig(policy=str(policy_model), learning_rate=1e-2, max_steps=3, save_steps=100,
                          **{**GRPO, "method": "rloo", "per_device_batch": 8})
    result, metrics, _, _ = run(project_path, config)
    assert result["status"] == "finished" and result["steps"] == 3
    assert len(metrics["train/reward"]) == 3 and all(v >= 0 for _, v in metrics["train/kl"])


def test_nothing_to_train_on_is_refused_before_a_run_is_recorded(project, policy_model):
    recorder = ProjectRecorder(project.path)
    try:
        with pytest.raises(RmstudioError, match="no prompts to train on"):
            start(POLICY, project.path, PolicyConfig(policy=str(policy_model), **GRPO), recorder)
        with pytest.raises(RmstudioError, match="no labeled pairs"):
            start(POLICY, project.path, PolicyConfig(method="dpo", policy=str(policy_model)), recorder)
        with pytest.raises(RmstudioError, match="no cancelled, failed or interrupted policy run"):
            POLICY.resume_of(project.path, PolicyConfig(policy=str(policy_model), resume=True, **GRPO))
        assert list_runs(recorder.project) == []
    finally:
        recorder.close()


def test_resume_continues_only_a_run_of_the_same_method_and_form(project, policy_model):
    from rmstudio.core.runs import codec

    grpo = PolicyConfig(policy=str(policy_model), **GRPO)
    recorder = ProjectRecorder(project.path)
    try:
        run_id = recorder.begin("policy", "grpo", codec.encode(grpo))
        recorder.finish("cancelled")
        assert POLICY.resume_of(project.path, PolicyConfig(**{**grpo.__dict__, "resume": True})) == run_id
        with pytest.raises(RmstudioError, match="has method 'grpo', not 'dpo'"):
            POLICY.resume_of(project.path, PolicyConfig(method="dpo", policy=str(policy_model), resume=True))
        with pytest.raises(RmstudioError, match="has lora True, not False"):
            POLICY.resume_of(project.path, PolicyConfig(**{**grpo.__dict__, "resume": True, "lora": False}))
    finally:
        recorder.close()


def test_the_cpu_trains_in_float32():
    import torch

    from rmstudio.core.policy.run import _precision

    device, dtype, bf16 = _precision(PolicyConfig(method="dpo", device="cpu"))
    assert (device, dtype, bf16) == ("cpu", torch.float32, False)
