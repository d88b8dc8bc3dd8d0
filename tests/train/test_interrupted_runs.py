"""A run killed with its process is 'interrupted' the next time the project is opened (a run still
alive in another process is not), and a fine-tune resumes from its last checkpoint."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict

import psutil
import pytest

from rmstudio.core.errors import RmstudioError
from rmstudio.core.store.project import Project
from rmstudio.core.runs.store import (
    STATUSES, claim_run, finish_run, list_runs, mark_interrupted_runs, start_run,
)
from rmstudio.core.store.schema import MIGRATIONS


def _sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _owner(pid: int, started: float, host: str | None = None) -> str:
    return json.dumps({"host": host or socket.gethostname(), "pid": pid, "started": started})


def test_dead_owners_are_marked_interrupted_and_live_or_unknown_ones_are_not(project):
    live = _sleeper()
    dead = _sleeper()
    dead_started = psutil.Process(dead.pid).create_time()
    dead.kill()
    dead.wait()
    try:
        ids = {name: start_run(project, "reward", name, {}) for name in
               ("this process", "live child", "dead child", "reused pid", "other host", "no owner", "finished")}
        owners = {
            "live child": _owner(live.pid, psutil.Process(live.pid).create_time()),
            "dead child": _owner(dead.pid, dead_started),
            # the pid is alive but belongs to a process that started later: not the run's
            "reused pid": _owner(os.getpid(), psutil.Process(os.getpid()).create_time() - 3600),
            "other host": _owner(dead.pid, dead_started, host="another-machine"),
            "no owner": None,
        }
        with project.write():
            for name, owner in owners.items():
                project.conn.execute("UPDATE runs SET owner = ? WHERE id = ?", (owner, ids[name]))
        finish_run(project, ids["finished"], "finished")

        assert mark_interrupted_runs(project) == 2
        status = {r["name"]: r["status"] for r in list_runs(project)}
        assert status == {"this process": "running", "live child": "running", "dead child": "interrupted",
                          "reused pid": "interrupted", "other host": "running", "no owner": "running",
                          "finished": "finished"}
        error = {r["name"]: r["error"] for r in list_runs(project)}["dead child"]
        assert f"pid {dead.pid}" in error and "resumes from its last checkpoint" in error
        assert mark_interrupted_runs(project) == 0  # nothing twice
    finally:
        live.kill()
        live.wait()


def test_resuming_refuses_a_run_whose_owner_is_alive_and_claims_a_dead_one(project):
    live = _sleeper()
    try:
        run_id = start_run(project, "reward", "x", {})
        with project.write():
            project.conn.execute("UPDATE runs SET owner = ? WHERE id = ?",
                                 (_owner(live.pid, psutil.Process(live.pid).create_time()), run_id))
        with pytest.raises(RmstudioError, match=f"still running \\(process {live.pid}\\)"):
            claim_run(project, run_id)
    finally:
        live.kill()
        live.wait()
    assert mark_interrupted_runs(project) == 1
    claim_run(project, run_id)
    [run] = list_runs(project)
    assert run["status"] == "running" and run["error"] is None
    assert json.loads(run["owner"])["pid"] == os.getpid()


def test_the_run_owner_migration_keeps_metrics_and_artifacts(tmp_path):
    """0005 rebuilds runs (SQLite cannot widen a CHECK in place) without losing the rows that
    reference it, and deleting a run still deletes them."""
    position = [name for name, _ in MIGRATIONS].index("0005_run_owner")
    conn = sqlite3.connect(tmp_path / "p.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    for _, step in MIGRATIONS[:position]:
        conn.execute("BEGIN IMMEDIATE")
        step(conn)
        conn.execute("COMMIT")
    conn.execute("INSERT INTO runs (id, kind, name, config, status, started_at) "
                 "VALUES (7, 'reward', 'old', '{}', 'cancelled', 'then')")
    conn.execute("INSERT INTO run_metrics VALUES (7, 1, 'train/loss', 0.5)")
    conn.execute("INSERT INTO artifacts (run_id, kind, path, created_at) VALUES (7, 'checkpoint', 'x', 'then')")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = 7")
    for _, step in MIGRATIONS[position:]:
        conn.execute("BEGIN IMMEDIATE")
        step(conn)
        conn.execute("COMMIT")
    assert conn.execute("SELECT id, name, status, owner FROM runs").fetchall() == [(7, "old", "cancelled", None)]
    assert conn.execute("SELECT * FROM run_metrics").fetchall() == [(7, 1, "train/loss", 0.5)]
    assert conn.execute("SELECT run_id, kind FROM artifacts").fetchall() == [(7, "checkpoint")]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = 7")
    conn.execute("DELETE FROM runs WHERE id = 7")
    assert conn.execute("SELECT count(*) FROM run_metrics").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM artifacts").fetchone()[0] == 0
    assert "interrupted" in STATUSES


def test_a_fine_tune_killed_with_its_process_is_interrupted_and_resumes_from_its_checkpoint(tmp_path):
    from builders import synthetic_project
    from tiny_models import save_tiny_model

    from rmstudio.core.reward.train import RewardTrainConfig, runs_dir, train_reward_model

    tiny = save_tiny_model(tmp_path / "tiny")
    path = synthetic_project(tmp_path, n=64)
    settings = {"epochs": 40, "batch_size": 8, "max_length": 64, "learning_rate": 3e-3, "eval_every_steps": 0,
                "save_every_steps": 2, "distill_weight": 0.0, "head_init": "random"}
    config = RewardTrainConfig(method="lora", base=str(tiny), device="cpu", finetune=settings)
    child = subprocess.Popen([sys.executable, "-m", "rmstudio.core.reward.child", str(path),
                              json.dumps(asdict(config), default=str)],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = runs_dir(path) / "run-1"
    try:
        deadline = time.monotonic() + 120
        while not list((folder / "checkpoints").glob("step-*/meta.json")):
            assert child.poll() is None and time.monotonic() < deadline, "the child never wrote a checkpoint"
            time.sleep(0.05)
    finally:
        child.kill()  # as the OOM killer or a power cut would: no chance to write its end
        child.wait()
    raw = sqlite3.connect(path)  # what the dead child left, before any rmstudio open
    assert raw.execute("SELECT status FROM runs").fetchone()[0] == "running"
    raw.close()
    with Project.open(path) as project:  # opening marks it: the run is resumable at once
        assert project.recovered["runs_interrupted"] == 1
        assert list_runs(project, "reward")[0]["status"] == "interrupted"
        assert mark_interrupted_runs(project) == 0
    checkpoint = max(int(p.parent.name.removeprefix("step-")) for p in folder.glob("checkpoints/step-*/meta.json"))

    steps = []

    class Steps:
        def log(self, step, metrics):
            if "train/loss" in metrics:
                steps.append(step)

        def should_stop(self):
            return False

    resumed = train_reward_model(path, RewardTrainConfig(method="lora", base=str(tiny), device="cpu",
                                                         finetune={**settings, "resume": str(folder)}), Steps())
    assert resumed["status"] == "finished" and resumed["run_id"] == 1
    assert steps[0] == checkpoint + 1 and resumed["steps"] == resumed["total_steps"]
    with Project.open(path) as project:
        [run] = list_runs(project, "reward")
        assert run["status"] == "finished"
