"""The Train workspace: pick a method, see the split before it starts, watch it learn, read the results.

The page joins three parts: ``TrainSettings`` (the settings and the split preview), the shared
``RunPanel`` (the reward run kind in a child process, recorded by the window's store writer,
curves as the kind declares) and ``ResultsPanel``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QTabWidget, QVBoxLayout, QWidget

from rmstudio.core.errors import RmstudioError
from rmstudio.core.labeling.relabel import send_to_relabel
from rmstudio.core.reward.kind import REWARD
from rmstudio.core.reward.train import RewardTrainConfig, runs_dir
from rmstudio.core.runs.store import list_runs
from rmstudio.core.store.project import Project
from rmstudio.gui.run_panel import RunPanel
from rmstudio.gui.store_writer import StoreWriter
from rmstudio.gui.train_results import ResultsPanel
from rmstudio.gui.train_settings import TrainSettings


class TrainPage(QWidget):
    sig_run_finished = Signal(dict)  # the result of the reward run (status finished or cancelled)

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.annotator = ""
        self._running_method = ""

        self.settings = TrainSettings()
        self.settings.sig_changed.connect(self._update_buttons)
        self.settings.sig_preview_wanted.connect(self._schedule_preview)
        s = self.settings  # its parts under the names the page always had (tests, scripts)
        self.method_buttons, self.method_group, self.base_picker = s.method_buttons, s.method_group, s.base_picker
        self.objective, self.val_share, self.seed = s.objective, s.val_share, s.seed
        self.finetune_box, self.preview = s.finetune_box, s.preview

        self.panel = RunPanel()
        self.panel.set_idle_note("Press Start: the curves of a LoRA or full fine-tune appear here as it "
                                 "trains; an instant run shows its progress above and opens Results.")
        self.panel.connect_page(self.start, self._on_run_finished, self._update_buttons)
        self.start_button, self.cancel_button = self.panel.start_button, self.panel.cancel_button
        self.resume_button, self.status, self.progress = (self.panel.resume_button, self.panel.status,
                                                          self.panel.progress)

        outer = QHBoxLayout(self)
        outer.setContentsMargins(16, 16, 16, 16)
        splitter = QSplitter(Qt.Horizontal)
        outer.addWidget(splitter)
        left, scroll = self.panel.settings_column(self.settings)
        # Never narrower than the settings need: the scroll area only scrolls vertically.
        fits = self.settings.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
        left.setMinimumWidth(max(330, fits))
        splitter.addWidget(left)
        self.tabs = QTabWidget()
        live = QWidget()
        live_layout = QVBoxLayout(live)
        live_layout.setContentsMargins(8, 8, 0, 0)
        live_layout.addWidget(self.panel)
        self.tabs.addTab(live, "Live")
        self.results = ResultsPanel()
        self.results.sig_relabel_requested.connect(self._on_relabel_requested)
        self.tabs.addTab(self.results, "Results")
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([max(360, fits), 840])

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self.refresh_preview)
        self._update_buttons()

    # -- project, annotator, writer ------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        if project is not self.project:
            self.shutdown()
            self.results.clear()
            self.panel.reset()
        self.project = project
        self.refresh_preview()

    def set_annotator(self, name: str) -> None:
        self.annotator = name  # training uses everyone's labels; kept for the relabel note

    def labels_changed(self) -> None:
        """Connect to the Label page's sig_labeled: the preview follows new labels. While the page
        is hidden (someone is labeling) it waits for showEvent: reading every labeled pair after
        each label cost the window up to ~50 ms per key press on a large project."""
        if self.isVisible():
            self._schedule_preview()

    def set_writer(self, writer: StoreWriter | None) -> None:
        """The window's store writer, which records runs (one writer); see ``RunPanel.set_writer``."""
        self.panel.set_writer(writer)

    def shutdown(self) -> None:
        """Stop a running job and wait for it (before the project closes or the app quits):
        what it reported is recorded before the writer stops."""
        self.panel.shutdown()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._schedule_preview()

    # -- settings ------------------------------------------------------------------------

    @property
    def split(self) -> dict:
        return self.settings.split

    def method(self) -> str:
        return self.settings.method()

    def config(self) -> RewardTrainConfig:
        """The settings on screen as a config; raises ValueError or ModelError with a message."""
        return self.settings.config()

    def _schedule_preview(self) -> None:
        self._preview_timer.start()

    def refresh_preview(self) -> None:
        self.settings.refresh_preview(self.project)
        self._update_buttons()

    # -- running -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.panel.running

    @property
    def _worker(self):
        return self.panel.job

    def start(self, resume: bool = False) -> None:
        if self.project is None or self.running:
            return
        try:
            config = self.config()
        except (ValueError, RmstudioError) as exc:
            self.panel.show_error("Cannot start training", str(exc))
            return
        if resume:
            latest = self._latest_run()
            config.finetune["resume"] = str(runs_dir(self.project.path) / f"run-{latest['id']}")
        self._running_method = config.method
        self.results.clear()
        self.tabs.setCurrentIndex(0)
        # Every method runs in a child process: a native crash or an out-of-memory kill ends the
        # child, not the window, and training never holds this interpreter (an instant run in a
        # thread here made the window stall for up to 427 ms).
        self.panel.run(REWARD, self.project.path, config,
                       status=f"Training {config.method} on {config.base}…")

    def cancel(self) -> None:
        self.panel.cancel()

    def resume(self) -> None:
        self.start(resume=True)

    def _latest_run(self) -> dict | None:
        """The latest reward run of the chosen method (the one Resume would continue)."""
        runs = list_runs(self.project, "reward") if self.project is not None else []
        runs = [r for r in runs if r["config"].get("method") == self.method()]
        return runs[-1] if runs else None

    def _on_run_finished(self, result: dict) -> None:
        self.results.show_result(result)
        if result.get("status", "finished") == "finished" or self._running_method == "instant":
            self.tabs.setCurrentWidget(self.results)
        self.refresh_preview()
        self.sig_run_finished.emit(result)

    def _update_buttons(self) -> None:
        has_pairs = self.project is not None and self.split.get("pairs", 0) > 0
        self.panel.set_can_start(self.project is not None, "" if has_pairs else
                                 "Label some pairs first (A, B or tie).")
        fine_tune = self.method() != "instant"
        self.panel.set_can_resume(
            fine_tune and self.project is not None and self._latest_run() is not None,
            "Continue the latest fine-tune run from its last checkpoint." if fine_tune else
            "Only fine-tunes (LoRA, full) can be resumed; the instant method takes seconds.")
        self.settings.set_running(self.running)

    def _on_relabel_requested(self, comparison_ids: list) -> None:
        if self.project is None:
            return
        try:
            n = send_to_relabel(self.project, comparison_ids)
        except RmstudioError as exc:
            self.panel.show_error("Could not queue the pairs", str(exc))
            return
        self.results.relabel_status.setText(f"{n} pair{'s' * (n != 1)} queued for review: the Label "
                                            "page shows them first.")
