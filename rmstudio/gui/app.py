"""Start the Qt application."""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from rmstudio.core.data.demo import HH_WARNING, demo_project_path
from rmstudio.gui.fonts import install_emoji_fallback
from rmstudio.gui.startup import app_icon, configure_logging, install_excepthook, platform_problem


def run_app(project: str | None = None, demo: str | None = None) -> int:
    from rmstudio.gui.main_window import MainWindow

    problem = platform_problem()  # before QApplication: a missing xcb library aborts it
    if problem:
        print(problem, file=sys.stderr)
        return 1
    log_path = configure_logging()
    # Qt 6 scales for high DPI by itself; PassThrough keeps a 150% screen at 1.5 rather than
    # rounding it to 2 (too big) or 1 (too small). It must be set before the QApplication exists.
    if QApplication.instance() is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("rmstudio")
    app.setOrganizationName("rmstudio")
    app.setDesktopFileName("rmstudio")  # Wayland matches the window to rmstudio.desktop's icon
    app.setWindowIcon(app_icon())
    install_emoji_fallback()
    logging.getLogger("rmstudio").info("rmstudio starting; log at %s", log_path)
    window = MainWindow()
    install_excepthook(window)
    window.show()
    if demo == "hh-harmless":
        answer = QMessageBox.warning(window, "Content warning", HH_WARNING + "\n\nOpen it?",
                                     QMessageBox.Open | QMessageBox.Cancel, QMessageBox.Cancel)
        if answer == QMessageBox.Open:
            window.open_project(demo_project_path(demo))
    elif demo:
        window.open_project(demo_project_path(demo))
    elif project:
        window.open_project(project)
    return app.exec()
