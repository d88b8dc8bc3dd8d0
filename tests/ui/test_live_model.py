"""The live reward model refits in the background after labels, and reports in one line."""

import re

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
    qtbot.waitUntil(lambda: any("on 30 pairs" in line for line in lines), timeout=180000)
    # 30 pairs at the 20% share would hold out 6: too few, so the figure is cross-validated
    [line] = [line for line in lines if "on 30 pairs" in line]
    assert re.search(r": \d+% ± \d+% cross-validated accuracy \(5 folds by prompt\) on 30 pairs", line), line
    controller.set_enabled(False)
    assert lines[-1] == "Live reward model: off"
    controller.shutdown()


def test_live_model_orders_unlabeled_pairs_after_a_refit(qtbot, labeled_project, tmp_path, monkeypatch):
    """With a strategy set, a refit embeds a few unlabeled pairs and sends the order (issue #18)."""
    from builders import add_pairs

    from rmstudio.gui import live_model

    with Project.open(labeled_project) as project:
        unlabeled = add_pairs(project, 5, prompt="new q{i} sea?", a="Paris {i}", b="fox dog {i}")
    tiny = save_tiny_model(tmp_path / "tiny")
    original = live_model.LiveInstantModel
    monkeypatch.setattr(live_model, "LiveInstantModel", lambda: original(base=str(tiny), device="cpu"))
    controller = LiveModelController()
    controller._timer.setInterval(10)
    fitted, orders = [], []
    controller.sig_fitted.connect(fitted.append)
    controller.sig_order.connect(orders.append)
    controller.set_project(str(labeled_project))
    controller.set_strategy("doptimal")  # no fit yet: nothing to compute
    controller.set_enabled(True)
    qtbot.waitUntil(lambda: bool(orders), timeout=60000)
    assert fitted[-1] is True and controller.has_fit
    assert orders[-1].strategy == "doptimal" and sorted(orders[-1].ids) == sorted(unlabeled)
    assert orders[-1].reasons[orders[-1].ids[0]].startswith("most informative: +")
    controller.set_strategy("margin")  # a new choice: a new order from the same fit
    qtbot.waitUntil(lambda: orders[-1].strategy == "margin", timeout=30000)
    assert sorted(orders[-1].ids) == sorted(unlabeled)
    controller.set_enabled(False)
    controller.shutdown()
