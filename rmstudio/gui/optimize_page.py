"""The Optimize workspace: improve a policy against a reward model (GRPO, RLOO) or from the labels
(DPO), and watch it learn.

Like the Train page, the page is its settings; running is the shared ``RunPanel`` with the
policy run kind (``core.policy.kind:POLICY``) in a child process, recorded by the window's
store writer. Every default is the careful one and says why next to it.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
    QLabel, QLineEdit, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QTabWidget,
    QVBoxLayout, QWidget,
)

from rmstudio.core.errors import RmstudioError
from rmstudio.core.policy.config import PolicyConfig
from rmstudio.core.policy.data import preview
from rmstudio.core.policy.kind import POLICY
from rmstudio.core.runs.store import list_runs
from rmstudio.core.store.project import Project
from rmstudio.gui.model_picker import ModelPicker
from rmstudio.gui.optimize_results import OptimizeResults
from rmstudio.gui.optimize_reward import LIVE_MODEL, RewardSettings, note as _note
from rmstudio.gui.pages import heading, method_choice
from rmstudio.gui.run_panel import RunPanel
from rmstudio.gui.store_writer import StoreWriter
from rmstudio.gui.theme import themed_style

_DEFAULTS = PolicyConfig(method="dpo")  # the defaults; dpo needs no reward to be made
METHODS = [
    ("grpo", "GRPO", "Samples a group of answers per prompt and moves towards the ones the reward model "
                     "scores above their group's mean."),
    ("rloo", "RLOO", "As GRPO, with each answer compared to the mean of the others (leave one out)."),
    ("dpo", "DPO", "Learns straight from your labeled pairs: no reward model and no sampling."),
]


class OptimizePage(QWidget):
    sig_run_finished = Signal(dict)

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.panel = RunPanel()
        self.panel.set_idle_note("Press Start: the reward, the KL to the starting policy, the completion "
                                 "lengths and the loss are drawn here as the policy trains.")
        self.panel.connect_page(self.start, self._on_finished, self._update)

        outer = QHBoxLayout(self)
        outer.setContentsMargins(16, 16, 16, 16)
        splitter = QSplitter(Qt.Horizontal)
        outer.addWidget(splitter)
        settings = self._build_settings()
        left, _scroll = self.panel.settings_column(settings)
        left.setMinimumWidth(max(360, settings.minimumSizeHint().width() + 24))
        splitter.addWidget(left)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 8, 0, 0)
        self.warning = QLabel("")
        self.warning.setObjectName("policy_warning")
        self.warning.setWordWrap(True)
        themed_style(self.warning, "color: {warning}; font-weight: bold;")
        self.warning.hide()
        right_layout.addWidget(self.warning)
        right_layout.addWidget(self.panel, 3)
        self.samples_title = QLabel("Sample answers appear here every few steps, with their rewards.")
        self.samples = QTableWidget(0, 3)
        self.samples.setObjectName("policy_samples")
        self.samples.setHorizontalHeaderLabels(["reward", "answer", "prompt"])
        self.samples.horizontalHeader().setStretchLastSection(True)
        self.samples.setEditTriggers(QTableWidget.NoEditTriggers)
        right_layout.addWidget(self.samples_title)
        right_layout.addWidget(self.samples, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(right, "Live")
        self.results = OptimizeResults()
        self.results.sig_send_pairs.connect(self._send_pairs)
        self.tabs.addTab(self.results, "Results")
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(1, 1)
        self.panel.sig_running.connect(self._watch_job)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self.refresh_preview)
        self._on_method_changed()

    # -- building ------------------------------------------------------------------------

    def _build_settings(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.addWidget(heading("Optimize a policy"))
        method_box, self.method_group, self.method_buttons = method_choice(self, METHODS)
        self.method_group.idToggled.connect(lambda _id, on: on and self._on_method_changed())
        layout.addWidget(method_box)

        policy_box = QGroupBox("Policy (the model to improve)")
        policy_layout = QVBoxLayout(policy_box)
        self.policy_picker = ModelPicker()
        policy_layout.addWidget(self.policy_picker)
        layout.addWidget(policy_box)

        self.rewards = RewardSettings()
        self.rewards.sig_changed.connect(self._update)
        # the names the page's callers and tests know
        self.reward_box, self.guard_box = self.rewards.reward_box, self.rewards.guard_box
        self.reward_choice, self.reward_folder = self.rewards.reward_choice, self.rewards.reward_folder
        self.check_choice, self.guard_every = self.rewards.check_choice, self.rewards.guard_every
        self.best_of_n = self.rewards.best_of_n
        layout.addWidget(self.rewards)

        form = QFormLayout()
        self.lora = QCheckBox("LoRA adapter")
        self.lora.setChecked(_DEFAULTS.lora)
        self.beta = QDoubleSpinBox()
        self.beta.setDecimals(3)
        self.beta.setRange(0, 10)
        self.beta.setSingleStep(0.01)
        self.beta.setValue(_DEFAULTS.beta)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(_DEFAULTS.max_steps)
        self.group = QSpinBox()
        self.group.setRange(2, 64)
        self.group.setValue(_DEFAULTS.num_generations)
        self.length = QSpinBox()
        self.length.setRange(4, 4096)
        self.length.setValue(_DEFAULTS.max_completion_length)
        self.learning_rate = QLineEdit(f"{_DEFAULTS.learning_rate:g}")
        self.held_out = QDoubleSpinBox()
        self.held_out.setRange(0, 50)
        self.held_out.setDecimals(0)
        self.held_out.setSuffix(" %")
        self.held_out.setValue(100 * _DEFAULTS.held_out_fraction)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Train", self.lora)
        form.addRow(_note("Small adapters on every layer: a fraction of the memory, and the KL reference is "
                          "the model with the adapter off (no second copy)."))
        form.addRow("KL leash β", self.beta)
        form.addRow(_note("Holds the policy near where it started. TRL's GRPO uses 0; a learned reward is "
                          "only right near its data, and a policy left free finds what it overrates "
                          "(repetition, length, flattery)."))
        form.addRow("Steps", self.steps)
        form.addRow("Answers per prompt", self.group)
        form.addRow(_note("The group GRPO/RLOO compare; 4 keeps a CPU step to seconds, 8-16 on a GPU."))
        form.addRow("Answer length (tokens)", self.length)
        form.addRow(_note("Answers cut at this length teach little: the page warns when most are cut."))
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Held-out prompts", self.held_out)
        form.addRow(_note("Never trained on: kept to compare the policy before and after."))
        form.addRow("Seed", self.seed)
        layout.addLayout(form)
        for widget in (self.held_out, self.seed):
            widget.valueChanged.connect(lambda _v: self._preview_timer.start())
        preview_box = QGroupBox("What trains")
        preview_layout = QVBoxLayout(preview_box)
        self.preview = QLabel("")
        self.preview.setObjectName("policy_preview")
        self.preview.setWordWrap(True)
        preview_layout.addWidget(self.preview)
        layout.addWidget(preview_box)
        layout.addStretch(1)
        return box

    # -- project and writer --------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        if project is not self.project:
            self.shutdown()
            self.panel.reset()
        self.project = project
        self.results.set_project(project)
        self._fill_rewards()
        self.refresh_preview()
        self._update()

    def set_annotator(self, name: str) -> None:
        pass  # a policy trains on everyone's labels

    def set_writer(self, writer: StoreWriter | None) -> None:
        """The window's store writer, which records runs (one writer); see ``RunPanel.set_writer``."""
        self.panel.set_writer(writer)

    def shutdown(self) -> None:
        self.panel.shutdown()

    def attach_live_model(self, controller) -> None:
        """Offer the window's live instant model as a reward (see ``RewardSettings``)."""
        self.rewards.attach_live_model(controller)

    def _find_live_model(self) -> None:
        # The window does not attach its live model to this page yet (main_window.py is another
        # change's); find it on the window, once, so the reward list can offer it.
        if self.rewards.live is None:
            live = getattr(self.window(), "live_model", None)
            if live is not None and hasattr(live, "sig_fitted"):
                self.attach_live_model(live)

    def _fill_rewards(self) -> None:
        self._find_live_model()
        self.rewards.fill(self.project)

    # -- settings ------------------------------------------------------------------------

    def method(self) -> str:
        return METHODS[self.method_group.checkedId()][0]

    def reward(self) -> str:
        return "" if self.method() == "dpo" else self.rewards.reward()

    def config(self, resume: bool = False) -> PolicyConfig:
        """The settings as a config; ValueError (one line, naming the setting) when they do not fit."""
        source = self.policy_picker.source()
        policy = "embedded" if source.kind == "embedded" else source.location
        try:
            learning_rate = float(self.learning_rate.text())
        except ValueError:
            raise ValueError(f"learning rate must be a number, got {self.learning_rate.text()!r}") from None
        group = self.group.value()
        online = self.method() != "dpo"
        check = self.rewards.check() if online else ""
        guard = dict(check_reward=check, guard_every=self.guard_every.value() if check else 0,
                     best_of_n=online and self.best_of_n.isChecked())
        return PolicyConfig(**guard, method=self.method(), policy=policy, reward=self.reward(), lora=self.lora.isChecked(),
                            beta=self.beta.value(), num_generations=group, per_device_batch=group,
                            max_completion_length=self.length.value(), learning_rate=learning_rate,
                            max_steps=self.steps.value(), held_out_fraction=self.held_out.value() / 100,
                            seed=self.seed.value(), resume=resume)

    def _on_method_changed(self) -> None:
        online = self.method() != "dpo"
        self.reward_box.setVisible(online)
        self.guard_box.setVisible(online)
        self.group.setEnabled(online)
        self.length.setEnabled(online)
        self.refresh_preview()
        self._update()

    def refresh_preview(self) -> None:
        if self.project is None:
            self.preview.setText("Open a project to optimise a policy on its prompts.")
            return
        s = preview(self.project, self.method(), self.held_out.value() / 100, self.seed.value())
        self.preview.setText(f"{s['train']:,} {s['unit']} to train on, {s['held_out']:,} held out."
                             + ("" if s["train"] else f" <b>No {s['unit']} to train on yet.</b>"))
        self._update()

    def _latest_unfinished(self) -> dict | None:
        runs = list_runs(self.project, "policy") if self.project is not None else []
        runs = [r for r in runs if r["status"] not in ("finished", "running")]
        return runs[-1] if runs else None

    def _update(self) -> None:
        running = self.panel.running
        reward_ok = self.method() == "dpo" or bool(self.reward())
        self.panel.set_can_start(self.project is not None and reward_ok,
                                 "" if reward_ok else "Choose a reward model (train one on the Train page).")
        self.panel.set_can_resume(self.project is not None and self._latest_unfinished() is not None,
                                  "Continue the latest cancelled or failed policy run from its last checkpoint.")
        for widget in (self.method_group.buttons() + [self.policy_picker, self.reward_box, self.guard_box, self.lora, self.beta,
                                                       self.steps, self.group, self.length, self.learning_rate,
                                                       self.held_out, self.seed]):
            widget.setEnabled(not running)
        if not running:
            online = self.method() != "dpo"
            self.group.setEnabled(online)
            self.length.setEnabled(online)

    # -- running -------------------------------------------------------------------------

    def start(self, resume: bool = False) -> None:
        if self.project is None or self.panel.running:
            return
        try:
            config = self.config(resume=resume)
            if config.reward == LIVE_MODEL:  # frozen now: the live model may refit during the run
                snapshot = self.rewards.take_live_snapshot(self.project.path)
                config = dataclasses.replace(config, reward=snapshot)
        except (ValueError, RmstudioError) as exc:
            self.panel.show_error("Cannot start", str(exc))
            return
        self.warning.hide()
        self.results.show_result({})
        self.tabs.setCurrentIndex(0)
        self.panel.run(POLICY, self.project.path, config,
                       status=f"Optimising {config.policy} with {config.method.upper()}…")

    def _watch_job(self, running: bool) -> None:
        if running and self.panel.job is not None:
            self.panel.job.sig_progress.connect(self._on_progress)

    def _on_progress(self, step: int, metrics: dict) -> None:
        samples = metrics.get("samples")
        if isinstance(samples, list) and samples:
            self._show_samples(step, samples)
        warning = metrics.get("warning")
        if isinstance(warning, str) and warning:
            self.warning.setText("⚠ " + warning)
            self.warning.show()

    def _show_samples(self, step: int, samples: list[dict]) -> None:
        self.samples_title.setText(f"Answers sampled at step {step}, best first:")
        ordered = sorted(samples, key=lambda row: -float(row.get("reward", 0.0)))
        self.samples.setRowCount(len(ordered))
        for r, row in enumerate(ordered):
            for c, text in enumerate((f"{float(row.get('reward', 0.0)):+.3f}", str(row.get("completion", "")),
                                      str(row.get("prompt", "")))):
                cell = QTableWidgetItem(text.replace("\n", " ")[:240])
                cell.setToolTip(text)
                self.samples.setItem(r, c, cell)
        self.samples.resizeColumnToContents(0)

    def _send_pairs(self, pairs: list) -> None:
        if self.project is not None:
            self.panel.store_writer(self.project.path).add_pairs(pairs)

    def labels_changed(self) -> None:
        self.results.refresh_verdict()

    def _on_finished(self, result: dict) -> None:
        self.results.show_result(result)
        if result.get("status") == "finished":
            self.tabs.setCurrentWidget(self.results)
        if result.get("warning"):
            self.warning.setText("⚠ " + result["warning"])
            self.warning.show()
        self._update()
        self.sig_run_finished.emit(result)
