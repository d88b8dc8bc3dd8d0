"""The live reward model refits in the background after labels, and reports in one line."""

import pytest
from conftest import write_jsonl
from tiny_models import save_tiny_model

from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project
from rmstudio.gui.live_model import LiveModelController


@pytest.fixture
def labeled_project(tmp_path):
    path = tmp_path / "live.rmstudio"
    with Project.create(path) as project:
        import_files(project, [write_jsonl(tmp_path / "p.jsonl", [
            {"prompt": f"q{i} sea?", "chosen": "sea Paris Paris capital", "rejected": f"dog fox {i}"}
            for i in range(30)])])
    return path


def test_live_model_reports_accuracy_after_labels(qtbot, labeled_project, tmp_path, monkeypatch):
    from rmstudio.gui import live_model

    tiny = save_tiny_model(tmp_path / "tiny")
    original = live_model.LiveInstantModel
    monkeypatch.setattr(live_model, "LiveInstantModel", lambda: original(base=str(tiny), device="cpu"))
    monkeypatch.setattr(live_model, "DEBOUNCE_MS", 10)
    controller = LiveModelController()
    controller._timer.setInterval(10)
    lines = []
    controller.sig_status.connect(lines.append)
    controller.set_project(str(labeled_project))
    controller.set_enabled(True)
    qtbot.waitUntil(lambda: any("val. accuracy on 30 pairs" in line for line in lines), timeout=60000)
    controller.set_enabled(False)
    assert lines[-1] == "Live reward model: off"
    controller.shutdown()
