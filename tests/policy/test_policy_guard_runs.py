"""The guard and best-of-n on a tiny policy (CPU, one thread): sampling leaves the training's
random state alone and measures no KL of a model to itself; a GRPO run against ``even_share``
with ``odd_share`` (its mirror) as the check logs the guard's curves, fires the detector, keeps
the best check's policy for export, and puts best-of-n of the start policy into its result."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from builders import synthetic_project
from policy_helpers import GRPO, even_share, odd_share, run, save_policy_model

from rmstudio.core.policy import sampling
from rmstudio.core.policy.best_of_n import best_of_n, kl_bound
from rmstudio.core.policy.config import PolicyConfig
from rmstudio.core.policy.export import PolicyExportError, export_policy
from rmstudio.core.policy.guard import BEST_DIR, GUARD_FILE
from rmstudio.core.runs.recorder import ProjectRecorder


def test_sampling_is_seeded_and_leaves_the_random_state_alone(policy_model, capfd):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(policy_model)
    tokenizer = AutoTokenizer.from_pretrained(policy_model)
    rows = ["question 1: the sea?", "question 2: a longer prompt about the sea?"]
    torch.manual_seed(5)
    before = torch.get_rng_state()
    first = sampling.sample(model, tokenizer, rows, 8, 1.0, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    assert sampling.sample(model, tokenizer, rows, 8, 1.0, seed=3).completion_ids == first.completion_ids
    assert sampling.sample(model, tokenizer, rows, 8, 1.0, seed=4).completion_ids != first.completion_ids
    assert all(1 <= len(ids) <= 8 for ids in first.completion_ids)
    # the same model is no distance from itself; log-probabilities of real tokens are below 0
    logps = sampling.completion_logps(model, first, 1.0)
    assert all(v < 0 for v in logps)
    assert sampling.completion_logps(model, first, 1.0) == pytest.approx(logps)
    # best-of-n of the start policy: the proxy's pick rises with n, its mirror falls
    table = best_of_n(model, tokenizer, rows, even_share, odd_share, samples=8, ns=(1, 2, 4, 8, 16),
                      max_new_tokens=8)
    assert [r["n"] for r in table] == [1, 2, 4, 8] and table[2]["kl"] == pytest.approx(kl_bound(4))
    proxy, check = [r["proxy"] for r in table], [r["check"] for r in table]
    assert proxy == sorted(proxy) and proxy[-1] > proxy[0]
    assert [p + c for p, c in zip(proxy, check)] == pytest.approx([1.0] * 4)
    assert capfd.readouterr().out == ""  # a child process's stdout carries only its events


@pytest.fixture(scope="module")
def guarded_run(tmp_path_factory):
    """One GRPO run (20 steps) with the guard every 5 steps and best-of-n at the end."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("guard")
    project_path = synthetic_project(tmp, n=40)
    config = PolicyConfig(policy=str(save_policy_model(tmp / "policy")), learning_rate=2e-2, max_steps=20,
                          save_steps=100, seed=0, held_out_fraction=0.3, guard_every=5, guard_patience=2,
                          check_reward="policy_helpers:odd_share", best_of_n=True, **GRPO)
    try:
        yield (project_path, *run(project_path, config))
    finally:
        torch.set_num_threads(threads)


def test_the_guard_logs_its_curves_and_fires_on_a_mirrored_check(guarded_run):
    project_path, result, metrics, [record], artifacts = guarded_run
    assert result["status"] == "finished" and record["status"] == "finished"
    steps = [s for s, _ in metrics["guard/proxy"]]
    assert steps == [0, 5, 10, 15, 20]
    proxy = [v for _, v in metrics["guard/proxy"]]
    check = [v for _, v in metrics["guard/check"]]
    assert [p + c for p, c in zip(proxy, check)] == pytest.approx([1.0] * 5)  # the mirror
    # the policy learned the proxy (on the 12 held-out prompts of the count-based, salted split the
    # rise is smaller than on the old hash split's prompts: 0.44 -> 0.48)...
    assert proxy[-1] > proxy[0] + 0.03, proxy
    kl = [v for _, v in metrics["guard/kl"]]
    assert kl[0] == pytest.approx(0, abs=1e-5) and kl[-1] > 0.01, kl  # ...and moved away from its start
    assert [v for _, v in metrics["guard/sqrt_kl"]] == pytest.approx([math.sqrt(max(k, 0)) for k in kl])
    guard = result["guard"]
    assert [p["step"] for p in guard["history"]] == steps
    assert [p["sqrt_kl"] for p in guard["history"]] == [v for _, v in metrics["guard/sqrt_kl"]]
    # the check's best is where it was highest; the detector names a step and warns
    best = max(guard["history"], key=lambda p: p["check"])
    assert guard["best_step"] == best["step"] and metrics["guard/best_step"][-1][1] == best["step"]
    assert guard["diverged_at"] is not None, guard["history"]
    assert metrics["guard/diverging"][-1][1] in (0.0, 1.0) and "guard/diverged_at" in metrics
    assert guard["message"].endswith(f"since step {guard['diverged_at']}")
    assert guard["message"] in result["warning"]
    run_dir = Path(result["model_dir"]).parent
    assert json.loads((run_dir / GUARD_FILE).read_text())["best_step"] == best["step"]
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["guard"]["best_step"] == best["step"] == saved["metrics"]["guard/best_step"]
    assert saved["metrics"]["guard/check"] == check[-1]


def test_best_of_n_of_the_start_is_in_the_result(guarded_run):
    _, result, *_ = guarded_run
    table = result["best_of_n"]
    assert [r["n"] for r in table] == [1, 2, 4, 8, 16]
    assert [r["sqrt_kl"] for r in table] == pytest.approx([math.sqrt(kl_bound(n)) for n in (1, 2, 4, 8, 16)])
    proxy = [r["proxy"] for r in table]
    assert all(b >= a - 1e-9 for a, b in zip(proxy, proxy[1:])) and proxy[-1] > proxy[0]
    assert [r["proxy"] + r["check"] for r in table] == pytest.approx([1.0] * 5)
    # sampled from the start policy: best-of-1 is about the guard's step-0 proxy (16 vs 1 samples)
    assert abs(table[0]["proxy"] - result["guard"]["history"][0]["proxy"]) < 0.25


def test_export_takes_the_best_or_the_last_step(guarded_run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    _, result, *_ = guarded_run
    run_dir = Path(result["model_dir"]).parent
    best = export_policy(run_dir, tmp_path / "best", step="best")
    last = export_policy(run_dir, tmp_path / "last")
    card = (best / "README.md").read_text()
    assert f"Exported the guard's best step, {result['guard']['best_step']}" in card
    assert "over-optimisation since step" in card
    assert (run_dir / BEST_DIR / "adapter_config.json").is_file()  # LoRA: the adapter alone
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        a = AutoModelForCausalLM.from_pretrained(best)(ids).logits
        b = AutoModelForCausalLM.from_pretrained(last)(ids).logits
    assert (not torch.allclose(a, b)) == (result["guard"]["best_step"] != result["steps"])
    with pytest.raises(PolicyExportError, match="step must be 'best' or 'last'"):
        export_policy(run_dir, tmp_path / "x", step="middle")


def test_a_run_without_the_guard_has_no_best_step(tmp_path, policy_model):
    project_path = synthetic_project(tmp_path, n=10)
    config = PolicyConfig(policy=str(policy_model), max_steps=1, save_steps=100,
                          **{**GRPO, "per_device_batch": 8})
    result, *_ = run(project_path, config)
    assert "guard" not in result and "best_of_n" not in result
    with pytest.raises(PolicyExportError, match="no best step"):
        export_policy(Path(result["model_dir"]).parent, tmp_path / "x", step="best")


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_a_full_fine_tune_checks_against_its_start(tmp_path, policy_model, beta):
    # beta > 0: TRL's own reference model; beta 0: TRL keeps none, the guard loads the start itself
    project_path = synthetic_project(tmp_path, n=12)
    config = PolicyConfig(policy=str(policy_model), lora=False, beta=beta, learning_rate=1e-3, max_steps=2,
                          save_steps=100, held_out_fraction=0.3, check_reward="policy_helpers:odd_share",
                          guard_every=1, **{**GRPO, "per_device_batch": 8})
    result, metrics, _, _ = run(project_path, config)
    kl = [v for _, v in metrics["guard/kl"]]
    assert [s for s, _ in metrics["guard/kl"]] == [0, 1, 2]
    assert kl[0] == pytest.approx(0, abs=1e-5) and kl[-1] != 0
    best = Path(result["model_dir"]).parent / BEST_DIR
    assert (best / "config.json").is_file() and not (best / "adapter_config.json").exists()
    assert (export_policy(best.parent, tmp_path / "best", step="best") / "model.safetensors").is_file()


class StopsAfterStep(ProjectRecorder):
    def __init__(self, path, after: int):
        super().__init__(path)
        self.after = after

    def should_stop(self):
        return self.step >= self.after


def test_a_resumed_run_continues_the_guard_history(tmp_path, policy_model):
    project_path = synthetic_project(tmp_path, n=20)
    config = PolicyConfig(policy=str(policy_model), learning_rate=1e-2, max_steps=6, save_steps=2,
                          held_out_fraction=0.3, check_reward="policy_helpers:odd_share", guard_every=2,
                          **{**GRPO, "per_device_batch": 8})
    result, *_ = run(project_path, config, StopsAfterStep(project_path, after=3))
    assert result["status"] == "cancelled" and [p["step"] for p in result["guard"]["history"]] == [0, 2]
    result, metrics, _, _ = run(project_path, PolicyConfig(**{**config.__dict__, "resume": True}))
    assert result["status"] == "finished"
    assert [p["step"] for p in result["guard"]["history"]] == [0, 2, 4, 6]  # no second baseline
    assert [s for s, _ in metrics["guard/proxy"]] == [0, 2, 4, 6]


def test_the_guard_without_held_out_prompts_is_refused_before_a_run(tmp_path, policy_model):
    from rmstudio.core.errors import RmstudioError
    from rmstudio.core.policy.kind import POLICY
    from rmstudio.core.runs.launch import start
    from rmstudio.core.runs.store import list_runs

    # One prompt: a share holds out at least one prompt but never all of them, so none here.
    project_path = synthetic_project(tmp_path, n=1)
    config = PolicyConfig(policy=str(policy_model), held_out_fraction=0.001, best_of_n=True, **GRPO)
    recorder = ProjectRecorder(project_path)
    try:
        with pytest.raises(RmstudioError, match="none is held out"):
            start(POLICY, project_path, config, recorder)
        assert list_runs(recorder.project) == []
    finally:
        recorder.close()


def test_a_reward_model_folder_is_a_check(tmp_path, policy_model):
    from tiny_models import tiny_reward_classifier

    model, tokenizer = tiny_reward_classifier()
    folder = tmp_path / "check-rm"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    project_path = synthetic_project(tmp_path, n=12)
    config = PolicyConfig(policy=str(policy_model), max_steps=1, save_steps=100, held_out_fraction=0.3,
                          check_reward=str(folder), guard_every=1, **{**GRPO, "per_device_batch": 8})
    result, metrics, _, _ = run(project_path, config)
    checks = [p["check"] for p in result["guard"]["history"]]
    assert len(checks) == 2 and all(math.isfinite(c) for c in checks)
    assert checks != [p["proxy"] for p in result["guard"]["history"]]
