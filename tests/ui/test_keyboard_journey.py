"""From first launch to an exported reward model with the keyboard alone (issue 19).

A person who never touches the mouse opens the demo from the welcome screen, goes to Train, picks
a base model, starts an instant run, reads its validation figures and exports the model to a
folder they choose. Every step here is a key press delivered to the widget that has the focus
(QTest sends it through the shortcut map, as a real key press goes), so a control that cannot be
reached with Tab, or an action with no key, fails the test. The only stand-in is the folder
dialog's answer: the folder "chosen" there is returned directly. The base model is a tiny random
one (tests never load the embedded model); a keyboard user types its folder into the picker.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication
from tiny_models import save_tiny_model

MAX_TABS = 80


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def press(qtbot, window, key, modifier=Qt.NoModifier):
    """A key press where the keyboard's focus is (the window itself when nothing has it)."""
    qtbot.keyClick(QApplication.focusWidget() or window, key, modifier)


def tab_to(qtbot, window, target) -> int:
    """Press Tab until ``target`` has the focus; the number of presses. Fails when Tab never
    reaches it: a control the keyboard cannot get to."""
    for presses in range(MAX_TABS):
        if target.hasFocus():
            return presses
        press(qtbot, window, Qt.Key_Tab)
    raise AssertionError(f"{target!r} cannot be reached with Tab ({MAX_TABS} presses)")


def test_demo_to_a_trained_and_exported_model_without_the_mouse(tmp_path, qtbot, tiny_dir):
    import rmstudio
    from rmstudio.gui.main_window import MainWindow

    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=10000)

    # 1. The welcome screen: Alt+D is "Open the demo project".
    press(qtbot, window, Qt.Key_D, Qt.AltModifier)
    qtbot.waitUntil(lambda: window.project is not None, timeout=60000)
    assert window.stack.currentWidget() is window.workspace

    # 2. Ctrl+5 is the fifth workspace, Train; the focus moves into it.
    press(qtbot, window, Qt.Key_5, Qt.ControlModifier)
    page = window.train_page
    assert window.pages.currentWidget() is page
    assert page.isAncestorOf(QApplication.focusWidget()) or QApplication.focusWidget() is page

    # 3. The base model: "Local model folder…" in the picker (arrow key), then its folder typed.
    picker = page.base_picker
    tab_to(qtbot, window, picker.kind_box)
    while picker.kind() != "hf_dir":
        press(qtbot, window, Qt.Key_Down)
    tab_to(qtbot, window, picker.location_edit)
    qtbot.keyClicks(picker.location_edit, str(tiny_dir))
    press(qtbot, window, Qt.Key_Tab)  # leaving the field checks the folder
    assert picker.error() == "" and picker.source().location == str(tiny_dir)

    # 4. Ctrl+Enter starts the run (an instant model: the default method).
    with qtbot.waitSignal(page.sig_run_finished, timeout=180000) as finished:
        press(qtbot, window, Qt.Key_Return, Qt.ControlModifier)
    result = finished.args[0]
    assert result["status"] == "finished"

    # 5. Validation figures are on screen, and they are the run's own: the demo is small, so the
    #    run cross-validates by prompt and every labeled pair gets an out-of-fold score.
    from rmstudio.core.reward.cross_validation import describe

    headline = page.results.headline.text()
    evaluation = result["evaluation"]
    assert evaluation.get("pairs", 0) > 0, "the demo's first run must be measured on held-out labels"
    folds = evaluation["cross_validation"]
    assert folds["folds"] >= 2
    assert describe(folds)[1:] in headline

    # 6. Alt+X exports the model to the folder the user chooses.
    bar = page.results.export_bar
    chosen = tmp_path / "my models"
    chosen.mkdir()
    bar.choose_destination = lambda: str(chosen)
    assert bar.isVisible()
    press(qtbot, window, Qt.Key_X, Qt.AltModifier)
    qtbot.waitUntil(lambda: bar.exported is not None, timeout=60000)
    exported = bar.exported
    assert exported.is_relative_to(chosen)
    model = rmstudio.load_reward_model(exported)
    reward = model.score("How do I boil an egg?", "Put it in boiling water for nine minutes.")
    assert isinstance(reward, float)

    window.close_project()
