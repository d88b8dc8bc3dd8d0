"""The Score page's best-of-n box: n responses from a generation model, ranked by the reward model.

The box gathers the choices (a ``ModelPicker``, n) and shows progress ("3 of 8 generated",
time left) with a Cancel; ``core.reward.best_of_n.best_of_n_responses`` does the work. The
job is lent the page's reward model by the ``ScoreEngine`` (``run_with_model``), so scoring
and best-of-n never use the model at once; while it runs, typing on the page is scored after it.
The ranked responses go to the page as candidates through ``sig_ranked``.

The generation model stays loaded between runs (loading SmolLM2 takes seconds); each run uses
the next seed, so "Generate" again gives new responses and the first run is reproducible.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from rmstudio.core.models.loading import ModelError
from rmstudio.core.reward.best_of_n import MAX_N
from rmstudio.core.timefmt import format_duration
from rmstudio.gui.model_picker import ModelPicker
from rmstudio.gui.score_engine import ScoreEngine
from rmstudio.gui.theme import colour

DEFAULT_N = 4
_ERROR_STYLE = "color: {error};"  # role colours of gui/theme.py


class BestOfNBox(QGroupBox):
    sig_ranked = Signal(str, object)  # the prompt, [core.reward.best_of_n.RankedResponse] best first
    sig_generate_clicked = Signal()  # the page answers with start(its prompt, its reward model)

    def __init__(self, engine: ScoreEngine, parent: QWidget | None = None):
        super().__init__("Best of n", parent)
        self.engine = engine
        self.running = False
        self._lm = None  # ((ModelSource, device), model, tokenizer): kept between runs
        self._runs = 0
        self._asked = 0
        self._started_at = 0.0
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.n_spin = QSpinBox()
        self.n_spin.setObjectName("best_of_n")
        self.n_spin.setRange(1, MAX_N)
        self.n_spin.setValue(DEFAULT_N)
        self.n_spin.setToolTip(f"How many responses to generate and rank (1 to {MAX_N}).")
        self.picker = ModelPicker()
        self.picker.setToolTip("The model that writes the responses; the reward model above ranks them.")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Generate n responses to the prompt, score them and rank them.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the response being written; the ones done are ranked.")
        self.cancel_button.hide()
        row.addWidget(QLabel("Generate"))
        row.addWidget(self.n_spin)
        row.addWidget(QLabel("with"))
        row.addWidget(self.picker, 1)
        row.addWidget(self.generate_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m generated")
        self.progress.hide()
        self.status = QLabel("")
        self.status.setObjectName("best_of_n_status")
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.generate_button.clicked.connect(self.sig_generate_clicked)
        self.cancel_button.clicked.connect(self.cancel)

    # -- running -------------------------------------------------------------------------

    def start(self, prompt: str, reward_model_path: str) -> bool:
        """Generate, score and rank ``n`` responses; False (with the reason shown) if it cannot."""
        if self.running:
            return False
        if not reward_model_path:
            return self._refuse("Choose a reward model first: it ranks the responses.")
        if not prompt.strip():
            return self._refuse("Type a prompt first.")
        try:
            source = self.picker.source()
        except ModelError:
            return self._refuse("Fix the generation model choice first.")
        n, seed = self.n_spin.value(), self._runs
        self._runs += 1

        def work(reward_model, sink):
            from rmstudio.core.models.loading import load_causal_lm, pick_device  # torch: off the UI thread
            from rmstudio.core.reward.best_of_n import best_of_n_responses, lm_generator

            key = (source, pick_device(None))
            if self._lm is None or self._lm[0] != key:
                self._lm = None  # a failed load leaves no half-known model behind
                sink.log(0, {"message": f"Loading {source.display_name}…"})
                self._lm = (key, *load_causal_lm(source, device=key[1], sink=sink))
            _key, model, tokenizer = self._lm
            return best_of_n_responses(lm_generator(model, tokenizer, seed=seed), reward_model.score,
                                       prompt, n, sink)

        self._asked, self._started_at = n, time.perf_counter()
        self._set_running(True)
        self.progress.setRange(0, 0)  # busy until the first response
        self._show(f"Waiting for the reward model, then generating {n} with {source.display_name}…")
        self.engine.run_with_model(reward_model_path, work, lambda ranked: self._on_done(prompt, ranked),
                                   self._on_failed, self._on_progress)
        return True

    def cancel(self) -> None:
        if not self.running:
            return
        if self.engine.cancel_task():  # it had not started: no answer will come
            self._set_running(False)
            self._show("Cancelled before anything was generated.")
            return
        self.cancel_button.setEnabled(False)
        self._show("Stopping after the response being written…")

    def _on_progress(self, _step: int, metrics: dict) -> None:
        if not self.running:
            return
        if "done" in metrics and "total" in metrics:
            done, total = int(metrics["done"]), int(metrics["total"])
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            left = (f"about {format_duration(metrics['seconds_left'])} left" if "seconds_left" in metrics
                    else "estimating the time left")
            if self.cancel_button.isEnabled():
                self._show(f"{done} of {total} generated · {left}")
        elif metrics.get("message") and self.cancel_button.isEnabled():
            self._show(str(metrics["message"]))

    def _on_done(self, prompt: str, ranked: list) -> None:
        self._set_running(False)
        took = format_duration(time.perf_counter() - self._started_at)
        if not ranked:
            self._show("Cancelled before any response was generated.")
            return
        best = ranked[0]
        if len(ranked) < self._asked:
            text = f"Cancelled after {len(ranked)} of {self._asked}: those are ranked below"
        else:
            text = f"Best of {len(ranked)}"
        self._show(f"{text}; the best is response 1, reward {best.reward:+.3f} (seed {self._runs - 1}, "
                   f"took {took}).")
        self.sig_ranked.emit(prompt, ranked)

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self._show(f"Best-of-n failed: {message}", error=True)

    # -- look ----------------------------------------------------------------------------

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.generate_button.setVisible(not running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.picker.setEnabled(not running)
        self.n_spin.setEnabled(not running)
        self.progress.setVisible(running)

    def _refuse(self, text: str) -> bool:
        self._show(text, error=True)
        return False

    def _show(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(_ERROR_STYLE.format(error=colour("error")) if error else "")
