"""The Generate pairs dialog: a tiny random model makes real comparisons in the background.

Never the embedded model here (its first use converts it for ~20 s): a tiny model folder.
"""

import pytest
from conftest import write_jsonl
from tiny_models import save_tiny_model

from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project
from rmstudio.core.runs.store import list_runs


def _project_with_prompts(tmp_path, n):
    path = tmp_path / "gen.rmstudio"
    project = Project.create(path)
    rows = [{"prompt": f"Question {i}?"} for i in range(n)]
    import_files(project, [write_jsonl(tmp_path / "p.jsonl", rows)])
    return project


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def make_dialog(qtbot, tmp_path):
    from rmstudio.gui.generate_dialog import GenerateDialog

    made = []

    def make(n_prompts=4, **kwargs):
        project = _project_with_prompts(tmp_path, n_prompts)
        dialog = GenerateDialog(project, **kwargs)
        qtbot.addWidget(dialog)
        dialog.show()
        made.append((dialog, project))
        return dialog

    yield make
    for dialog, project in made:
        dialog.shutdown()
        project.close()


def _use_tiny(dialog, tiny_dir, max_new_tokens=4, batch_size=4):
    dialog.picker_a.set_source("hf_dir", str(tiny_dir))
    dialog.sampling.max_tokens_spin.setValue(max_new_tokens)
    dialog.sampling.batch_spin.setValue(batch_size)
    dialog.sampling.device_box.setCurrentIndex(dialog.sampling.device_box.findData("cpu"))


def test_generating_with_a_tiny_model_adds_comparisons(make_dialog, qtbot, tiny_dir):
    dialog = make_dialog(4)
    _use_tiny(dialog, tiny_dir)
    assert dialog.picker_a.error() == ""
    with qtbot.waitSignal(dialog.sig_generated, timeout=60000) as blocker:
        assert dialog.start()
        assert dialog.is_running() and dialog.cancel_button.isVisible()
    result = blocker.args[0]
    assert result["status"] == "finished" and result["prompts_done"] == 4
    assert dialog.project.counts()["comparisons"] == result["comparisons"] >= 1
    assert "new comparison" in dialog.status_label.text()
    assert "label queue" in dialog.status_label.text()
    assert not dialog.is_running()
    assert list_runs(dialog.project, "generate")[0]["status"] == "finished"
    # The counts follow the project: prompts that got a pair are no longer "without pairs".
    left = len(dialog.prompt_ids())
    assert f"({left})" in dialog.without_radio.text() and left < 4
    dialog.all_radio.setChecked(True)
    assert dialog.start_button.isEnabled() and len(dialog.prompt_ids()) == 4


def test_cancel_stops_early_and_keeps_finished_prompts(make_dialog, qtbot, tiny_dir):
    dialog = make_dialog(40)
    _use_tiny(dialog, tiny_dir, max_new_tokens=8, batch_size=2)  # one prompt per batch

    def cancel_after_first_prompt(step, _metrics):
        if step >= 1:
            dialog.cancel()

    dialog.picker_a.validate()
    with qtbot.waitSignal(dialog.sig_generated, timeout=60000) as blocker:
        dialog.start()
        dialog._job[1].sig_progress.connect(cancel_after_first_prompt)
    result = blocker.args[0]
    assert result["status"] == "cancelled"
    assert 1 <= result["prompts_done"] < 40 and result["prompts"] == 40
    done = dialog.project.conn.execute("SELECT count(DISTINCT prompt_id) FROM responses").fetchone()[0]
    assert done == result["prompts_done"]
    assert "Cancelled after" in dialog.status_label.text() and "kept" in dialog.status_label.text()


def test_a_bad_model_path_is_shown_inline_and_nothing_starts(make_dialog, tmp_path):
    dialog = make_dialog(2)
    dialog.picker_a.set_source("hf_dir", str(tmp_path / "no-such-model"))
    assert "no-such-model" in dialog.picker_a.error()
    assert dialog.picker_a.error_label.isVisible()
    assert not dialog.start()
    assert not dialog.is_running()
    empty = tmp_path / "empty"
    empty.mkdir()
    dialog.picker_a.set_source("hf_dir", str(empty))
    assert "config.json" in dialog.picker_a.error()
    dialog.picker_a.set_source("gguf", str(empty))
    assert "not a .gguf file" in dialog.picker_a.error()
    assert "Traceback" not in dialog.picker_a.error()
    assert dialog.project.counts()["comparisons"] == 0


def test_a_model_that_fails_to_load_shows_the_message_and_the_dialog_keeps_working(
        make_dialog, qtbot, tmp_path, tiny_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    dialog = make_dialog(2)
    dialog.picker_a.set_source("hf_dir", str(broken))
    with qtbot.waitSignal(dialog.sig_generated, timeout=60000) as blocker:
        assert dialog.start()
    assert blocker.args[0]["status"] == "failed"
    assert "Generation failed" in dialog.status_label.text()
    assert not dialog.is_running() and dialog.start_button.isEnabled()
    _use_tiny(dialog, tiny_dir)
    with qtbot.waitSignal(dialog.sig_generated, timeout=60000) as blocker:
        assert dialog.start()
    assert blocker.args[0]["status"] == "finished"


def test_invalid_temperature_shows_the_validation_message(make_dialog):
    dialog = make_dialog(2)
    dialog.sampling.temperature_spin.setValue(0.0)
    assert dialog.sampling.config_error.isVisible()
    assert "temperature" in dialog.sampling.config_error.text()
    assert not dialog.start_button.isEnabled()
    assert not dialog.start()
    dialog.sampling.temperature_spin.setValue(0.7)
    assert not dialog.sampling.config_error.isVisible()
    assert dialog.start_button.isEnabled()
    dialog.sampling.top_p_spin.setValue(0.0)
    assert "top_p" in dialog.sampling.config_error.text()


def test_trust_remote_code_needs_the_warning_confirmed(make_dialog, monkeypatch, tiny_dir):
    from PySide6.QtWidgets import QMessageBox

    dialog = make_dialog(2)
    picker = dialog.picker_a
    picker.set_source("hf_dir", str(tiny_dir))
    asked = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: asked.append(a) or QMessageBox.No)
    picker.trust_box.click()
    assert asked and "your user rights" in asked[0][2]
    assert not picker.trust_box.isChecked() and not picker.source().trust_remote_code
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Yes)
    picker.trust_box.click()
    assert picker.trust_box.isChecked() and picker.source().trust_remote_code
    # The permission was for that model: choosing another one withdraws it.
    picker.location_edit.setText(str(tiny_dir) + "/")
    picker.location_edit.textEdited.emit(picker.location_edit.text())
    assert not picker.trust_box.isChecked()
    # The embedded model never runs custom code.
    picker.set_source("embedded")
    assert not picker.trust_box.isVisibleTo(picker) and not picker.source().trust_remote_code


def test_second_model_fixes_two_responses_and_device_is_preselected(make_dialog):
    dialog = make_dialog(2, device="cpu", available={"cpu"})
    assert dialog.device() == "cpu"
    cuda = dialog.sampling.device_box.model().item(dialog.sampling.device_box.findData("cuda"))
    assert not cuda.isEnabled()
    dialog.sampling.responses_spin.setValue(4)
    dialog.second_box.setChecked(True)
    assert dialog.picker_b.isVisible()
    assert dialog.sampling.responses_spin.value() == 2 and not dialog.sampling.responses_spin.isEnabled()


def test_data_page_opens_the_dialog_and_refreshes_after_generation(qtbot, tmp_path, tiny_dir):
    from rmstudio.gui.data_page import DataPage

    project = _project_with_prompts(tmp_path, 3)
    page = DataPage()
    qtbot.addWidget(page)
    page.set_project(project)
    assert page.generate_button.isEnabled()
    changed = []
    page.sig_project_changed.connect(lambda: changed.append(True))
    dialog = page.open_generate_dialog()
    _use_tiny(dialog, tiny_dir)
    with qtbot.waitSignal(dialog.sig_generated, timeout=60000):
        dialog.start()
    assert changed
    assert page.count_labels["comparisons"].text() == str(project.counts()["comparisons"])
    page.set_project(None)
    assert page.generate_dialog is None
    project.close()


def test_generate_button_needs_prompts(qtbot, tmp_path):
    from rmstudio.gui.data_page import DataPage

    page = DataPage()
    qtbot.addWidget(page)
    with Project.create(tmp_path / "empty.rmstudio") as project:
        page.set_project(project)
        assert not page.generate_button.isEnabled()
        page.set_project(None)


def test_compute_device_setting_is_stored_and_preselected(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from rmstudio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    settings.setValue("device", "cuda")
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    assert window.device_actions["cuda"].isChecked()
    window._on_device_detected({"name": "CPU", "available": ["cpu"]})  # what the delayed probe reports
    assert not window.device_actions["cuda"].isEnabled() and not window.device_actions["mps"].isEnabled()
    assert window.data_page.device_preference == "auto"  # the saved choice is not available here
    assert "not available" in window.status_device.text()
    window.device_actions["cpu"].trigger()
    assert settings.value("device") == "cpu"
    assert window.data_page.device_preference == "cpu"
    assert window.status_device.text().startswith("Device: CPU")
    assert window.status_device.menu() is window.device_menu
    window.close()


def test_download_progress_is_shown_in_mib(qtbot, tmp_path):
    from rmstudio.core.store.project import Project
    from rmstudio.gui.generate_dialog import GenerateDialog

    with Project.create(tmp_path / "d.rmstudio") as project:
        dialog = GenerateDialog(project)
        qtbot.addWidget(dialog)
        dialog._on_job_progress(0, {"stage": "download", "done": 3 * 2**20, "total": 10 * 2**20})
        assert dialog.status_label.text() == "Downloading the model… 3 of 10 MiB"
