"""The Diagnose page on a tiny project: it runs off the UI thread, shows what the core computed,
and sends the ticked disagreements back to the label queue through the store writer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from builders import synthetic_project

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reward"))
import reward_folders  # noqa: E402

from PySide6.QtCore import Qt  # noqa: E402

from rmstudio.core.labeling.relabel import review_queue  # noqa: E402
from rmstudio.core.store.project import Project  # noqa: E402

WAIT_MS = 180_000


instant_dir = reward_folders.instant_dir  # shared fixture: a random head, it disputes about half the pairs


@pytest.fixture
def made(qtbot, tmp_path):
    from rmstudio.gui.diagnostics_page import DiagnosticsPage
    from rmstudio.gui.store_writer import StoreWriter

    path = synthetic_project(tmp_path, n=30)
    project = Project.open(path)
    writer = StoreWriter(path)
    page = DiagnosticsPage()
    qtbot.addWidget(page)
    page.resize(1200, 850)
    page.set_project(project)
    page.set_writer(writer)
    page.show()
    yield page, project
    page.shutdown()
    writer.stop()
    project.close()


def test_runs_shows_the_tables_and_sends_ticked_pairs_to_the_queue(made, qtbot, instant_dir, tmp_path):
    from rmstudio.core.reward.diagnostics import diagnose, project_pairs
    from rmstudio.core.reward.scoring import load_reward_model
    from rmstudio.gui.diagnostics_page import VALIDATION

    page, project = made
    assert not page.run_button.isEnabled() and "No reward model" in page.status.text()
    page.use_model_folder(str(instant_dir))
    page.use_set(VALIDATION)  # a folder on disk has no run, so no validation split
    assert not page.run_button.isEnabled() and "has no run" in page.status.text()
    page.use_set("all")
    assert page.run_button.isEnabled()
    with qtbot.waitSignal(page.sig_diagnosed, timeout=WAIT_MS) as shown:
        page.run_button.click()
        assert page.cancel_button.isEnabled() and not page.run_button.isEnabled()  # off the UI thread
    d = shown.args[0]
    expected = diagnose(load_reward_model(instant_dir, device="cpu"), project_pairs(project))
    assert [r.comparison_id for r in d.disagreements] == [r.comparison_id for r in expected.disagreements]
    assert page.tables.annotators.rowCount() == len(expected.by_annotator) > 0
    assert page.tables.disagreements.rowCount() == len(expected.disagreements) >= 2
    assert f"Accuracy {100 * expected.accuracy:.1f}%" in page.headline.text()
    assert page.grab().save(str(tmp_path / "diagnose.png"))  # a screenshot to look at when it fails

    picked = [page.tables.disagreements.item(row, 0) for row in (0, 1)]
    for item in picked:
        item.setCheckState(Qt.Checked)
    ids = [item.data(Qt.UserRole) for item in picked]
    assert page.tables.ticked() == ids
    page.tables.send_button.click()
    qtbot.waitUntil(lambda: "2 pairs queued" in page.tables.send_status.text(), timeout=WAIT_MS)
    assert sorted(review_queue(project)) == sorted(ids)
    assert page.tables.ticked() == []


def test_a_file_set_is_diagnosed_but_cannot_go_to_the_queue(made, qtbot, instant_dir, tmp_path):
    page, _project = made
    data = tmp_path / "held.jsonl"
    data.write_text("".join(f'{{"prompt": "q{i}?", "chosen": "Paris {i}", "rejected": "dog fox {i}"}}\n'
                            for i in range(12)))
    page.use_model_folder(str(instant_dir))
    page.use_file(str(data))
    with qtbot.waitSignal(page.sig_diagnosed, timeout=WAIT_MS) as shown:
        page.run()
    assert len(shown.args[0].rows) == 12
    if page.tables.disagreements.rowCount():
        assert not page.tables.send_button.isEnabled() and "from a file" in page.tables.send_status.text()
        assert page.tables.disagreements.item(0, 0).text().startswith("line ")

    missing = tmp_path / "gone.jsonl"
    page.use_file(str(missing))
    page.run()
    qtbot.waitUntil(lambda: "Could not diagnose" in page.status.text(), timeout=WAIT_MS)
    assert "gone.jsonl" in page.status.text() and "Traceback" not in page.status.text()


def _wait_for_cancel(sink):
    """Stands in for a long diagnosis: reports, then waits until the page asks it to stop."""
    import time

    from rmstudio.core.reward.diagnostics import DiagnosisCancelled

    for step in range(100_000):
        sink.log(step, {"total": 100_000})
        if sink.should_stop():
            raise DiagnosisCancelled("cancelled")
        time.sleep(0.01)
    raise AssertionError("the page never asked the diagnosis to stop")


def test_cancel_stops_the_job_and_shows_nothing_partial(made, qtbot, instant_dir, monkeypatch):
    import rmstudio.core.reward.diagnostics as diagnostics

    page, _project = made
    monkeypatch.setattr(diagnostics, "diagnose", lambda _scorer, _pairs, sink: _wait_for_cancel(sink))
    page.use_model_folder(str(instant_dir))
    page.run()
    qtbot.waitUntil(lambda: page.progress.maximum() == 100_000, timeout=WAIT_MS)  # progress is live
    page.cancel_button.click()
    qtbot.waitUntil(lambda: "Cancelled" in page.status.text(), timeout=WAIT_MS)
    assert page.run_button.isEnabled() and page.result is None and page.tables.disagreements.rowCount() == 0

    page.run()  # closing the project while a diagnosis runs stops it and waits for its thread
    qtbot.waitUntil(lambda: page.progress.maximum() == 100_000, timeout=WAIT_MS)
    page.set_project(None)
    assert page._job is None and page.writer is None and not page.run_button.isEnabled()


def test_the_window_lists_diagnose_right_after_score(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from rmstudio.gui.main_window import MainWindow

    window = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(window)
    titles = [window.nav.item(i).text() for i in range(window.nav.count())]
    assert titles[titles.index("Score") + 1] == "Diagnose"
    assert window.pages.widget(titles.index("Diagnose")) is window.diagnostics_page
    window.close()
