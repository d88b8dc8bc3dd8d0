"""Start the Qt application."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from rmstudio.core.data.demo import HH_WARNING, demo_project_path


def run_app(project: str | None = None, demo: str | None = None) -> int:
    from rmstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("rmstudio")
    app.setOrganizationName("rmstudio")
    window = MainWindow()
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
