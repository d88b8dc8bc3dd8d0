"""Remembered layout, light/dark themes and the first-run tour (issue #19)."""

from __future__ import annotations

import pytest
from conftest import write_jsonl

from rmstudio.core.store.project import Project

TIMEOUT = 180_000


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


@pytest.fixture(autouse=True)
def keep_app_palette(qapp):
    """A theme is application-wide: put back the palette so later tests see the usual one."""
    before = qapp.palette()
    yield
    qapp.setPalette(before)


@pytest.fixture
def open_window(qtbot, settings):
    """A function making a shown MainWindow on the test's settings; all are closed at the end."""
    from rmstudio.gui.main_window import MainWindow

    made = []

    def make():
        win = MainWindow(settings=settings)
        # No device detection: it imports torch on a thread that close() waits for, which a
        # loaded machine makes slow, and these tests never look at the device.
        win.devices.shutdown()
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        made.append(win)
        return win

    yield make
    for win in made:
        win.close()


@pytest.fixture
def project_path(tmp_path):
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        from rmstudio.core.data.importer import import_files

        import_files(project, [write_jsonl(tmp_path / "d.jsonl", [
            {"prompt": f"q{i}", "chosen": "x", "rejected": "y"} for i in range(3)])])
    return path


def _window_colour_lightness(qapp) -> int:
    from PySide6.QtGui import QPalette

    return qapp.palette().color(QPalette.Window).lightness()


# -- layout ---------------------------------------------------------------------------------

def test_size_workspace_and_splitters_survive_close_and_reopen(open_window, project_path, qtbot):
    from rmstudio.gui.window_state import splitters

    first = open_window()
    # Offscreen the screen is 800 px wide and the window's minimum wider: only the height is free.
    first.resize(first.width(), 760)
    size = first.size()
    assert size.height() == 760
    assert first.open_project(project_path)
    first.nav.setCurrentRow(5)  # Score
    assert first.nav.currentItem().text() == "Score"
    splitter = splitters(first.project_pages)["ScorePage/0"]
    splitter.setSizes([250, 750])
    qtbot.waitUntil(lambda: splitter.sizes()[0] != 0, timeout=TIMEOUT)
    wanted = splitter.sizes()
    assert wanted[0] < wanted[1]
    first.close()

    second = open_window()
    assert second.size() == size
    assert second.open_project(project_path)
    assert second.nav.currentItem().text() == "Score"
    again = splitters(second.project_pages)["ScorePage/0"]
    qtbot.waitUntil(lambda: again.sizes() == wanted, timeout=TIMEOUT)


def test_every_page_with_a_splitter_is_remembered(open_window, settings):
    window = open_window()
    from rmstudio.gui.window_state import splitters

    keys = set(splitters(window.project_pages))
    assert {"LabelPage/0", "ScorePage/0", "TrainPage/0", "RunsPage/0", "BrowsePage/0"} <= keys
    window.close()
    assert {f"window/splitters/{key}" for key in keys} <= set(settings.allKeys())


def test_an_empty_project_opens_on_data_whatever_was_last(open_window, settings, tmp_path):
    settings.setValue("window/workspace", "Score")
    path = tmp_path / "empty.rmstudio"
    Project.create(path).close()
    window = open_window()
    assert window.open_project(path)
    assert window.nav.currentItem().text() == "Data"


def test_unreadable_saved_state_keeps_the_defaults(open_window, settings):
    settings.setValue("window/geometry", "not bytes")
    settings.setValue("window/splitters/ScorePage/0", 42)
    window = open_window()
    assert window.isVisible()


# -- themes ---------------------------------------------------------------------------------

def test_the_theme_choice_changes_the_palette_and_is_remembered(open_window, qapp, qtbot):
    window = open_window()
    assert window.theme.choice == "system"
    assert window.theme.actions["system"].isChecked()
    window.theme.actions["dark"].trigger()
    assert _window_colour_lightness(qapp) < 128
    # widgets hear of a new application palette through an event
    qtbot.waitUntil(lambda: window.palette().color(window.palette().ColorRole.Window).lightness() < 128,
                    timeout=TIMEOUT)
    window.close()

    again = open_window()
    assert again.theme.choice == "dark"
    assert again.theme.actions["dark"].isChecked()
    assert _window_colour_lightness(qapp) < 128
    again.theme.actions["light"].trigger()
    assert _window_colour_lightness(qapp) > 128


def test_system_follows_the_os_scheme_live_and_light_does_not(open_window, qapp, monkeypatch):
    from PySide6.QtCore import Qt

    window = open_window()
    monkeypatch.setattr(window.theme, "os_scheme", lambda: Qt.ColorScheme.Dark)
    qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert _window_colour_lightness(qapp) < 128
    window.theme.set_choice("light")
    qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert _window_colour_lightness(qapp) > 128


def test_role_colours_and_styled_widgets_follow_the_theme(open_window, qtbot):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QLabel

    from rmstudio.gui.pages import heading
    from rmstudio.gui.plots import make_plot
    from rmstudio.gui.theme import ROLE_COLOURS, colour, themed_style

    window = open_window()
    note = QLabel("failed", window)
    themed_style(note, "color: {error};")
    title = heading("A heading")  # a stylesheet without colours keeps following the palette
    title.setParent(window)
    plot = make_plot(window, "loss")
    window.theme.set_choice("light")
    assert colour("error") == ROLE_COLOURS["error"][0] and ROLE_COLOURS["error"][0] in note.styleSheet()
    window.theme.set_choice("dark")
    assert colour("error") == ROLE_COLOURS["error"][1]
    qtbot.waitUntil(lambda: ROLE_COLOURS["error"][1] in note.styleSheet(), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: title.palette().color(QPalette.WindowText).lightness() > 128, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: plot.backgroundBrush().color().lightness() < 128, timeout=TIMEOUT)


def test_the_heat_map_is_redrawn_for_a_new_theme(open_window, qtbot):
    from rmstudio.gui.score_explain import ExplainView

    window = open_window()
    window.theme.set_choice("light")
    view = ExplainView(window)
    view._show(["good", " bad"], [1.0, -1.0])
    light_html = view.heat.toHtml()
    window.theme.set_choice("dark")
    qtbot.waitUntil(lambda: view.heat.toHtml() != light_html, timeout=TIMEOUT)
    assert view.weights == [1.0, -1.0]


# -- the tour -------------------------------------------------------------------------------

def test_the_tour_shows_on_first_run_and_not_after_skip(open_window, settings):
    first = open_window()
    assert first.tour.isVisible()
    assert "step 1 of" in first.tour.heading.text()
    first.tour.skip_button.click()
    assert not first.tour.isVisible()
    first.close()
    assert settings.value("tour/seen") == "true"
    assert not open_window().tour.isVisible()


def test_the_tour_walks_the_loop_and_reopens_from_help(open_window, project_path):
    from rmstudio.gui.tour import STEPS

    window = open_window()
    assert window.open_project(project_path)
    tour = window.tour
    opened = []
    for _ in STEPS[1:]:
        tour.next_button.click()
        opened.append(window.nav.currentItem().text())
        assert not tour.note.isVisible()  # a project is open: the workspace is shown itself
    assert opened == ["Label", "Train", "Score", "Optimize"]
    tour.back_button.click()
    assert window.nav.currentItem().text() == "Score"
    tour.next_button.click()
    assert tour.next_button.text() == "Finish"
    tour.next_button.click()
    assert not tour.isVisible()
    assert str(window.settings.value("tour/seen")) == "true"

    window.help_menu.tour_action.trigger()
    assert tour.isVisible() and "step 1 of" in tour.heading.text()


def test_without_a_project_the_tour_says_to_open_one(open_window):
    window = open_window()
    window.tour.next_button.click()
    assert window.stack.currentWidget() is window.welcome
    assert not window.tour.note.isHidden()


def test_the_label_page_redraws_its_highlights_for_a_new_theme(open_window, tmp_path, qtbot):
    from rmstudio.gui.theme import ROLE_COLOURS

    path = tmp_path / "near.rmstudio"
    with Project.create(path) as project:
        from rmstudio.core.data.importer import import_files

        import_files(project, [write_jsonl(tmp_path / "near.jsonl", [
            {"prompt": "How often?", "response_a": "Water it when the soil is dry, every two days.",
             "response_b": "Water it when the soil is wet, every two days."}])])
    window = open_window()
    window.theme.set_choice("light")
    assert window.open_project(path)
    window.nav.setCurrentRow(1)
    window.label_page.diff_check.setChecked(True)
    light, dark = ROLE_COLOURS["diff_background"]
    qtbot.waitUntil(lambda: light in window.label_page.left_view.toHtml(), timeout=TIMEOUT)
    window.theme.set_choice("dark")
    qtbot.waitUntil(lambda: dark in window.label_page.left_view.toHtml(), timeout=TIMEOUT)


def _contrast(a, b) -> float:
    """WCAG contrast ratio of two QColors."""
    def luminance(c):
        channels = [x / 255 for x in (c.red(), c.green(), c.blue())]
        r, g, b = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("dark", [False, True])
def test_role_colours_read_on_their_theme(qapp, dark):
    """Text roles reach WCAG AA (4.5:1) on both the window and the text areas of their theme."""
    from PySide6.QtGui import QColor, QPalette

    from rmstudio.gui.theme import ROLE_COLOURS, dark_palette, light_palette

    palette = dark_palette() if dark else light_palette()
    for role in ("error", "warning", "success", "info"):
        for ground in (QPalette.Window, QPalette.Base):
            ratio = _contrast(QColor(ROLE_COLOURS[role][int(dark)]), palette.color(ground))
            assert ratio >= 4.5, (role, ground, round(ratio, 2))
    diff_ratio = _contrast(QColor(ROLE_COLOURS["diff_text"][int(dark)]),
                           QColor(ROLE_COLOURS["diff_background"][int(dark)]))
    assert diff_ratio >= 4.5
    for role in (QPalette.Text, QPalette.WindowText, QPalette.PlaceholderText, QPalette.Link):
        assert _contrast(palette.color(role), palette.color(QPalette.Base)) >= 4.5, role


def test_a_stored_theme_that_is_not_a_choice_means_system(open_window, settings):
    settings.setValue("theme", "purple")
    window = open_window()
    assert window.theme.choice == "system"
    with pytest.raises(ValueError, match="unknown theme 'purple'"):
        window.theme.set_choice("purple")


def test_the_window_icon_is_sharp_at_sizes_no_png_has(qapp):
    from rmstudio.gui.startup import app_icon

    pixmap = app_icon().pixmap(100, 100)
    assert (pixmap.width(), pixmap.height()) == (100, 100)
