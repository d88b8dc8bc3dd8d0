"""'Save report…' on the Train results, the Runs page and the Optimize results writes the run's
HTML report where the user chose, off the UI thread, and says where (or why not) in one line."""

from __future__ import annotations

import pytest

from rmstudio.core.runs.store import add_artifact, finish_run, log_metrics, start_run

WAIT_MS = 180_000


def a_run(project, kind: str = "reward", name: str = "lora on tiny") -> int:
    run_id = start_run(project, kind, name, {"method": "lora", "seed": 3})
    for step in range(1, 6):
        log_metrics(project, run_id, step, {"train/loss": 1 / step, "val/accuracy": 0.5 + step / 20})
    add_artifact(project, run_id, "model", f"/tmp/run-{run_id}/model")
    finish_run(project, run_id, "finished")
    return run_id


def save_through(qtbot, button, out) -> str:
    """Click 'Save report…' with the file dialog answered by ``out``; the status line after."""
    asked = []
    button.choose_file = lambda: asked.append(1) or str(out)
    button.button.click()
    assert asked == [1]  # the dialog comes from the click
    qtbot.waitUntil(lambda: not button.busy(), timeout=WAIT_MS)
    return button.status.text()


def test_train_results_save_the_report_of_the_shown_run(project, qtbot, tmp_path):
    from rmstudio.gui.train_results import ResultsPanel

    run_id = a_run(project)
    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.show_result({"run_id": run_id, "status": "finished", "method": "lora"})
    assert panel.report_button.isHidden()  # no project known: nothing to read the run from
    panel.set_project_path(project.path)
    panel.show_result({"run_id": run_id, "status": "finished", "method": "lora"})
    assert panel.report_button.isVisible()
    out = tmp_path / "report.html"
    status = save_through(qtbot, panel.report_button, out)
    html = out.read_text(encoding="utf-8")
    assert f"Run #{run_id} · lora on tiny" in html and "0.75" in html  # val/accuracy at step 5
    assert "Saved to" in status and str(out) in status
    panel.clear()
    assert panel.report_button.isHidden()


def test_runs_page_reports_one_selected_run(project, qtbot, tmp_path):
    from rmstudio.gui.runs_page import RunsPage

    first, second = a_run(project, name="first"), a_run(project, name="<second>")
    page = RunsPage()
    qtbot.addWidget(page)
    page.resize(1200, 800)
    page.set_project(project)
    page.show()
    page.select_runs([first, second])
    assert page.report_button.isHidden()  # a report is of one run
    page.select_runs([second])
    assert page.report_button.isVisible()
    out = tmp_path / "second.html"
    assert "Saved to" in save_through(qtbot, page.report_button, out)
    html = out.read_text(encoding="utf-8")
    assert "&lt;second&gt;" in html and "<second>" not in html
    page.grab().save(str(tmp_path / "runs-page.png"))


def test_optimize_results_report_the_policy_run(project, qtbot, tmp_path):
    from rmstudio.gui.optimize_results import OptimizeResults

    run_id = a_run(project, kind="policy", name="grpo on tiny")
    results = OptimizeResults()
    qtbot.addWidget(results)
    results.set_project(project)
    results.show()
    assert results.report_button.isHidden()
    results.show_result({"run_id": run_id, "status": "finished", "steps": 5})
    assert results.report_button.isVisible()
    out = tmp_path / "policy.html"
    assert "Saved to" in save_through(qtbot, results.report_button, out)
    assert "grpo on tiny" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("where", ["missing/report.html", "folder"])
def test_a_report_that_cannot_be_written_says_why_in_one_line(project, qtbot, tmp_path, where):
    from rmstudio.gui.report_button import ReportButton

    run_id = a_run(project)
    (tmp_path / "folder").mkdir()
    button = ReportButton()
    qtbot.addWidget(button)
    button.set_run(project.path, run_id)
    status = save_through(qtbot, button, tmp_path / where)
    assert "Report not saved: cannot write the report to" in status and "\n" not in status
    assert button.button.isEnabled()


def test_a_cancelled_dialog_writes_nothing(project, qtbot, tmp_path):
    from rmstudio.gui.report_button import ReportButton

    button = ReportButton()
    qtbot.addWidget(button)
    button.set_run(project.path, a_run(project))
    button.choose_file = lambda: ""
    button.button.click()
    assert not button.busy() and button.status.text() == "" and not list(tmp_path.glob("*.html"))
