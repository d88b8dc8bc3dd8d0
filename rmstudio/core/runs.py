"""Runs (generation, reward training, ...) remembered in the project with their metrics and files."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, is_dataclass

from .project import Project, utc_now

STATUSES = ("running", "finished", "cancelled", "failed")


def start_run(project: Project, kind: str, name: str, config) -> int:
    payload = asdict(config) if is_dataclass(config) else dict(config)
    with project.write():
        return project.conn.execute(
            "INSERT INTO runs (kind, name, config, status, started_at) VALUES (?, ?, ?, 'running', ?)",
            (kind, name, json.dumps(payload, default=str), utc_now()),
        ).lastrowid


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
