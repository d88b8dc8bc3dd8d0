"""The run panel: start, watch, cancel and resume any run kind, the same way on every page.

A page owns the settings and builds the config; the panel owns everything about running it:
the child process (``RunJob``, recorded by the window's store writer), the stage text and the
progress bar, the live curves the kind declares (``LivePlots``), cancel, resume and the error.
It knows no kind: what it shows comes from the progress protocol of ``core.progress``
(``message``; ``done``/``total``/``unit``; ``total_steps``) and from ``kind.plots_of(config)``.

The Start/Cancel/Resume buttons live in ``controls``, a widget the page places where its
settings end; Start and Resume only ask the page (``sig_start_requested``), which has the
settings, to call ``run``.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton, QScrollArea, QVBoxLayout, QWidget,
)

from rmstudio.core.runs.kinds import RunKind
from rmstudio.core.timefmt import format_duration
from rmstudio.gui.live_plots import LivePlots
from rmstudio.gui.run_job import RunJob
from rmstudio.gui.store_writer import StoreWriter
from rmstudio.gui.theme import themed_style

ETA_AFTER_S = 2.0  # an estimate from the first second of a stage is mostly noise


START_KEYS = "Ctrl+Return"


class RunPanel(QWidget):
    sig_start_requested = Signal(bool)  # resume?
    sig_finished = Signal(dict)  # the run's result (status finished or cancelled)
    sig_failed = Signal(str, str)  # message, details
    sig_running = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.job: RunJob | None = None
        self.writer: StoreWriter | None = None  # the window's store writer: records the runs
        self._own_writer: StoreWriter | None = None
        self._last_job: RunJob | None = None  # finished, its child may still be exiting
        self.kind: RunKind | None = None
        self.last_error = ""
        self.error_box: QMessageBox | None = None
        self._can_start = self._can_resume = False
        self._bar_key = None  # what the bar counts now: (unit, total), for the ETA
        self._bar_started = (0.0, 0)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("Ready.")
        self.status.setObjectName("run_status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        layout.addWidget(self.progress)
        self.note = QLabel("")
        self.note.setObjectName("run_note")
        self.note.setWordWrap(True)
        self.note.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        layout.addWidget(self.note)
        self.plots = LivePlots(())
        self._plots_at = layout.count()
        layout.addWidget(self.plots, 1)
        self._layout = layout
        layout.setStretchFactor(self.note, 1)
        self.set_idle_note("")

        self.controls = QWidget()
        buttons = QHBoxLayout(self.controls)
        buttons.setContentsMargins(0, 0, 0, 0)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(lambda: self.sig_start_requested.emit(False))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(lambda: self.sig_start_requested.emit(True))
        for button in (self.start_button, self.cancel_button, self.resume_button):
            buttons.addWidget(button)
        # Ctrl+Enter starts from anywhere in the window while this panel is shown (a hidden
        # panel's shortcut does not fire, so Train's and Optimize's never both answer).
        start = QShortcut(QKeySequence(START_KEYS), self, context=Qt.WindowShortcut)
        start.activated.connect(lambda: self.start_button.isEnabled() and self.start_button.click())
        self._update_buttons()

    # -- what the page tells the panel ---------------------------------------------------

    def connect_page(self, start, finished, running_changed) -> None:
        """Wire the page that owns the settings: Start and Resume call ``start(resume=...)``, a
        finished run goes to ``finished(result)``, and ``running_changed()`` runs whenever a run
        starts or ends (the page re-checks what may be edited)."""
        self.sig_start_requested.connect(lambda resume: start(resume=resume))
        self.sig_finished.connect(finished)
        self.sig_running.connect(lambda _running: running_changed())

    def settings_column(self, settings: QWidget) -> tuple[QWidget, QScrollArea]:
        """A page's left column: its ``settings`` in a scroll area (vertical only) with this
        panel's ``controls`` under it, outside the scroll so Start is always in reach. Returns the
        column and the scroll area, for the page to size the column from."""
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(settings)
        column = QWidget()
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.controls)
        return column, scroll

    def set_can_start(self, can: bool, why_not: str = "") -> None:
        self._can_start = can
        self.start_button.setToolTip(why_not)
        self._update_buttons()

    def set_can_resume(self, can: bool, tooltip: str = "") -> None:
        self._can_resume = can
        self.resume_button.setToolTip(tooltip)
        self._update_buttons()

    def set_idle_note(self, text: str) -> None:
        """What the space of the curves says before a run (never empty plots with dummy axes)."""
        self._idle_note = text or "The run's curves appear here once it starts."
        if self.job is None and not self.plots.plots:
            self.note.setText(self._idle_note)
            self.note.show()

    @property
    def running(self) -> bool:
        return self.job is not None

    def set_writer(self, writer: StoreWriter | None) -> None:
        """The window's store writer, which records runs (one writer per project); without one
        (a page on its own, in tests) the panel makes its own when it is first needed."""
        self.writer = writer

    def store_writer(self, project_path: str | Path) -> StoreWriter:
        if self.writer is None:
            self.writer = self._own_writer = StoreWriter(project_path)
        return self.writer

    # -- running -------------------------------------------------------------------------

    def run(self, kind: RunKind, project_path: str | Path, config, writer: StoreWriter | None = None,
            status: str = "Starting…") -> RunJob:
        """Start a run of ``kind`` with ``config`` in a child process, recorded by ``writer`` (by
        default the panel's: ``set_writer``)."""
        writer = writer or self.store_writer(project_path)
        if self.job is not None:
            raise RuntimeError("a run is already going")
        self.kind = kind
        self._show_plots(kind.plots_of(config), kind.live_note(config))
        self.status.setText(status)
        self.status.setStyleSheet("")
        self._bar_key = None
        self.progress.setRange(0, 0)
        self.progress.setFormat("Starting…")
        self.progress.show()
        self.job = RunJob(kind, project_path, config, writer, self)
        self.job.sig_progress.connect(self.on_progress)
        self.job.sig_finished.connect(self._on_finished)
        self.job.sig_failed.connect(self._on_failed)
        self.job.start()
        self._update_buttons()
        self.sig_running.emit(True)
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Cancelling… (stops at the next safe point and keeps its last checkpoint)")
            self.cancel_button.setEnabled(False)

    def shutdown(self, timeout_ms: int = 60000) -> None:
        """Stop a run and wait for its child (the project closes, the app quits): what it
        reported is recorded before the writer stops. Forgets the writer (the next project's
        comes with ``set_writer``)."""
        for job in (self.job, self._last_job):
            if job is not None:
                job.wait(timeout_ms)
        self.job = self._last_job = None
        self.plots.timer.stop()
        if self._own_writer is not None:
            self._own_writer.stop()
        self._own_writer = None
        self.writer = None
        self._update_buttons()

    def reset(self) -> None:
        """Back to an empty panel (another project)."""
        self._show_plots((), "")
        self.status.setText("Ready.")
        self.status.setStyleSheet("")
        self.progress.hide()

    def _show_plots(self, plots, note: str) -> None:
        old = self.plots
        self.plots = LivePlots(tuple(plots))
        self._layout.replaceWidget(old, self.plots)
        old.timer.stop()
        old.deleteLater()
        self.plots.setVisible(bool(plots))
        self.note.setText(note or ("" if plots else self._idle_note))
        self.note.setVisible(bool(self.note.text()))
        # Without curves the note takes the room (top-aligned), so the text stays at the top.
        self._layout.setStretchFactor(self.note, 0 if plots else 1)

    # -- progress ------------------------------------------------------------------------

    def on_progress(self, step: int, metrics: dict) -> None:
        """Only bookkeeping: the plots' timer draws."""
        message = metrics.get("message")
        if isinstance(message, str) and message:
            self.status.setText(message)
        if "total_steps" in metrics:
            self._set_bar(step, metrics["total_steps"], "steps", "Step %v/%m")
        elif "total" in metrics and "done" in metrics:
            unit = metrics.get("unit") or ""
            self._set_bar(metrics["done"], metrics["total"], unit, f"%v/%m {unit}".rstrip())
        elif self._bar_key is not None and self._bar_key[0] == "steps" and step:
            # A training loop says its step count once; later reports move the bar by their step.
            self._set_bar(step, self._bar_key[1], "steps", "Step %v/%m")
        elif message:
            self._bar_key = None
            self.progress.setRange(0, 0)  # a stage with no count: busy, its text says which
            self.progress.setFormat("")
        self.plots.add(step, metrics)

    def _set_bar(self, done, total, unit: str, text: str) -> None:
        done, total = int(done), max(1, int(total))
        now = time.monotonic()
        if self._bar_key != (unit, total) or done < self._bar_started[1]:
            self._bar_key, self._bar_started = (unit, total), (now, done)
        self.progress.setRange(0, total)
        self.progress.setValue(min(done, total))
        started, first = self._bar_started
        if now - started >= ETA_AFTER_S and done > first and done < total:
            left = (now - started) / (done - first) * (total - done)
            text += f" · about {format_duration(left)} left"
        self.progress.setFormat(text)

    # -- the end -------------------------------------------------------------------------

    def _job_done(self) -> None:
        self._last_job, self.job = self.job, None
        self.plots.flush()  # the last points, then the timer stops
        self.progress.hide()
        self._update_buttons()
        self.sig_running.emit(False)

    def _on_finished(self, result: dict) -> None:
        self._job_done()
        result = dict(result or {})
        status = result.get("status", "finished")
        took = f" in {format_duration(result['seconds'])}" if result.get("seconds") is not None else ""
        self.status.setText(f"Run #{result.get('run_id', '?')} {status}{took}.")
        self.sig_finished.emit(result)

    def _on_failed(self, message: str, details: str) -> None:
        self._job_done()
        self.status.setText(f"The run failed: {message}")
        themed_style(self.status, "color: {error};")
        self.show_error("The run failed", message, details)
        self.sig_failed.emit(message, details)

    def show_error(self, title: str, message: str, details: str = "") -> None:
        """A message box that does not block the window (open, not exec)."""
        self.last_error = message
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Critical)
        box.setWindowTitle(title)
        box.setText(message)
        box.setInformativeText("Your project and its labels are unchanged.")
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()
        self.error_box = box

    def _update_buttons(self) -> None:
        self.start_button.setEnabled(self._can_start and self.job is None)
        self.cancel_button.setEnabled(self.job is not None)
        self.resume_button.setEnabled(self._can_resume and self.job is None)
