"""`accelerate launch --num_processes 2 -m rmstudio train-rm` trains like one process.

The launch is ``--multi_gpu --num_processes 2`` with ``--device cpu``: on a machine without a GPU
that is torchrun with two CPU processes (gloo). ``accelerate launch --cpu --num_processes 2``
starts ONE process in accelerate 1.x: with --cpu it only starts several through mpirun
(``--mpirun_hostfile``). Both runs are float32 (``--no-bf16``): bf16 autocast rounds each
activation to 3 significant digits, which makes a half batch differ from a whole one by far
more than the float32 summation order does (and whether it is on depends on the CPU).

Two ranks each take half of every batch (contiguous halves), weight their loss by their share
and sum the gradients once per step: the same gradient as one process on the whole batch, so
the two runs differ only by float summation order (the all-reduce, half-batch matmuls). On this
tiny float32 model the runs differ by ~1e-6 after 14 steps of AdamW (measured: 1.4e-6 on a
train/margin of 14, 5e-7 on rewards; AdamW divides by sqrt(v), which amplifies tiny gradient
differences where v is small): 1e-4 absolute on rewards of magnitude ~10 leaves that margin
without letting a real difference through (one pair too many or too few in a step, or a
wrongly weighted half, moves the step-1 metrics by ~1e-2). Only rank 0 writes: one run
row, each step's metrics once, one exported model.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import synthetic_project
from tiny_models import save_tiny_model

from rmstudio.core.data.records import Text
from rmstudio.core.reward.scoring import load_reward_model
from rmstudio.core.reward.train import runs_dir
from rmstudio.core.runs.store import list_runs
from rmstudio.core.store.project import Project

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _train(launcher: list[str], project: Path, tiny_dir: Path) -> subprocess.CompletedProcess:
    command = launcher + ["-m", "rmstudio", "train-rm", str(project), "--method", "full",
                          "--base", str(tiny_dir), "--device", "cpu", "--epochs", "2", "--batch-size", "8",
                          "--max-length", "64",
                          "--lr", "3e-3", "--val-fraction", "0.25", "--no-bf16"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return done


def _recorded(project: Path) -> dict:
    with Project.open(project) as p:
        runs = list_runs(p, "reward")
        run_id = runs[0]["id"]
        metrics = p.conn.execute("SELECT step, key, COUNT(*) FROM run_metrics WHERE run_id = ? "
                                 "GROUP BY step, key", (run_id,)).fetchall()
        artifacts = [r[0] for r in p.conn.execute("SELECT kind FROM artifacts WHERE run_id = ?", (run_id,))]
    result = json.loads((runs_dir(project) / f"run-{run_id}" / "result.json").read_text())
    return {"runs": runs, "metrics": metrics, "artifacts": artifacts, "result": result}


def _curve(project: Path, key: str) -> dict[int, float]:
    with Project.open(project) as p:
        return dict(p.conn.execute("SELECT step, value FROM run_metrics WHERE key = ?", (key,)).fetchall())


def test_two_processes_train_like_one(tmp_path, tiny_dir):
    one = synthetic_project(tmp_path, n=64, name="one")
    two = synthetic_project(tmp_path, n=64, name="two")
    _train([sys.executable], one, tiny_dir)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launched = _train(launch, two, tiny_dir)
    assert launched.stdout.count("finished: run 1") == 1  # rank 0 alone reports

    a, b = _recorded(one), _recorded(two)
    assert len(b["runs"]) == 1 and b["runs"][0]["status"] == "finished"
    assert all(count == 1 for _, _, count in b["metrics"])
    assert sorted(b["artifacts"]) == sorted(a["artifacts"]) and b["artifacts"].count("model") == 1
    for key in ("train/loss", "train/margin"):  # every step's metrics, not only the last
        curve_a, curve_b = _curve(one, key), _curve(two, key)
        assert curve_a.keys() == curve_b.keys()
        assert max(abs(curve_a[s] - curve_b[s]) for s in curve_a) < TOLERANCE, key
    steps_a = sorted(s for s, k, _ in a["metrics"] if k == "train/loss")
    steps_b = sorted(s for s, k, _ in b["metrics"] if k == "train/loss")
    assert steps_b == steps_a == list(range(1, a["result"]["total_steps"] + 1))

    ra, rb = a["result"], b["result"]
    assert (ra["processes"], rb["processes"]) == (1, 2)
    assert rb["steps"] == ra["steps"] and rb["train"]["num_tokens"] == ra["train"]["num_tokens"]
    for key in ("loss", "accuracy", "margin"):
        assert rb["val"][key] == pytest.approx(ra["val"][key], abs=TOLERANCE), key
        assert rb["train"][key] == pytest.approx(ra["train"][key], abs=TOLERANCE), key
    assert rb["evaluation"]["accuracy"] == ra["evaluation"]["accuracy"]

    prompts = [Text(t) for t in ("question 1: a b?", "question 2: c d?", "what is the capital?")]
    responses = [Text(t) for t in ("Paris Paris capital", "dog fox night", "Paris")]
    scores_a = load_reward_model(ra["model_dir"], device="cpu").score_texts(prompts, responses)
    scores_b = load_reward_model(rb["model_dir"], device="cpu").score_texts(prompts, responses)
    assert abs(scores_a - scores_b).max() < TOLERANCE, (scores_a, scores_b)
