"""Backups in the window: the damaged-file dialog restores, Back up now writes through the
label writer, and a network-folder project says why WAL is off."""

import os

import pytest

from rmstudio.core.store.backups import list_backups
from rmstudio.core.store.project import Project
from builders import add_pairs


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from rmstudio.gui.main_window import MainWindow

    win = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def _click_first(role):
    def fake_exec(box):
        [button] = [b for b in box.buttons() if box.buttonRole(b) == role][:1]
        button.click()
        return 0
    return fake_exec


def test_opening_a_damaged_project_offers_the_newest_backup_and_reopens(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        ids = add_pairs(project, 30)
        project.set_label(ids[0], "ann", "a")
        project.backup()
    with open(path, "r+b") as fh:
        fh.seek(path.stat().st_size - 2 * 4096)
        fh.write(os.urandom(4096))
    shown = []
    monkeypatch.setattr(QMessageBox, "exec", _click_first(QMessageBox.AcceptRole))
    monkeypatch.setattr(QMessageBox, "information", lambda *a: shown.append(a[2]))
    assert window.open_project(path)
    assert window.project is not None and window.project.label(ids[0], "ann").choice == "a"
    assert "kept as p.rmstudio.replaced-" in shown[0]
    assert len(list(tmp_path.glob("p.rmstudio.replaced-*"))) == 1


def test_a_damaged_project_without_backups_is_refused_and_untouched(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    path = tmp_path / "p.rmstudio"
    path.touch()  # 0 bytes: once silently became an empty project
    texts = []

    def cancel(box):
        texts.append(box.text() + " " + box.informativeText())
        return QMessageBox.Cancel

    monkeypatch.setattr(QMessageBox, "exec", cancel)
    assert not window.open_project(path)
    assert "empty" in texts[0] and "no intact backup" in texts[0]
    assert path.stat().st_size == 0 and window.project is None


def test_back_up_now_goes_through_the_label_writer(window, qtbot, tmp_path):
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        add_pairs(project, 3)
    assert window.open_project(path)
    window.backups.backup_now()
    qtbot.waitUntil(lambda: len(list_backups(path)) == 1, timeout=10000)
    qtbot.waitUntil(lambda: "Backed up to" in window.statusBar().currentMessage(), timeout=5000)


def test_a_network_folder_project_warns_on_open(window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from rmstudio.core.store import connection as project_module

    path = tmp_path / "p.rmstudio"
    Project.create(path).close()
    monkeypatch.setattr(project_module, "network_folder_kind", lambda p: "network folder (nfs)")
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    assert window.open_project(path)
    assert window.project.journal_mode == "delete"
    assert "network folder" in warned[0]
    assert "⚠" in window.status_project.text()


def test_damage_beyond_the_bounded_check_closes_the_project_and_offers_restore(window, tmp_path,
                                                                                monkeypatch):
    """A big file's check stops after 3 s; damage the first reads meet must not leave the window
    half-open with a traceback."""
    from PySide6.QtWidgets import QMessageBox

    from rmstudio.core.store import connection as project_module

    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        add_pairs(project, 200)
    with open(path, "r+b") as fh:  # garbage over the comparisons' last pages
        fh.seek(path.stat().st_size - 3 * 4096)
        fh.write(os.urandom(3 * 4096))
    monkeypatch.setattr(project_module, "check_project_file", lambda *a: None)  # out of time
    shown = []

    def cancel(box):
        shown.append(box.text())
        return QMessageBox.Cancel

    monkeypatch.setattr(QMessageBox, "exec", cancel)
    assert not window.open_project(path)
    assert window.project is None and window.stack.currentWidget() is window.welcome
    assert "damaged" in shown[0]
