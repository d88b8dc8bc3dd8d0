"""'Export model…' and 'Open folder' on the Train page's results and on the Runs page."""

from __future__ import annotations

from rmstudio.core.runs.store import add_artifact, finish_run, start_run


def model_folder(tmp_path, name="model", instant=True):
    folder = tmp_path / "run" / name
    folder.mkdir(parents=True)
    (folder / ("rmstudio_reward.json" if instant else "config.json")).write_text("{}")
    (folder / "weights.bin").write_bytes(b"w" * 100)
    return folder


def result_for(folder, run_id=7):
    return {"run_id": run_id, "method": "instant", "status": "finished", "seconds": 1.0,
            "model_dir": str(folder), "metrics": {"val/accuracy": 0.75}}


def test_results_export_the_model_to_the_chosen_folder(tmp_path, qtbot, monkeypatch):
    from rmstudio.gui.train_results import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert panel.export_bar.isHidden()  # no run yet
    source = model_folder(tmp_path)
    panel.show_result(result_for(source))
    bar = panel.export_bar
    assert bar.isVisible() and bar.model_dir == source
    assert bar.hint.toPlainText() == f"Load it with: rmstudio.load_reward_model({str(source)!r})"
    target = tmp_path / "exports"
    monkeypatch.setattr(bar, "choose_destination", lambda: str(target))
    bar.export_button.click()
    qtbot.waitUntil(lambda: not bar.busy(), timeout=10000)
    assert (target / "weights.bin").read_bytes() == b"w" * 100
    assert bar.status.text() == f"Exported to {target}"
    assert str(target) in bar.hint.toPlainText()  # the hint now loads the copy
    opened = []
    monkeypatch.setattr(bar, "open_url", lambda url: opened.append(url.toLocalFile()) or True)
    bar.open_button.click()
    assert opened == [str(target)]


def test_a_second_export_to_the_same_folder_goes_into_a_new_folder_inside(tmp_path, qtbot, monkeypatch):
    from rmstudio.gui.train_results import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    source = model_folder(tmp_path)
    panel.show_result(result_for(source, run_id=3))
    picked = tmp_path / "models"
    picked.mkdir()
    (picked / "other.txt").write_text("someone's file")
    monkeypatch.setattr(panel.export_bar, "choose_destination", lambda: str(picked))
    panel.export_bar.export_button.click()
    qtbot.waitUntil(lambda: not panel.export_bar.busy(), timeout=10000)
    assert (picked / "reward-model-run-3" / "weights.bin").exists()
    assert (picked / "other.txt").read_text() == "someone's file"


def test_a_failed_export_says_why_in_one_line(tmp_path, qtbot, monkeypatch):
    from rmstudio.gui.train_results import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    source = model_folder(tmp_path)
    panel.show_result(result_for(source))
    monkeypatch.setattr(panel.export_bar, "choose_destination", lambda: str(source / "inside"))
    panel.export_bar.export_button.click()
    qtbot.waitUntil(lambda: not panel.export_bar.busy(), timeout=10000)
    status = panel.export_bar.status.text()
    assert "Not exported" in status and "into itself" in status
    assert panel.export_bar.export_button.isEnabled()


def test_a_cancelled_dialog_or_a_run_without_a_model_exports_nothing(tmp_path, qtbot, monkeypatch):
    from rmstudio.gui.train_results import ResultsPanel

    panel = ResultsPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.show_result({"run_id": 2, "method": "instant", "status": "cancelled", "model_dir": ""})
    assert panel.export_bar.isHidden()
    source = model_folder(tmp_path)
    panel.show_result(result_for(source))
    monkeypatch.setattr(panel.export_bar, "choose_destination", lambda: "")
    panel.export_bar.export_button.click()
    assert not panel.export_bar.busy() and panel.export_bar.status.text() == ""


def test_runs_page_exports_the_selected_runs_model(project, tmp_path, qtbot, monkeypatch):
    from rmstudio.gui.runs_page import RunsPage

    fine = model_folder(tmp_path, "fine", instant=False)
    run_id = start_run(project, "reward", "lora on tiny", {"method": "lora"})
    add_artifact(project, run_id, "model", str(fine))
    finish_run(project, run_id, "finished")
    bare = start_run(project, "generate", "responses", {})
    finish_run(project, bare, "finished")
    page = RunsPage()
    qtbot.addWidget(page)
    page.resize(1200, 800)
    page.set_project(project)
    page.show()
    bar = page.export_bar
    page.select_runs([bare])
    assert bar.isHidden()  # a run without a model
    page.select_runs([run_id, bare])
    assert bar.isHidden()  # several runs: which one?
    page.select_runs([run_id])
    assert bar.isVisible() and bar.model_dir == fine and bar.run_id == run_id
    assert "AutoModelForSequenceClassification.from_pretrained(" in bar.hint.toPlainText()
    opened = []
    monkeypatch.setattr(bar, "open_url", lambda url: opened.append(url.toLocalFile()) or True)
    bar.open_button.click()
    assert opened == [str(fine)]
    target = tmp_path / "out"
    monkeypatch.setattr(bar, "choose_destination", lambda: str(target))
    bar.export_button.click()
    qtbot.waitUntil(lambda: not bar.busy(), timeout=10000)
    assert (target / "config.json").exists()
    page.refresh()  # a refresh (the page shown again) keeps what the export said
    assert bar.status.text() == f"Exported to {target}"
