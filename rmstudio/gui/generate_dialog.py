"""Generate response pairs for the project's prompts with a local model, in the background.

The dialog only gathers the choices and shows progress: ``collect.generate_pairs`` does the
work on a worker thread with its own connection and commits each finished prompt at once,
so a cancel keeps everything already generated.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox, QDialog, QGroupBox, QHBoxLayout, QLabel,
    QProgressBar, QPushButton, QRadioButton, QSpinBox, QVBoxLayout, QWidget,
)

from rmstudio.core.models.collect import prompts_without_pairs
from rmstudio.core.models.generation import GenerationConfig
from rmstudio.core.timefmt import format_duration
from rmstudio.core.models.loading import ModelError
from rmstudio.core.store.project import Project
from rmstudio.gui.model_picker import ModelPicker
from rmstudio.gui.sampling_form import ERROR_STYLE, SamplingForm, available_devices
from rmstudio.gui.theme import colour
from rmstudio.gui.worker import start_job

_NOTE_STYLE = "color: palette(placeholder-text); font-size: 12px;"


class GenerateDialog(QDialog):
    """Choose prompts, model(s) and sampling settings; run ``generate_pairs`` with live progress."""

    sig_generated = Signal(object)  # the run's result dict: the project may have new comparisons

    def __init__(self, project: Project, device: str = "auto", available: set[str] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.result_summary: dict | None = None
        self._job = None
        self._close_when_done = False
        self._shut_down = False
        self._started_at = 0.0
        self._rate = ""
        self.setWindowTitle("Generate pairs")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_prompts())
        layout.addWidget(self._build_models())
        if available is None:
            available = available_devices()
        self.sampling = SamplingForm(device, available)
        self.sampling.sig_changed.connect(self._on_settings_changed)
        layout.addWidget(self.sampling)
        layout.addWidget(self._build_progress())
        layout.addLayout(self._build_buttons())
        self._on_settings_changed()

    # -- building ------------------------------------------------------------------------

    def _build_prompts(self) -> QGroupBox:
        box = QGroupBox("Prompts")
        layout = QVBoxLayout(box)
        self.without_radio = QRadioButton()
        self.all_radio = QRadioButton()
        self._refresh_prompt_counts()
        (self.without_radio if self._without_ids else self.all_radio).setChecked(True)
        row = QHBoxLayout()
        self.limit_box = QCheckBox("Only the first")
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(1, 10_000_000)
        self.limit_spin.setValue(20)
        self.limit_suffix = QLabel("prompts")
        for widget in (self.limit_spin, self.limit_suffix):
            widget.setEnabled(False)
            self.limit_box.toggled.connect(widget.setEnabled)
        row.addWidget(self.limit_box)
        row.addWidget(self.limit_spin)
        row.addWidget(self.limit_suffix)
        row.addStretch(1)
        for widget in (self.without_radio, self.all_radio):
            layout.addWidget(widget)
            widget.toggled.connect(self._on_settings_changed)
        self.limit_box.toggled.connect(self._on_settings_changed)
        self.limit_spin.valueChanged.connect(self._on_settings_changed)
        layout.addLayout(row)
        return box

    def _refresh_prompt_counts(self) -> None:
        self._without_ids = prompts_without_pairs(self.project)
        total = self.project.counts()["prompts"]
        self.without_radio.setText(f"Prompts without pairs yet ({len(self._without_ids):,})")
        self.all_radio.setText(f"All prompts ({total:,})")

    def _build_models(self) -> QGroupBox:
        box = QGroupBox("Model")
        layout = QVBoxLayout(box)
        self.picker_a = ModelPicker()
        layout.addWidget(self.picker_a)
        self.second_box = QCheckBox("Use a second model for response B")
        self.second_box.setToolTip("Response A comes from the model above, B from this one: "
                                   "one pair per prompt, to compare two models.")
        layout.addWidget(self.second_box)
        self.picker_b = ModelPicker()
        self.picker_b.hide()
        layout.addWidget(self.picker_b)
        self.second_box.toggled.connect(self._on_second_toggled)
        return box

    def _build_progress(self) -> QWidget:
        area = QWidget()
        layout = QVBoxLayout(area)
        layout.setContentsMargins(0, 6, 0, 0)
        self.status_label = QLabel("")
        self.status_label.setObjectName("status")
        self.status_label.setWordWrap(True)
        self.status_label.hide()
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m prompts")
        self.progress.hide()
        self.rate_label = QLabel("")
        self.rate_label.setStyleSheet(_NOTE_STYLE)
        self.rate_label.hide()
        self.keep_note = QLabel("Each prompt is saved as soon as it is done: Cancel stops after the "
                                "current batch and keeps every finished prompt.")
        self.keep_note.setWordWrap(True)
        self.keep_note.setStyleSheet(_NOTE_STYLE)
        for widget in (self.status_label, self.progress, self.rate_label, self.keep_note):
            layout.addWidget(widget)
        return area

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addStretch(1)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current batch; finished prompts stay in the project.")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("While generating: stop after the current batch, then close.")
        self.close_button.clicked.connect(self.reject)
        for button in (self.start_button, self.cancel_button, self.close_button):
            row.addWidget(button)
        return row

    # -- choices -------------------------------------------------------------------------

    def prompt_ids(self) -> list[int]:
        if self.without_radio.isChecked():
            ids = list(self._without_ids)
        else:
            ids = self.project.prompt_ids()
        return ids[: self.limit_spin.value()] if self.limit_box.isChecked() else ids

    def config(self) -> GenerationConfig:
        """The sampling settings; raises ValueError (and shows it inline) when they do not fit."""
        return self.sampling.config()

    def device(self) -> str:
        return self.sampling.device()

    def is_running(self) -> bool:
        return self._job is not None

    # -- running -------------------------------------------------------------------------

    def start(self) -> bool:
        """Check every choice, then start generating; False (with the reason shown) if not."""
        if self.is_running():
            return False
        try:
            source_a = self.picker_a.source()
            source_b = self.picker_b.source() if self.second_box.isChecked() else None
        except ModelError:
            self._show_status("Fix the model choice above first.", error=True)
            return False
        try:
            config = self.config()
        except ValueError:
            self._show_status("Fix the sampling settings above first.", error=True)
            return False
        ids = self.prompt_ids()
        if not ids:
            self._show_status("No prompts to generate for: every prompt already has pairs. "
                              "Choose “All prompts” to add more.", error=True)
            return False
        project_path, device = str(self.project.path), self.device()

        def job(sink):
            from rmstudio.core.models.collect import generate_pairs
            from rmstudio.core.models.loading import pick_device  # imports torch: here, off the UI thread

            return generate_pairs(project_path, ids, model=source_a, config=config, model_b=source_b,
                                  device=pick_device(device), sink=sink)

        self._rate = ""
        self._started_at = 0.0
        self.result_summary = None
        self.progress.setRange(0, 0)  # busy until the model is loaded
        self.progress.show()
        self.rate_label.hide()
        loading = f"Loading {source_a.display_name}"
        if source_b is not None:
            loading += f" and {source_b.display_name}"
        self._show_status(f"{loading}… ({len(ids):,} prompts to go)")
        self._job = start_job(self, job, self._on_job_finished, self._on_job_failed, self._on_job_progress)
        self._set_running(True)
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self._job[1].cancel()
            self.cancel_button.setEnabled(False)
            self._show_status("Stopping after the current batch… finished prompts are kept.")

    def shutdown(self, wait_ms: int = 30000) -> None:
        """Ask a running job to stop and wait for it (the app is closing)."""
        if self._job is not None:
            thread, worker = self._job
            worker.cancel()
            thread.quit()
            thread.wait(wait_ms)
            # Its result may still be queued for us: nobody is waiting for it any more.
            self._shut_down = True
            self._job = None

    def reject(self) -> None:
        # The worker thread belongs to this dialog: it must end before the dialog goes away.
        if self.is_running():
            self._close_when_done = True
            self.cancel()
            return
        super().reject()

    def _set_running(self, running: bool) -> None:
        self.start_button.setVisible(not running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        for widget in (self.picker_a, self.picker_b, self.second_box, self.without_radio, self.all_radio,
                       self.limit_box, self.limit_spin):
            widget.setEnabled(not running)
        self.sampling.set_editable(not running, fixed_responses=self.second_box.isChecked())
        self.limit_suffix.setEnabled(not running and self.limit_box.isChecked())
        if not running:
            self.limit_spin.setEnabled(self.limit_box.isChecked())

    def _on_job_progress(self, step: int, metrics: dict) -> None:
        if self._shut_down:
            return
        if metrics.get("stage") == "download":
            done, total = metrics.get("done", 0) / 2**20, metrics.get("total", 0) / 2**20
            self._show_status(f"Downloading the model… {done:,.0f} of {total:,.0f} MiB")
            return
        if "stage" in metrics:
            stages = int(metrics.get("stages", 0)) or 1
            self._show_status("Preparing the embedded model (first use only, about 20 s)… "
                              f"step {int(metrics['stage'])} of {stages}")
            return
        if "total" not in metrics:
            return
        total = int(metrics["total"])
        if not self._started_at:
            self._started_at = time.perf_counter()
            self.progress.setRange(0, max(total, 1))
            self._show_status("Generating…")
        self.progress.setValue(step)
        if step <= 0:
            return
        elapsed = time.perf_counter() - self._started_at
        left = elapsed / step * (total - step)
        self._rate = (f"{metrics.get('tokens_per_s', 0.0):,.1f} tokens/s · "
                      f"{int(metrics.get('tokens', 0)):,} tokens")
        eta = f"about {format_duration(left)} left" if step < total else "done"
        self.rate_label.setText(f"{self._rate} · {eta}")
        self.rate_label.show()
        if self.cancel_button.isEnabled():
            self._show_status(f"Generating… {step:,} of {total:,} prompts done")

    def _on_job_finished(self, result: dict) -> None:
        if self._shut_down:
            return
        self._end_job()
        self.result_summary = result
        comparisons = result.get("comparisons", 0)
        queue = ("they are in the label queue now" if comparisons
                 else "the responses were not different enough to pair")
        new = f"{comparisons:,} new comparison{'s' if comparisons != 1 else ''}"
        if result.get("status") == "cancelled":
            text = (f"Cancelled after {result['prompts_done']:,} of {result['prompts']:,} prompts; "
                    f"the finished ones are kept: {new}; {queue}.")
        else:
            text = f"{result['prompts_done']:,} prompts, {new}; {queue}."
        self.progress.setRange(0, max(result.get("prompts", 1), 1))
        self.progress.setValue(result.get("prompts_done", 0))
        took = ""
        if self._started_at:
            took = f"generating took {format_duration(time.perf_counter() - self._started_at)}"
        self.rate_label.setText(" · ".join(part for part in (self._rate, took) if part))
        self.rate_label.setVisible(bool(self.rate_label.text()))
        self._refresh_prompt_counts()
        self._on_settings_changed()
        self._show_status(text)
        self.start_button.setText("Generate more")
        self.sig_generated.emit(result)
        self._finish_close()

    def _on_job_failed(self, message: str, _details: str) -> None:
        if self._shut_down:
            return
        self._end_job()
        self.progress.hide()
        self.rate_label.hide()
        self._refresh_prompt_counts()
        self._on_settings_changed()
        self._show_status(f"Generation failed: {message}\nPrompts finished before the failure are kept.",
                          error=True)
        self.sig_generated.emit({"status": "failed", "message": message})
        self._finish_close()

    def _end_job(self) -> None:
        thread, _worker = self._job
        thread.quit()
        thread.wait(5000)
        self._job = None
        self._set_running(False)

    def _finish_close(self) -> None:
        if self._close_when_done:
            self._close_when_done = False
            super().reject()

    # -- inline feedback -----------------------------------------------------------------

    def _on_second_toggled(self, on: bool) -> None:
        self.picker_b.setVisible(on)
        # Two models make one response each: exactly one pair per prompt.
        self.sampling.fix_two_responses(on)
        self._on_settings_changed()

    def _on_settings_changed(self, *_args) -> None:
        valid = self.sampling.is_valid()
        if not self.is_running():
            self.start_button.setEnabled(bool(self.prompt_ids()) and valid)

    def _show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(ERROR_STYLE.format(error=colour("error")) if error else "")
        self.status_label.setVisible(bool(text))
