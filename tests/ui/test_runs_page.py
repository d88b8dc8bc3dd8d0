"""The Runs page: the project's runs in a table, curves of several runs overlaid, details."""

from __future__ import annotations

import json

from rmstudio.core.runs.store import add_artifact, finish_run, log_metrics, start_run


def add_runs(project):
    ids = []
    for n, final in ((1, 0.7), (2, 0.8)):
        run_id = start_run(project, "reward", f"lora on tiny {n}", {"method": "lora", "seed": n})
        for step in range(1, 11):
            log_metrics(project, run_id, step, {"train/loss": 1 / step, "val/accuracy": final * step / 10})
        add_artifact(project, run_id, "model", f"/tmp/run-{run_id}/model")
        finish_run(project, run_id, "finished")
        ids.append(run_id)
    failed = start_run(project, "reward", "full on nowhere", {"method": "full"})
    finish_run(project, failed, "failed", "model 'nowhere' not found\nTraceback ...")
    return ids + [failed]


def make_page(qtbot, project):
    from rmstudio.gui.runs_page import RunsPage

    page = RunsPage()
    qtbot.addWidget(page)
    page.resize(1200, 800)
    page.set_project(project)
    page.show()
    return page


def test_runs_are_listed_newest_first(project, qtbot):
    ids = add_runs(project)
    page = make_page(qtbot, project)
    assert page.table.rowCount() == 3
    assert [page.table.item(r, 0).text() for r in range(3)] == [str(i) for i in reversed(ids)]
    assert page.table.item(0, 3).text() == "failed"
    assert page.table.item(1, 6).text() == "80.0%"  # the last validation accuracy
    assert page.table.item(0, 6).text() == ""


def test_selected_runs_are_overlaid_one_curve_each(project, qtbot):
    first, second, _failed = add_runs(project)
    page = make_page(qtbot, project)
    page.select_runs([first, second])
    assert sorted(page.selected_run_ids()) == [first, second]
    assert page.metric_box.currentText() == "val/accuracy"
    assert sorted(page.curves) == [first, second]
    assert len(page.plot.getPlotItem().legend.items) == 2
    xs, ys = page.curves[second].getData()
    assert len(xs) == 10 and ys[-1] == 0.8
    page.metric_box.setCurrentText("train/loss")
    assert sorted(page.curves) == [first, second]
    assert page.curves[first].getData()[1][0] == 1.0


def test_details_show_settings_errors_and_files(project, qtbot):
    first, _second, failed = add_runs(project)
    page = make_page(qtbot, project)
    page.select_runs([failed])
    text = page.details.toPlainText()
    assert "model 'nowhere' not found" in text and "method\nfull" in text
    assert not page.curves  # a failed run with no metrics draws nothing
    page.select_runs([first])
    assert f"/tmp/run-{first}/model" in page.details.toPlainText()


def test_refresh_keeps_the_selection_and_sees_new_runs(project, qtbot):
    first, second, _ = add_runs(project)
    page = make_page(qtbot, project)
    page.select_runs([first, second])
    new = start_run(project, "generation", "sample", {})
    page.refresh()
    assert page.table.rowCount() == 4 and page.table.item(0, 0).text() == str(new)
    assert sorted(page.selected_run_ids()) == [first, second]


def test_settings_are_a_table_of_flat_names_with_a_copy_as_json_link(project, qtbot):
    from PySide6.QtCore import QUrl
    from PySide6.QtWidgets import QApplication

    config = {"method": "lora", "finetune": {"lora_rank": 8, "targets": ["q", "v"], "bf16": True},
              "annotators": None}
    run_id = start_run(project, "reward", "nested", config)
    finish_run(project, run_id, "finished")
    page = make_page(qtbot, project)
    page.select_runs([run_id])
    text = page.details.toPlainText()
    for row in ("method\nlora", "finetune.lora_rank\n8", 'finetune.targets\n["q", "v"]',
                "finetune.bf16\ntrue", "annotators\n—"):
        assert row in text
    assert "{" not in text  # no raw JSON on screen
    assert f"copy-settings:{run_id}" in page.details.toHtml()
    page.details.anchorClicked.emit(QUrl(f"copy-settings:{run_id}"))
    assert json.loads(QApplication.clipboard().text()) == config
