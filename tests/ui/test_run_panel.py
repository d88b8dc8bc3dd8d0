"""The run panel: any kind started, watched, cancelled and resumed the same way.

The toy kind is defined in tests/train/test_run_kinds.py (a few lines); nothing in the launcher
or the GUI knows it, yet it runs in a child process, streams its curves into the panel, cancels,
resumes and records its artifacts.
"""

from pathlib import Path

import pytest

from rmstudio.core.runs.store import list_runs, run_artifacts, run_metrics
from rmstudio.core.store.project import Project
import run_helpers

toy, writer = run_helpers.toy, run_helpers.writer  # shared fixtures (tests/run_helpers.py)


@pytest.fixture
def panel(qtbot, monkeypatch):
    from rmstudio.gui import run_panel

    shown = []
    monkeypatch.setattr(run_panel.RunPanel, "show_error",
                        lambda self, title, message, details="": shown.append(message))
    made = run_panel.RunPanel()
    made.errors = shown
    qtbot.addWidget(made)
    made.resize(700, 500)
    made.show()
    made.controls.show()
    yield made
    made.shutdown()


def test_a_toy_kind_streams_cancels_resumes_and_records_through_the_panel(toy, writer, panel, qtbot,
                                                                         tmp_path):
    # The whole "page": settings are a step count, resume continues the latest run.
    asked = {}

    def start(resume):
        config = toy.ToyConfig(folder=str(tmp_path), steps=asked["steps"],
                               resume_run=asked.get("run") if resume else None)
        panel.run(toy.TOY, writer.path, config, writer)

    panel.sig_start_requested.connect(start)
    panel.set_can_start(True)
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert "curves appear here" in panel.note.text()

    asked["steps"] = 400
    seen = []

    def on_progress(step, metrics):
        seen.append(metrics.get("message"))
        if step == 3 and panel.cancel_button.isEnabled():
            panel.cancel_button.click()

    with qtbot.waitSignal(panel.sig_running, timeout=5000):
        panel.start_button.click()
    assert not panel.start_button.isEnabled() and panel.cancel_button.isEnabled()
    panel.job.sig_progress.connect(on_progress)
    with qtbot.waitSignal(panel.sig_finished, timeout=30000) as done:
        pass
    stopped = done.args[0]["steps"]
    assert done.args[0]["status"] == "cancelled" and 3 <= stopped < 400
    assert "Counting to 400" in seen
    assert "cancelled" in panel.status.text()
    panel.plots.flush()
    xs, ys = panel.plots.curves["toy/loss"].getData()
    assert list(xs) == list(range(1, stopped + 1)) and ys[-1] == pytest.approx(0.5 ** stopped)
    with Project.open(writer.path) as project:
        [run] = list_runs(project, "toy")
    assert run["status"] == "cancelled"

    asked.update(steps=stopped + 4, run=run["id"])
    panel.set_can_resume(True)
    with qtbot.waitSignal(panel.sig_finished, timeout=30000) as done:
        panel.resume_button.click()
    assert done.args[0] == {"status": "finished", "steps": stopped + 4}
    assert panel.progress.isHidden() and panel.start_button.isEnabled()
    with Project.open(writer.path) as project:
        [run] = list_runs(project, "toy")  # the same run, continued
        assert run["status"] == "finished"
        assert [s for s, _ in run_metrics(project, run["id"])["toy/loss"]] == list(range(1, stopped + 5))
        [artifact] = run_artifacts(project, run["id"])
        assert artifact["kind"] == "checkpoint" and Path(artifact["path"]).exists()
    panel.grab().save(str(tmp_path / "toy_panel.png"))


def test_a_failed_run_says_why_and_the_panel_can_start_again(toy, writer, panel, qtbot, tmp_path):
    with qtbot.waitSignal(panel.sig_failed, timeout=30000) as failed:
        job = panel.run(toy.TOY, writer.path, toy.ToyConfig(folder=str(tmp_path), steps=100_000), writer)
        job.sig_progress.connect(lambda step, metrics: job.kill() if step == 2 else None)
    assert "ended unexpectedly" in failed.args[0]
    assert panel.errors and "failed" in panel.status.text() and not panel.running
    panel.set_can_start(True)
    assert panel.start_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_progress_shows_counts_units_stage_text_and_an_eta(panel, monkeypatch):
    from rmstudio.gui import run_panel

    clock = [100.0]
    monkeypatch.setattr(run_panel.time, "monotonic", lambda: clock[0])
    panel.on_progress(0, {"stage": "features", "done": 0, "total": 400, "unit": "responses",
                          "message": "Computing the base model's features (12 responses from the cache)"})
    assert "12 responses from the cache" in panel.status.text()
    assert panel.progress.maximum() == 400 and panel.progress.format() == "%v/%m responses"
    clock[0] += 4.0
    panel.on_progress(0, {"done": 100, "total": 400, "unit": "responses"})
    assert panel.progress.value() == 100
    assert panel.progress.format() == "%v/%m responses · about 12 s left"  # 4 s per 100, 300 to go
    panel.on_progress(0, {"message": "Fitting the head…"})
    assert panel.progress.maximum() == 0 and panel.status.text() == "Fitting the head…"  # busy
    panel.on_progress(1, {"train/loss": 0.7, "total_steps": 10})
    assert panel.progress.maximum() == 10 and panel.progress.format().startswith("Step %v/%m")
    panel.on_progress(4, {"train/loss": 0.5})  # later reports carry only their step
    assert panel.progress.value() == 4


def test_declared_plots_name_splits_span_an_odd_last_plot_and_keep_accuracy_in_range(qtbot):
    from rmstudio.core.reward.kind import REGRESSION_PLOTS
    from rmstudio.gui.live_plots import LivePlots
    from rmstudio.gui.plots import SPLIT_COLORS

    plots = LivePlots(REGRESSION_PLOTS)
    qtbot.addWidget(plots)
    titles = list(plots.plots)
    assert plots.grid.getItemPosition(plots.grid.indexOf(plots.plots[titles[2]])) == (1, 0, 1, 2)
    plots.add(5, {"train/pearson": 0.4, "val/pearson": 0.3, "train/accuracy": 0.9, "total_steps": 10})
    plots.flush()
    assert set(plots.curves) == {"train/pearson", "val/pearson"}  # undeclared numbers are not curves
    validation = plots.curves["val/pearson"]
    assert validation.name() == "validation" and validation.opts["pen"].color().name() == SPLIT_COLORS["val"].lower()
    limits = plots.plots[titles[1]].getPlotItem().getViewBox().state["limits"]["yLimits"]
    assert list(limits) == [-1.02, 1.02]
