import pytest
from conftest import write_jsonl

from rmstudio.core.store.project import Project


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from rmstudio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_empty_state_says_what_to_do_next(window):
    assert window.stack.currentWidget() is window.welcome
    texts = " ".join(label.text() for label in window.welcome.findChildren(type(window.status_project)))
    assert "Start here" in texts
    assert window.status_project.text() == "No project open"


def test_opening_a_project_shows_its_counts_and_remembers_it(window, tmp_path):
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        from rmstudio.core.data.importer import import_files

        import_files(project, [write_jsonl(tmp_path / "d.jsonl",
                                           [{"prompt": f"q{i}", "chosen": "x", "rejected": "y"} for i in range(3)])])
    assert window.open_project(path)
    assert window.stack.currentWidget() is window.workspace
    assert window.data_page.count_labels["comparisons"].text() == "3"
    assert window.status_project.text() == "Project: p.rmstudio"
    assert window.recent_projects() == [str(path)]


def test_import_runs_in_the_background_and_updates_counts(window, qtbot, tmp_path):
    path = tmp_path / "p.rmstudio"
    Project.create(path).close()
    window.open_project(path)
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"q{i}", "chosen": "x", "rejected": "y"} for i in range(5)])
    window.data_page.import_paths([str(data)])
    qtbot.waitUntil(lambda: window.data_page.count_labels["comparisons"].text() == "5", timeout=10000)
    assert "added 5 comparisons" in window.data_page.status.text()


def test_a_failed_import_shows_the_error_and_keeps_the_app(window, qtbot, tmp_path):
    path = tmp_path / "p.rmstudio"
    Project.create(path).close()
    window.open_project(path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    window.data_page.import_paths([str(bad)])
    qtbot.waitUntil(lambda: "unchanged" in window.data_page.status.text(), timeout=10000)
    assert window.data_page.import_button.isEnabled()
    assert window.data_page.count_labels["comparisons"].text() == "0"


def test_opening_a_broken_file_warns_and_stays_on_welcome(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kw: shown.append(args[2]))
    bad = tmp_path / "bad.rmstudio"
    bad.write_text("not sqlite")
    assert not window.open_project(bad)
    assert shown and "not an rmstudio project" in shown[0]
    assert window.stack.currentWidget() is window.welcome


def test_the_window_opens_without_the_heavy_ml_imports():
    """torch/transformers take seconds to import: they must load lazily, not at start."""
    import subprocess
    import sys

    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "from rmstudio.gui.main_window import MainWindow; w = MainWindow(); w.show(); app.processEvents(); "
            "print(sorted(m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_export_runs_in_the_background_and_writes_the_file(window, qtbot, tmp_path):
    import json

    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        from rmstudio.core.data.importer import import_files

        import_files(project, [write_jsonl(tmp_path / "d.jsonl",
                                           [{"prompt": f"q{i}", "chosen": "x", "rejected": "y"} for i in range(4)])])
    window.open_project(path)
    out = tmp_path / "prefs.jsonl"
    window.data_page.export_to(str(out))
    qtbot.waitUntil(lambda: "wrote 4 rows" in window.data_page.status.text(), timeout=10000)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0] == {"prompt": "q0", "chosen": "x", "rejected": "y"}


def test_job_callbacks_run_on_the_ui_thread_even_as_lambdas(qtbot):
    import threading

    from PySide6.QtWidgets import QWidget

    from rmstudio.gui.worker import start_job

    owner = QWidget()
    qtbot.addWidget(owner)
    threads = []

    def job(sink):
        sink.log(1, {})
        return "done"

    thread, worker = start_job(owner, job, on_finished=lambda result: threads.append(("finished", threading.get_ident())),
                               on_progress=lambda step, m: threads.append(("progress", threading.get_ident())))
    qtbot.waitUntil(lambda: len(threads) == 2, timeout=5000)
    thread.wait(5000)
    assert {ident for _, ident in threads} == {threading.get_ident()}


def test_the_data_page_lists_each_annotators_labels_by_choice(window, tmp_path):
    from builders import add_pairs

    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        ids = add_pairs(project, 5)
        for cid, choice in zip(ids, ["a", "b", "tie", "skip"]):
            project.set_label(cid, "alice", choice)
        project.set_label(ids[4], "bob", "both_bad")
        project.annotator_id("carol")
    assert window.open_project(path)
    table = window.data_page.annotator_table
    rows = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]
    assert rows == [["alice", "human", "4", "2", "1", "0", "1"],
                    ["bob", "human", "1", "0", "0", "1", "0"],
                    ["carol", "human", "0", "0", "0", "0", "0"]]


def test_the_device_status_says_the_saved_choice_at_once_and_the_result_after(window, qtbot, tmp_path):
    """Not "Device: …" until torch has looked (seconds after start)."""
    from PySide6.QtCore import QSettings

    from rmstudio.gui.main_window import MainWindow

    assert window.status_device.text() == "Device: auto (detecting…)"
    window._on_device_detected({"name": "CPU", "available": ["cpu"]})
    assert window.status_device.text() == "Device: CPU"
    settings = QSettings(str(tmp_path / "cpu.ini"), QSettings.IniFormat)
    settings.setValue("device", "cpu")
    chose_cpu = MainWindow(settings=settings)
    qtbot.addWidget(chose_cpu)
    assert chose_cpu.status_device.text() == "Device: CPU (set in Settings)"
    chose_cpu.close()
