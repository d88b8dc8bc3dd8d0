"""RunJob: any run kind in a child process, recorded by the window's one store writer."""

import json
import os

import pytest

from rmstudio.core.runs.store import list_runs, run_metrics
from rmstudio.core.store.project import Project
import run_helpers

toy, writer = run_helpers.toy, run_helpers.writer  # shared fixtures (tests/run_helpers.py)


def _job(toy, writer, qtbot, **settings):
    from rmstudio.gui.run_job import RunJob

    config = toy.ToyConfig(folder=str(writer.path.parent), **settings)
    return RunJob(toy.TOY, writer.path, config, writer)


def test_a_kind_runs_in_a_child_and_this_process_records_it(toy, writer, qtbot):
    job = _job(toy, writer, qtbot, steps=4)
    progress = []
    job.sig_progress.connect(lambda step, metrics: progress.append(step))
    with qtbot.waitSignal(job.sig_finished, timeout=30000) as done:
        job.start()
    assert done.args[0] == {"status": "finished", "steps": 4}
    with Project.open(writer.path) as project:
        [run] = list_runs(project, "toy")
        assert run["status"] == "finished"  # recorded before sig_finished was sent
        assert json.loads(run["owner"])["pid"] == os.getpid()  # by this process, not the child
        assert [s for s, _ in run_metrics(project, run["id"])["toy/loss"]] == [1, 2, 3, 4]
        assert [a[0] for a in project.conn.execute("SELECT kind FROM artifacts")] == ["checkpoint"]
    assert progress[-1] == 4


def test_cancel_then_resume_continue_the_same_run(toy, writer, qtbot):
    job = _job(toy, writer, qtbot, steps=400)
    job.sig_progress.connect(lambda step, metrics: job.cancel() if step == 2 else None)
    with qtbot.waitSignal(job.sig_finished, timeout=30000) as done:
        job.start()
    stopped = done.args[0]["steps"]
    assert done.args[0]["status"] == "cancelled" and stopped < 400
    with Project.open(writer.path) as project:
        [run] = list_runs(project, "toy")
    assert run["status"] == "cancelled"
    again = _job(toy, writer, qtbot, steps=stopped + 3, resume_run=run["id"])
    with qtbot.waitSignal(again.sig_finished, timeout=30000) as done:
        again.start()
    assert done.args[0] == {"status": "finished", "steps": stopped + 3}
    with Project.open(writer.path) as project:
        [run] = list_runs(project, "toy")
        assert run["status"] == "finished"
        steps = [s for s, _ in run_metrics(project, run["id"])["toy/loss"]]
    assert steps == list(range(1, stopped + 4))


def test_a_child_killed_without_a_word_is_recorded_as_failed(toy, writer, qtbot):
    job = _job(toy, writer, qtbot, steps=100_000)
    job.sig_progress.connect(lambda step, metrics: job.kill() if step == 2 else None)
    with qtbot.waitSignal(job.sig_failed, timeout=30000) as failed:
        job.start()
    assert "ended unexpectedly" in failed.args[0]
    with Project.open(writer.path) as project:
        [run] = list_runs(project, "toy")
    assert run["status"] == "failed" and "ended unexpectedly" in run["error"]


def test_a_run_that_cannot_start_fails_at_once_and_records_nothing(toy, writer, qtbot, monkeypatch):
    from rmstudio.gui.run_job import RunJob

    def refuse(project_path, config):
        raise ValueError("nothing to count")

    kind = toy.TOY.__class__(**{**toy.TOY.__dict__, "precheck": refuse})
    monkeypatch.setattr(toy, "TOY", kind)  # the writer finds the kind by reference
    job = RunJob(kind, writer.path, toy.ToyConfig(folder=str(writer.path.parent)), writer)
    with qtbot.waitSignal(job.sig_failed, timeout=10000) as failed:
        job.start()
    assert failed.args[0] == "nothing to count"
    with Project.open(writer.path) as project:
        assert list_runs(project, "toy") == []


def test_curves_of_a_kind_the_window_has_never_heard_of_are_drawn_as_it_declares(toy, writer, qtbot,
                                                                                 tmp_path):
    from rmstudio.gui.live_plots import LivePlots

    plots = LivePlots(toy.TOY.plots)
    qtbot.addWidget(plots)
    plots.resize(600, 300)
    plots.show()
    job = _job(toy, writer, qtbot, steps=6)
    job.sig_progress.connect(plots.add)
    with qtbot.waitSignal(job.sig_finished, timeout=30000):
        job.start()
    plots.flush()
    assert list(plots.plots) == ["Loss"]
    xs, ys = plots.curves["toy/loss"].getData()
    assert list(xs) == [1, 2, 3, 4, 5, 6]
    assert list(ys) == pytest.approx([0.5 ** s for s in range(1, 7)])
    assert "total_steps" not in plots.curves and "done" not in plots.curves  # progress, not curves
    plots.grab().save(str(tmp_path / "toy_plots.png"))
