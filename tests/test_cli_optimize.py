"""`rmstudio optimize` and `rmstudio compare`, through a parser built with cli_optimize.add_parsers:
a tiny GRPO run to an exported folder transformers loads, its before/after comparison sent to
labeling, `--reward` given as a reward run's id, and bad input as one error line."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pytest
from builders import synthetic_project

from rmstudio.cli_optimize import add_parsers, resolve_reward
from rmstudio.core.errors import RmstudioError

sys.path.insert(0, str(Path(__file__).parent / "policy"))  # policy_helpers: the tiny policy, the reward


@pytest.fixture(autouse=True)
def one_torch_thread():
    """As tests/policy/conftest.py: a second thread on a 32-wide model only waits."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rmstudio")
    add_parsers(p.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return p


def rmstudio(*argv: str) -> int:
    args = parser().parse_args([str(a) for a in argv])
    return args.func(args)


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rmstudio: error: "), lines
    return lines[0]


TINY = ["--method", "grpo", "--reward", "policy_helpers:even_share", "--max-steps", "2", "--batch", "8",
        "--num-generations", "4", "--max-completion-length", "8", "--lora-rank", "8", "--learning-rate",
        "5e-2", "--save-steps", "100", "--held-out-fraction", "0.25", "--device", "cpu"]


@pytest.fixture(scope="module")
def optimized(tmp_path_factory):
    """`rmstudio optimize` of a tiny policy for 2 steps, exported with --out."""
    import torch
    from policy_helpers import save_policy_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("optimize")
    project_path = synthetic_project(tmp, n=16)
    policy = save_policy_model(tmp / "policy")
    out = tmp / "tuned"
    import contextlib
    import io

    stdout = io.StringIO()  # capsys is function-scoped: this module-scoped run captures by hand
    try:
        with contextlib.redirect_stdout(stdout):
            code = rmstudio("optimize", project_path, "--policy", policy, "--out", out, *TINY)
        yield project_path, out, code, stdout.getvalue()
    finally:
        torch.set_num_threads(threads)


def test_optimize_trains_prints_a_summary_and_exports_a_loadable_model(optimized):
    from transformers import AutoModelForCausalLM

    project_path, out, code, printed = optimized
    assert code == 0, printed
    assert re.search(r"^finished: run 1 \(grpo\), 2/2 steps", printed, re.M), printed
    assert re.search(r"final reward [\d.]+, KL [\d.e-]+", printed), printed
    assert "a LoRA adapter" in printed and f"from_pretrained({str(out)!r})" in printed
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.hidden_size == 32 and not (out / "adapter_config.json").exists()


def test_compare_prints_win_rates_sends_pairs_and_reads_the_humans(optimized, capsys):
    from rmstudio.core.store.project import Project

    project_path, *_ = optimized
    assert rmstudio("compare", project_path, "--run", "1", "--prompts", "3", "--max-new-tokens", "8",
                    "--temperature", "1.0", "--device", "cpu", "--send") == 0
    printed = capsys.readouterr().out
    assert "3 held-out prompts: 'policy start' vs 'policy run 1 step 2'" in printed
    assert re.search(r"reward policy_helpers:even_share: tuned wins [\d.]+% \(95% CI", printed), printed
    sent = int(re.search(r"sent (\d+) comparisons to the label queue", printed).group(1))
    assert sent >= 1
    with Project.open(project_path) as project:
        cid = project.conn.execute(
            "SELECT c.id, ra.model FROM comparisons c JOIN responses ra ON ra.id = c.response_a_id "
            "JOIN responses rb ON rb.id = c.response_b_id WHERE rb.model = 'policy start' "
            "OR ra.model = 'policy start' ORDER BY c.id").fetchall()
        assert len(cid) == sent
        comparison_id, model_a = cid[0]
        project.set_label(comparison_id, "ann", "a" if model_a == "policy run 1 step 2" else "b")
    assert rmstudio("compare", project_path, "--run", "1", "--human") == 0
    printed = capsys.readouterr().out
    assert f"1 of {sent} comparisons labeled" in printed and "100.0% (95% CI 20.7%-100.0%" in printed


def test_help_names_every_default():
    for name in ("optimize", "compare"):
        sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            assert action.help, (name, action.dest)
            if action.option_strings and action.default not in (None, False, True, argparse.SUPPRESS):
                assert f"default: {action.default}" in text, (name, action.dest)


def test_reward_given_as_a_reward_runs_id_is_its_model_folder(tmp_path):
    from rmstudio.core.runs.recorder import ProjectRecorder

    project_path = synthetic_project(tmp_path, n=4)
    with pytest.raises(RmstudioError, match="has no reward model yet"):
        resolve_reward(str(project_path), None)
    folder = tmp_path / "rm"
    folder.mkdir()
    recorder = ProjectRecorder(project_path)
    try:
        recorder.begin("reward", "instant", {"method": "instant", "base": "tiny"})
        recorder.artifact("model", folder)
        recorder.finish("finished")
    finally:
        recorder.close()
    assert resolve_reward(str(project_path), "1") == str(folder)
    assert resolve_reward(str(project_path), None) == str(folder)  # the newest, left out
    assert resolve_reward(str(project_path), str(folder)) == str(folder.resolve())
    assert resolve_reward(str(project_path), "pkg.mod:fn") == "pkg.mod:fn"
    with pytest.raises(RmstudioError, match=r"no reward model from run 7 .*runs with one: 1\)"):
        resolve_reward(str(project_path), "7")


@pytest.mark.parametrize("argv, message", [
    (["--method", "ppo"], "method must be one of grpo, rloo, dpo, got 'ppo'"),
    (["--reward", "9"], "no reward model from run 9 in this project"),
    (["--reward", "no/such/folder"], "--reward no/such/folder: no such reward model folder"),
    (["--reward", "policy_helpers:nothing_here"], "has no function 'nothing_here'"),
    (["--reward", "policy_helpers:even_share", "--policy", "."], "is a directory but has no config.json"),
    (["--method", "dpo", "--reward", "3"], "--reward is for grpo and rloo"),
    (["--reward", "policy_helpers:even_share", "--max-steps", "0"], "max_steps must be at least 1"),
    (["--reward", "live"], "reward 'live' fits an instant model on the project's labels: it has 4 labeled"),
    (["--reward", "policy_helpers:even_share", "--check-reward", "auto", "--guard-every", "2"],
     "check_reward 'auto': only 4 labeled pairs that the reward did not train on"),
])
def test_bad_optimize_input_is_one_line(tmp_path, capsys, argv, message):
    project_path = synthetic_project(tmp_path, n=4)
    assert rmstudio("optimize", project_path, *argv) == 2  # the policy: 'embedded', never loaded
    assert message in one_error_line(capsys)


def test_bad_compare_input_is_one_line(tmp_path, capsys):
    project_path = synthetic_project(tmp_path, n=4)
    assert rmstudio("compare", project_path, "--run", "4") == 2
    assert "run-4 is not the folder of a policy run" in one_error_line(capsys)
    assert rmstudio("compare", tmp_path / "missing.rmstudio", "--run", "1", "--human") == 2
    assert "does not exist" in one_error_line(capsys)
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("x")
    assert rmstudio("optimize", project_path, "--out", out, *TINY) == 2
    assert "exists and is not an empty folder" in one_error_line(capsys)


def test_the_progress_bar_shows_steps_with_reward_and_kl():
    import io

    from rmstudio.cli_progress import OptimizeProgress

    out = io.StringIO()
    progress = OptimizeProgress(file=out, disable=False)
    progress.log(0, {"stage": "load", "train_items": 12, "held_out_items": 4})
    progress.log(0, {"stage": "train", "done": 0, "total": 3, "total_steps": 3})
    progress.log(1, {"train/reward": 0.625, "train/kl": 0.0012, "train/loss": 0.01, "done": 1,
                     "total_steps": 3})
    assert progress.bar.n == 1 and progress.bar.total == 3
    assert progress.bar.postfix == "reward=0.625, kl=0.0012, loss=0.01"
    progress.close()
    assert "loading the policy: 12 items to train on, 4 held out" in out.getvalue()
