"""The run engine: a kind defined in a few lines here runs in this process and in a child process,
streams its curves to the parent (the only writer), cancels, resumes and records its artifacts,
with no change to the launcher."""

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rmstudio.core.runs import codec
from rmstudio.core.runs.kinds import Plot, RunKind, kind_ref, load_kind
from rmstudio.core.runs.launch import child_command, run_in_process, start
from rmstudio.core.runs.recorder import ProjectRecorder, apply_event
from rmstudio.core.runs.store import list_runs, run_metrics
from rmstudio.core.store.project import Project

TESTS = Path(__file__).resolve().parents[1]


# -- a toy kind: counts to `steps`, logging a falling loss, leaving a checkpoint file ---------

@dataclass
class Inner:
    rate: float = 0.5
    """How fast the toy loss falls."""


@dataclass
class ToyConfig:
    steps: int = 5
    """How many steps to count."""
    folder: str = ""
    """Where the checkpoint file goes."""
    resume_run: int | None = None
    """A run to continue from its checkpoint."""
    inner: Inner = field(default_factory=Inner)
    tags: tuple[str, ...] = ("a",)

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError("steps must be at least 1")


def run_toy(project_path, config: ToyConfig, recorder) -> dict:
    checkpoint = Path(config.folder) / f"run-{recorder.run_id}.json"
    step = json.loads(checkpoint.read_text())["step"] if config.resume_run and checkpoint.exists() else 0
    recorder.log(step, {"stage": "count", "total_steps": config.steps, "message": f"Counting to {config.steps}"})
    while step < config.steps:
        if recorder.should_stop():
            return {"status": "cancelled", "steps": step}
        step += 1
        time.sleep(0.01)  # a unit of work: a cancel lands within a step or two
        recorder.log(step, {"toy/loss": config.inner.rate ** step, "done": step})
        checkpoint.write_text(json.dumps({"step": step}))
    recorder.artifact("checkpoint", checkpoint, {"step": step})
    return {"status": "finished", "steps": step}


TOY = RunKind(name="toy", config_type=ToyConfig, run=run_toy, plots=(Plot("Loss", ("toy/loss",)),),
              describe=lambda c: f"count to {c.steps}",
              resume_of=lambda project_path, c: c.resume_run)


@pytest.fixture
def project_path(tmp_path):
    path = tmp_path / "p.rmstudio"
    Project.create(path).close()
    return path


def test_a_kind_is_found_by_reference_and_its_config_round_trips(tmp_path):
    assert kind_ref(TOY) == "test_run_kinds:TOY"
    assert load_kind("test_run_kinds:TOY") is TOY
    config = ToyConfig(steps=3, folder=str(tmp_path), inner=Inner(0.25), tags=("x", "y"))
    assert codec.loads(ToyConfig, codec.dumps(config)) == config
    with pytest.raises(ValueError, match=r"toy.inner.rate: expected a number, got text 'fast'"):
        TOY.config_from_json({"inner": {"rate": "fast"}})
    with pytest.raises(ValueError, match="steps must be at least 1"):  # validated once, by the dataclass
        TOY.config_from_json({"steps": 0})
    with pytest.raises(ValueError, match="is not a run kind"):
        load_kind("test_run_kinds:ToyConfig")


def test_in_process_the_recorder_writes_metrics_status_and_artifacts(project_path, tmp_path):
    recorder = ProjectRecorder(project_path)
    result = run_in_process(TOY, project_path, ToyConfig(steps=4, folder=str(tmp_path)), recorder)
    assert result == {"status": "finished", "steps": 4}
    [run] = list_runs(recorder.project, "toy")
    assert run["status"] == "finished" and run["name"] == "count to 4"
    assert run["config"]["inner"] == {"rate": 0.5}
    assert run_metrics(recorder.project, run["id"])["toy/loss"] == [(s, 0.5 ** s) for s in range(1, 5)]
    kinds = [r["kind"] for r in recorder.project.conn.execute("SELECT kind FROM artifacts")]
    assert kinds == ["checkpoint"]
    recorder.close()


def _child(project_path, config, run_id):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS / "train"), str(TESTS.parent)])}
    return subprocess.Popen(child_command(TOY, project_path, config, run_id), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)


def test_a_child_streams_the_parent_records_cancel_and_resume(project_path, tmp_path):
    parent = ProjectRecorder(project_path)
    config = ToyConfig(steps=50, folder=str(tmp_path))
    run_id = start(TOY, project_path, config, parent)
    child = _child(project_path, config, run_id)
    result = None
    for line in child.stdout:
        event = json.loads(line)
        if event.get("step") == 3:
            child.stdin.write("stop\n")  # the user cancels
            child.stdin.flush()
        result = apply_event(event, parent) or result
    assert child.wait(30) == 0
    assert result["status"] == "cancelled" and 3 <= result["steps"] < 50
    [run] = list_runs(parent.project, "toy")
    assert run["status"] == "cancelled"
    steps = [s for s, _ in run_metrics(parent.project, run_id)["toy/loss"]]
    assert steps == list(range(1, result["steps"] + 1))

    total = result["steps"] + 5
    resumed = ToyConfig(steps=total, folder=str(tmp_path), resume_run=run_id)
    assert start(TOY, project_path, resumed, parent) == run_id  # the same run, claimed again
    child = _child(project_path, resumed, run_id)
    for line in child.stdout:
        result = apply_event(json.loads(line), parent) or result
    assert child.wait(30) == 0
    [run] = list_runs(parent.project, "toy")
    assert run["status"] == "finished"
    steps = [s for s, _ in run_metrics(parent.project, run_id)["toy/loss"]]
    assert steps == list(range(1, total + 1))  # continued where the cancel left it, nothing twice
    [(kind, meta)] = parent.project.conn.execute("SELECT kind, meta FROM artifacts").fetchall()
    assert kind == "checkpoint" and json.loads(meta) == {"step": total}
    parent.close()


def test_a_failing_child_reports_one_message_and_the_run_is_failed(project_path, tmp_path):
    parent = ProjectRecorder(project_path)
    config = ToyConfig(steps=3, folder=str(tmp_path / "missing-folder"))
    run_id = start(TOY, project_path, config, parent)
    events = [json.loads(line) for line in _child(project_path, config, run_id).stdout]
    for event in events:
        apply_event(event, parent)
    assert events[-1]["event"] == "failed" and "missing-folder" in events[-1]["message"]
    [run] = list_runs(parent.project, "toy")
    assert run["status"] == "failed"
    parent.close()
