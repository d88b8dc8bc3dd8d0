"""The main window: a welcome screen until a project is open, then the workspaces."""

from __future__ import annotations

import getpass
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QListWidget, QMainWindow, QMessageBox, QStackedWidget, QToolBar, QWidget,
)

from rmstudio.core.data.demo import HH_WARNING, demo_project_path
from rmstudio.core.errors import RmstudioError
from rmstudio.core.store.integrity import DamagedProject, as_damage
from rmstudio.core.store.project import SUFFIX, Project
from rmstudio.gui.backup_actions import BackupScheduler, choose_and_restore, offer_restore
from rmstudio.gui.browse_page import BrowsePage
from rmstudio.gui.data_page import DataPage
from rmstudio.gui.device_menu import DeviceChoice
from rmstudio.gui.diagnostics_page import DiagnosticsPage
from rmstudio.gui.help_menu import install_help_menu
from rmstudio.gui.workspace_menu import install_workspace_menu
from rmstudio.gui.label_page import LabelPage
from rmstudio.gui.live_model import LiveModelController
from rmstudio.gui.ranking_page import RankingPage
from rmstudio.gui.runs_page import RunsPage
from rmstudio.gui.optimize_page import OptimizePage
from rmstudio.gui.score_page import ScorePage
from rmstudio.gui.theme import install_theme
from rmstudio.gui.tour import install_tour
from rmstudio.gui.train_page import TrainPage
from rmstudio.gui.welcome_page import WelcomePage
from rmstudio.gui.window_state import restore_window_state, save_window_state, workspace_row

PROJECT_FILTER = f"rmstudio projects (*{SUFFIX});;All files (*)"
MAX_RECENT = 8


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.settings = settings or QSettings("rmstudio", "rmstudio")
        self.project: Project | None = None
        self.annotator = self.settings.value("annotator", getpass.getuser() or "annotator")
        self.setWindowTitle("rmstudio")
        self.resize(1200, 800)

        self.nav = QListWidget()
        self.nav.setFixedWidth(150)
        self.nav.setObjectName("navigation")
        self.nav.setStyleSheet("QListWidget#navigation { font-size: 14px; }"
                               "QListWidget#navigation::item { padding: 8px 12px; }")
        self.pages = QStackedWidget()
        self.data_page = DataPage()
        self.label_page = LabelPage()
        self.ranking_page = RankingPage()
        self.browse_page = BrowsePage()
        self.train_page = TrainPage()
        self.score_page = ScorePage()
        self.diagnostics_page = DiagnosticsPage()
        self.optimize_page = OptimizePage()
        self.runs_page = RunsPage()
        self.project_pages = [self.data_page, self.label_page, self.ranking_page, self.browse_page,
                              self.train_page, self.score_page, self.diagnostics_page, self.optimize_page,
                              self.runs_page]
        built = {"Data": self.data_page, "Label": self.label_page, "Rank": self.ranking_page,
                 "Browse": self.browse_page, "Train": self.train_page, "Score": self.score_page,
                 "Diagnose": self.diagnostics_page, "Optimize": self.optimize_page, "Runs": self.runs_page}
        for title, page in built.items():  # the workspaces in the order of the loop they serve
            self.nav.addItem(title)
            self.pages.addWidget(page)
        self.label_page.sig_labeled.connect(self.data_page.refresh)
        self.label_page.sig_labeled.connect(self.train_page.labels_changed)
        self.label_page.sig_labeled.connect(self.optimize_page.labels_changed)
        self.live_model = LiveModelController(self)
        self.label_page.sig_labeled.connect(self.live_model.labels_changed)
        self.label_page.attach_live_model(self.live_model)  # "most informative first" follows its fits
        self.train_page.sig_run_finished.connect(lambda _result: self.runs_page.refresh())
        # A new reward model is at once a choice on the Score page.
        self.train_page.sig_run_finished.connect(lambda _result: self.score_page.set_project(self.project))
        self.train_page.sig_run_finished.connect(lambda _result: self.optimize_page.set_project(self.project))
        self.optimize_page.sig_run_finished.connect(lambda _result: self.runs_page.refresh())
        self.score_page.sig_pairs_sent.connect(lambda _added: self.data_page.refresh())
        self.data_page.sig_project_changed.connect(self._on_project_data_changed)
        self.ranking_page.sig_ranking_saved.connect(lambda _pid: self.browse_page.refresh())
        self.browse_page.sig_open_comparison.connect(self._on_open_comparison)
        self.nav.currentRowChanged.connect(self._on_workspace_changed)

        self.workspace = QWidget()
        body = QHBoxLayout(self.workspace)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.nav)
        body.addWidget(self.pages, 1)
        self.welcome = WelcomePage(self)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.workspace)
        self.setCentralWidget(self.stack)

        self.status_project = QLabel("No project open")
        self.status_annotator = QLabel(f"Annotator: {self.annotator}")
        self._build_annotator_bar()
        self.devices = DeviceChoice(self, self.settings)
        self.devices.sig_changed.connect(self._on_device_changed)
        self.status_device = self.devices.button
        self.device_menu, self.device_actions = self.devices.menu, self.devices.actions
        self.status_live = QLabel("")
        self.live_model.sig_status.connect(self.status_live.setText)
        for widget in (self.status_live, self.status_project, self.status_annotator, self.status_device):
            self.statusBar().addPermanentWidget(widget)
        self.backups = BackupScheduler(self)
        self.backups.sig_status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self._build_menu()
        self._build_settings_menu()
        self.theme = install_theme(self, self.settings)
        install_workspace_menu(self, self.nav)
        install_help_menu(self)
        restore_window_state(self, self.settings, self.project_pages)
        install_tour(self, self.settings)
        if self.live_action.isChecked():
            self.live_model.set_enabled(True)
        self.welcome.show_recent(self.recent_projects())

    # -- menus ---------------------------------------------------------------------------

    def _build_menu(self) -> None:
        menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in [
            ("&New project…", QKeySequence.New, self.new_project_dialog),
            ("&Open project…", QKeySequence.Open, self.open_project_dialog),
            ("Open &demo project", None, self.open_demo),
            ("&Close project", QKeySequence.Close, self.close_project),
            ("&Back up now", None, lambda: self.backups.backup_now()),
            ("&Restore backup…", None, self.restore_backup_dialog),
            ("&Quit", QKeySequence.Quit, self.close),
        ]:
            action = QAction(text, self)
            if shortcut:
                action.setShortcut(shortcut)
            action.triggered.connect(slot)
            menu.addAction(action)

    def _build_settings_menu(self) -> None:
        settings_menu = self.menuBar().addMenu("&Settings")
        settings_menu.addMenu(self.devices.menu)
        self.live_action = QAction("&Live instant reward model (refits as you label)", self, checkable=True)
        self.live_action.setChecked(self.settings.value("live_model", "false") == "true")
        self.live_action.toggled.connect(self._on_live_toggled)
        settings_menu.addAction(self.live_action)
        self.data_page.device_preference = self.devices.preference()

    def device_preference(self) -> str:
        """The chosen device ('auto', 'cpu', 'cuda', 'mps'), or 'auto' where it is not available."""
        return self.devices.preference()

    def set_device_preference(self, key: str) -> None:
        self.devices.set_preference(key)

    def _on_device_detected(self, found: dict) -> None:
        self.devices.on_detected(found)

    def _on_device_changed(self, preference: str, available) -> None:
        self.data_page.device_preference = preference
        if available is not None:
            self.data_page.available_devices = set(available)

    def _build_annotator_bar(self) -> None:
        """Who is labeling: every label carries this name. Pick one or type a new one."""
        bar = QToolBar("Annotator")
        bar.setObjectName("annotator_bar")
        bar.setMovable(False)
        bar.addWidget(QLabel(" Annotator: "))
        self.annotator_box = QComboBox()
        self.annotator_box.setEditable(True)
        self.annotator_box.setMinimumWidth(180)
        self.annotator_box.setToolTip("Your name; each label is stored with it. Type a new name to add one.")
        self.annotator_box.lineEdit().editingFinished.connect(
            lambda: self.set_annotator(self.annotator_box.currentText()))
        self.annotator_box.activated.connect(lambda _i: self.set_annotator(self.annotator_box.currentText()))
        bar.addWidget(self.annotator_box)
        self.addToolBar(bar)
        self._fill_annotators()

    def _fill_annotators(self) -> None:
        names = [self.annotator]
        if self.project is not None:
            names += [a["name"] for a in self.project.annotators() if a["kind"] == "human"]
        self.annotator_box.blockSignals(True)
        self.annotator_box.clear()
        self.annotator_box.addItems(list(dict.fromkeys(names)))
        self.annotator_box.setCurrentText(self.annotator)
        self.annotator_box.blockSignals(False)

    def set_annotator(self, name: str) -> None:
        name = name.strip()
        if not name or name == self.annotator:
            self.annotator_box.setCurrentText(self.annotator)
            return
        if name.startswith("source:"):
            QMessageBox.warning(self, "Annotator", "Names starting with 'source:' belong to imported data.")
            self.annotator_box.setCurrentText(self.annotator)
            return
        self.annotator = name
        self.settings.setValue("annotator", name)
        self.status_annotator.setText(f"Annotator: {name}")
        for page in (self.label_page, self.ranking_page, self.browse_page):
            page.set_annotator(name)

    def ask_annotator(self) -> None:
        name, ok = QInputDialog.getText(self, "Who is labeling?",
                                        "Your name (stored with every label you give):",
                                        text=self.annotator)
        if ok:
            self.set_annotator(name)

    def _on_workspace_changed(self, row: int) -> None:
        self.pages.setCurrentIndex(row)
        page = self.pages.currentWidget()
        if page is self.browse_page and self.project is not None:
            self.browse_page.refresh()
        elif page is self.data_page:
            self.data_page.refresh()

    def _on_project_data_changed(self) -> None:
        self.label_page.show_next()
        self.ranking_page.refresh()

    def _on_open_comparison(self, comparison_id: int) -> None:
        self.nav.setCurrentRow(1)
        self.label_page.show_comparison(comparison_id)

    # -- projects ------------------------------------------------------------------------

    def recent_projects(self) -> list[str]:
        paths = self.settings.value("recent_projects", []) or []
        if isinstance(paths, str):
            paths = [paths]
        return [p for p in paths if Path(p).exists()]

    def _remember(self, path: Path) -> None:
        paths = [str(path)] + [p for p in self.recent_projects() if p != str(path)]
        self.settings.setValue("recent_projects", paths[:MAX_RECENT])

    def open_project(self, path: str | Path) -> bool:
        try:
            project = Project.open(path)
        except RmstudioError as exc:
            return self._refused(exc)
        try:
            self._set_project(project)
        except Exception as exc:
            # The bounded check on open may not reach every page of a big file: damage met by
            # the first reads closes the project again rather than leave the window half-open.
            self.close_project()
            damage = as_damage(exc, project.path)
            if damage is None:
                raise
            return self._refused(damage)
        if project.warning:
            self.status_project.setText(f"Project: {project.path.name} ⚠")
            self.status_project.setToolTip(project.warning)
            QMessageBox.warning(self, "Project on a shared folder", project.warning)
        return True

    def _refused(self, exc: RmstudioError) -> bool:
        if isinstance(exc, DamagedProject):
            # Nothing was written to it; offer the newest intact backup (the file is kept).
            problem = f"{exc.path.name} is damaged ({exc.reason}). Nothing was written to it."
            if offer_restore(self, exc.path, problem):
                return self.open_project(exc.path)
            return False
        QMessageBox.warning(self, "Cannot open project", str(exc))
        return False

    def restore_backup_dialog(self) -> None:
        """File → Restore backup…: close the project, put the chosen backup in its place, reopen."""
        if self.project is None:
            QMessageBox.information(self, "Restore backup", "Open the project to restore first.")
            return
        path = self.project.path
        self.close_project()
        choose_and_restore(self, path)
        self.open_project(path)

    def _set_project(self, project: Project) -> None:
        self.close_project()
        self.project = project
        self._remember(project.path)
        self.status_project.setText(f"Project: {project.path.name}")
        self.setWindowTitle(f"{project.path.name} — rmstudio")
        for page in self.project_pages[1:]:  # the Data page has no annotator
            page.set_annotator(self.annotator)
        for page in self.project_pages:
            page.set_project(project)
        self._fill_annotators()
        self.live_model.set_project(str(project.path))
        self.backups.attach(self.label_page.writer)
        self.train_page.set_writer(self.label_page.writer)  # runs are recorded by the one writer
        self.score_page.set_writer(self.label_page.writer)  # so are the pairs Score sends to labeling
        self.optimize_page.set_writer(self.label_page.writer)
        self.diagnostics_page.set_writer(self.label_page.writer)  # pairs sent back to the label queue
        self.stack.setCurrentWidget(self.workspace)
        # An empty project opens on Data (import first); others where the user last was.
        has_pairs = project.counts()["comparisons"]
        self.nav.setCurrentRow(workspace_row(self.settings, self.nav, 1) if has_pairs else 0)

    def _on_live_toggled(self, enabled: bool) -> None:
        self.settings.setValue("live_model", "true" if enabled else "false")
        self.live_model.set_enabled(enabled)

    def close_project(self) -> None:
        # Pages first: the label writer thread finishes its queued writes and a running
        # training job stops before the connection closes.
        self.train_page.shutdown()
        self.score_page.shutdown()
        self.score_page.set_writer(None)
        self.optimize_page.shutdown()
        self.live_model.set_project(None)
        self.backups.tick()  # a changed project gets its rolling backup before it closes
        self.backups.attach(None)
        for page in self.project_pages:
            page.set_project(None)
        if self.project is not None:
            self.project.close()
            self.project = None
        self.status_project.setText("No project open")
        self.setWindowTitle("rmstudio")
        self.welcome.show_recent(self.recent_projects())
        self.stack.setCurrentWidget(self.welcome)

    def new_project_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New project", "", PROJECT_FILTER)
        if not path:
            return
        try:
            project = Project.create(path)
        except RmstudioError as exc:
            QMessageBox.warning(self, "Cannot create project", str(exc))
            return
        self._set_project(project)

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", PROJECT_FILTER)
        if path:
            self.open_project(path)

    def open_demo(self) -> None:
        self.open_project(demo_project_path("everyday"))

    def open_hh_demo(self) -> None:
        answer = QMessageBox.warning(
            self, "Content warning", HH_WARNING + "\n\nOpen the example project?",
            QMessageBox.Open | QMessageBox.Cancel, QMessageBox.Cancel)
        if answer == QMessageBox.Open:
            self.open_project(demo_project_path("hh-harmless"))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        save_window_state(self, self.settings, self.project_pages, self.nav)
        self.devices.shutdown()
        self.close_project()
        self.label_page.shutdown()
        self.live_model.shutdown()
        super().closeEvent(event)
