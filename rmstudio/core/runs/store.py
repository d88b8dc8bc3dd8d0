"""Runs (generation, reward training, ...) remembered in the project with their metrics and files."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING

from rmstudio.core.processes import owner_alive, process_owner
from rmstudio.core.timefmt import utc_now

if TYPE_CHECKING:  # runs.py is imported by project.py (runs interrupted by a crash, on open)
    from rmstudio.core.store.project import Project

STATUSES = ("running", "finished", "cancelled", "failed", "interrupted")
"""'interrupted': the process running it died (killed, crashed, the machine went down) while the
run said 'running'; mark_interrupted_runs finds these. A fine-tune resumes from its last
checkpoint as a cancelled one does."""


def mark_interrupted_runs(project: Project) -> int:
    """Mark 'running' runs whose process has died as 'interrupted'; returns how many.

    Called when a project is opened: a run killed with its process (out of memory, a crash, a
    power cut) never wrote its end, so it would say 'running' forever. A run whose owner is alive
    (another window, a CLI run, a training child process), on another host or without a recorded
    owner (started before owners were recorded) is left alone: it may really be running."""
    running = project.conn.execute("SELECT id, owner FROM runs WHERE status = 'running'").fetchall()
    dead = [(run_id, owner) for run_id, owner in running if owner_alive(owner) is False]
    if not dead:
        return 0
    marked = 0
    with project.write():
        for run_id, owner in dead:
            pid = json.loads(owner).get("pid")
            # `owner = ?`: a resume that claimed the run since the SELECT keeps it.
            marked += project.conn.execute(
                "UPDATE runs SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running' "
                "AND owner = ?",
                (f"interrupted: its process (pid {pid}) ended without finishing it; a fine-tune resumes "
                 "from its last checkpoint", run_id, owner)).rowcount
    return marked


def start_run(project: Project, kind: str, name: str, config) -> int:
    payload = asdict(config) if is_dataclass(config) else dict(config)
    with project.write():
        return project.conn.execute(
            "INSERT INTO runs (kind, name, config, status, started_at, owner) "
            "VALUES (?, ?, ?, 'running', ?, ?)",
            (kind, name, json.dumps(payload, default=str), utc_now(), process_owner()),
        ).lastrowid


def claim_run(project: Project, run_id: int) -> None:
    """Set a stopped run (cancelled, failed, interrupted) running again in this process (a resume).
    Refuses a run whose owner is still alive: two processes would write one checkpoint folder."""
    from rmstudio.core.errors import RmstudioError

    with project.write():
        row = project.conn.execute("SELECT status, owner FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RmstudioError(f"there is no run {run_id} in this project")
        if row[0] == "running" and row[1] != process_owner() and owner_alive(row[1]):
            pid = json.loads(row[1]).get("pid")
            raise RmstudioError(f"run {run_id} is still running (process {pid}); cancel it before resuming")
        project.conn.execute("UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, "
                             "owner = ? WHERE id = ?", (process_owner(), run_id))


def log_metrics(project: Project, run_id: int, step: int, metrics: dict[str, float]) -> None:
    rows = [(run_id, step, key, float(value)) for key, value in metrics.items()
            if isinstance(value, (int, float)) and math.isfinite(float(value))]
    with project.write():
        project.conn.executemany(
            "INSERT INTO run_metrics (run_id, step, key, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id, key, step) DO UPDATE SET value = excluded.value", rows)


def finish_run(project: Project, run_id: int, status: str, error: str | None = None) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}")
    with project.write():
        project.conn.execute("UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                             (status, error, utc_now(), run_id))


def add_artifact(project: Project, run_id: int | None, kind: str, path: str, meta: dict | None = None) -> int:
    with project.write():
        return project.conn.execute(
            "INSERT INTO artifacts (run_id, kind, path, meta, created_at) VALUES (?, ?, ?, ?, ?)",
            (run_id, kind, str(path), json.dumps(meta) if meta else None, utc_now())).lastrowid


def run_metrics(project: Project, run_id: int) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    for key, step, value in project.conn.execute(
            "SELECT key, step, value FROM run_metrics WHERE run_id = ? ORDER BY key, step", (run_id,)):
        series.setdefault(key, []).append((step, value))
    return series


def list_runs(project: Project, kind: str | None = None) -> list[dict]:
    where, params = ("WHERE kind = ?", (kind,)) if kind else ("", ())
    rows = project.conn.execute(f"SELECT * FROM runs {where} ORDER BY id", params).fetchall()
    return [{**dict(r), "config": json.loads(r["config"])} for r in rows]


def last_metric_values(project: Project, key: str) -> dict[int, float]:
    """Each run's last logged value of the metric ``key`` (the highest step), by run id; runs
    that never logged it are missing."""
    rows = project.conn.execute(
        "SELECT run_id, value FROM run_metrics WHERE key = ? ORDER BY run_id, step", (key,)).fetchall()
    return {run_id: value for run_id, value in rows}  # the last step wins


def run_artifacts(project: Project, run_id: int) -> list[dict]:
    """The files a run recorded (``add_artifact``), in the order it recorded them:
    ``{kind, path, meta}``, ``meta`` decoded (None when it had none)."""
    rows = project.conn.execute(
        "SELECT kind, path, meta FROM artifacts WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
    return [{"kind": kind, "path": path, "meta": json.loads(meta) if meta else None}
            for kind, path, meta in rows]
