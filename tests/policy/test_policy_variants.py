"""The policy kind's other paths: a reward model folder as the reward, full fine-tuning (a
reference model of its own) with its export, and a run in a child process that streams JSON
lines only and obeys a stop."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from builders import synthetic_project
from policy_helpers import GRPO, run
from tiny_models import tiny_reward_classifier

from rmstudio.core.policy.config import PolicyConfig
from rmstudio.core.policy.export import export_policy
from rmstudio.core.policy.kind import POLICY
from rmstudio.core.runs.launch import child_command, start
from rmstudio.core.runs.recorder import ProjectRecorder, apply_event
from rmstudio.core.runs.store import list_runs, run_metrics

TESTS = Path(__file__).resolve().parents[1]


def test_grpo_scores_with_a_reward_model_folder(tmp_path, policy_model):
    model, tokenizer = tiny_reward_classifier()
    folder = tmp_path / "rm"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    project_path = synthetic_project(tmp_path, n=10)
    config = PolicyConfig(policy=str(policy_model), max_steps=2, save_steps=100,
                          **{**GRPO, "reward": str(folder), "per_device_batch": 8})
    result, metrics, _, _ = run(project_path, config)
    assert result["status"] == "finished"
    assert [s for s, _ in metrics["rewards/reward_model/mean"]] == [1, 2]  # TRL names it after __name__
    assert metrics["train/reward"] == metrics["rewards/reward_model/mean"]


def test_full_fine_tuning_keeps_a_reference_model_and_exports_as_is(tmp_path, policy_model):
    project_path = synthetic_project(tmp_path, n=10)
    config = PolicyConfig(policy=str(policy_model), lora=False, learning_rate=1e-3, max_steps=2,
                          save_steps=100, **{**GRPO, "per_device_batch": 8})
    result, metrics, _, _ = run(project_path, config)
    assert result["status"] == "finished"
    assert (Path(result["model_dir"]) / "config.json").is_file()
    assert not (Path(result["model_dir"]) / "adapter_config.json").exists()
    assert all(v >= 0 for _, v in metrics["train/kl"]) and metrics["train/kl"][-1][1] > 0

    from transformers import AutoModelForCausalLM

    out = export_policy(Path(result["model_dir"]).parent, tmp_path / "export")
    assert AutoModelForCausalLM.from_pretrained(out).config.vocab_size > 0
    assert "Tuned from: `" + str(policy_model) in (out / "README.md").read_text()


def test_a_child_process_streams_json_lines_and_stops(tmp_path, policy_model):
    project_path = synthetic_project(tmp_path, n=20)
    config = PolicyConfig(policy=str(policy_model), learning_rate=1e-2, max_steps=30, save_steps=100,
                          **{**GRPO, "per_device_batch": 8})
    parent = ProjectRecorder(project_path)
    try:
        run_id = start(POLICY, project_path, config, parent)
        paths = [str(TESTS / "policy"), str(TESTS), str(TESTS.parent)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
        child = subprocess.Popen(child_command(POLICY, project_path, config, run_id), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        result = None
        for line in child.stdout:
            event = json.loads(line)  # nothing but events on stdout: no library prints there
            if event.get("event") == "progress" and event.get("step") == 2:
                child.stdin.write("stop\n")
                child.stdin.flush()
            result = apply_event(event, parent) or result
        assert child.wait(60) == 0
        assert result["status"] == "cancelled" and 2 <= result["steps"] < 30
        [record] = list_runs(parent.project, "policy")
        assert record["status"] == "cancelled"
        assert run_metrics(parent.project, run_id)["train/reward"][-1][0] == result["steps"]
    finally:
        parent.close()
