"""Help: keyboard shortcuts (also '?'), the log file, About; and uncaught errors reach the log."""

from __future__ import annotations

import logging
import sys

import pytest


@pytest.fixture
def window(qtbot):
    from PySide6.QtCore import QSettings

    from rmstudio.gui.main_window import MainWindow

    settings = QSettings(QSettings.IniFormat, QSettings.UserScope, "rmstudio-test", "help")
    settings.clear()
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_help_is_the_last_menu_with_four_entries(window):
    top = window.menuBar().actions()[-1]
    assert top.text() == "&Help"
    texts = [a.text() for a in top.menu().actions() if not a.isSeparator()]
    assert texts == ["&Keyboard shortcuts", "&Tour of rmstudio", "Open &log file", "&About rmstudio"]


def test_question_mark_opens_the_shortcuts_with_the_label_keys(window, qtbot):
    qtbot.keyClick(window, "?")
    dialog = window.help_menu.dialog
    assert dialog is not None and dialog.isVisible()
    table = dialog.table
    rows = [tuple(table.item(r, c).text() for c in range(3)) for r in range(table.rowCount())]
    assert ("Label", "1", "Left better") in rows
    assert ("Label", "Shift+2", "Right much better") in rows
    assert ("Label", "Space", "Skip") in rows
    assert ("File", "Ctrl+O", "Open project") in rows  # read from the menus themselves
    assert any(r[0] == "Rank" for r in rows)


def test_question_mark_in_a_text_field_is_just_text(window, qtbot):
    from PySide6.QtWidgets import QLineEdit

    window.annotator_box.setFocus()
    editor: QLineEdit = window.annotator_box.lineEdit()
    editor.clear()
    qtbot.keyClicks(editor, "why?")
    assert editor.text() == "why?"
    assert window.help_menu.dialog is None


def test_open_log_file_opens_the_log_under_the_data_folder(window, monkeypatch, tmp_path):
    from rmstudio.core.paths import data_dir

    opened = []
    monkeypatch.setattr(window.help_menu, "open_url", lambda url: opened.append(url.toLocalFile()) or True)
    window.help_menu.log_action.trigger()
    assert len(opened) == 1
    assert opened[0].startswith(str(data_dir())) and opened[0].endswith("rmstudio.log")


def test_about_names_the_versions(window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    import rmstudio

    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.append((title, text)))
    window.help_menu.about_action.trigger()
    title, text = shown[0]
    assert title == "About rmstudio" and rmstudio.__version__ in text and "PySide6" in text


def test_uncaught_exception_goes_to_the_log_and_a_one_line_box(window, qtbot):
    from rmstudio.gui.startup import configure_logging, handle_uncaught

    path = configure_logging()
    shown = []
    try:
        raise ValueError("the button broke\nsecond line")
    except ValueError:
        handle_uncaught(*sys.exc_info(), parent=window, show=shown.append)
    for handler in logging.getLogger().handlers:
        handler.flush()
    log = path.read_text(encoding="utf-8")
    assert "ValueError: the button broke" in log and "Traceback" in log
    first = shown[0].splitlines()[0]
    assert first == "ValueError: the button broke"
    assert "Help → Open log file" in shown[0]


def test_install_excepthook_replaces_and_reports(window, monkeypatch):
    from rmstudio.gui import startup

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    seen = []
    monkeypatch.setattr(startup, "handle_uncaught", lambda *args, **kw: seen.append(args[1]))
    startup.install_excepthook(window)
    error = RuntimeError("x")
    sys.excepthook(RuntimeError, error, None)
    assert seen == [error]


def test_the_window_icon_has_every_size(qtbot):
    from rmstudio.gui.startup import app_icon, icon_files

    assert [int(p.stem.split("-")[1]) for p in icon_files()] == [16, 24, 32, 48, 64, 128, 256, 512]
    icon = app_icon()
    assert not icon.isNull()
    assert icon.pixmap(64, 64).size().width() == 64


def test_a_failed_background_job_leaves_its_traceback_in_the_log(qtbot):
    from PySide6.QtCore import QObject

    from rmstudio.gui.startup import configure_logging
    from rmstudio.gui.worker import start_job

    path = configure_logging()
    owner = QObject()
    failures = []

    def job(_sink):
        raise OSError("disk went away")

    thread, _worker = start_job(owner, job, on_failed=lambda message, _details: failures.append(message))
    qtbot.waitUntil(lambda: failures == ["disk went away"], timeout=5000)
    thread.wait(5000)
    for handler in logging.getLogger().handlers:
        handler.flush()
    log = path.read_text(encoding="utf-8")
    assert "a background job failed" in log and "OSError: disk went away" in log
