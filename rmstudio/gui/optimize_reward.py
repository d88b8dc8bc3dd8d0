"""The Optimize page's reward and guard settings: which reward the policy optimises (a finished
reward run of the project, the live instant model, or a folder/function) and which check reward
the over-optimisation guard scores with (none, "auto", or a reward model).

The live instant model refits as people label, so a run takes a snapshot of it when it starts
(``core.policy.live_reward``): the run optimises the head as it was then, kept in its folder.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QLabel, QLineEdit, QSpinBox, QVBoxLayout,
    QWidget,
)

from rmstudio.core.policy.auto_check import AUTO, SUGGESTED_LABELS
from rmstudio.core.policy.live_reward import live_title
from rmstudio.core.reward.catalog import reward_models

FOLDER = "__folder__"
LIVE_MODEL = "__live__"
"""The reward choice of the live model: replaced by a snapshot folder when the run starts."""
NOTE_STYLE = "color: palette(placeholder-text); font-size: 12px;"
AUTO_NOTE = ("Auto fits an instant model on the labels the reward did not train on (its validation "
             "prompts; every label for a function), so the two err differently.")


def note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(NOTE_STYLE)
    return label


class RewardSettings(QWidget):
    sig_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = None
        self.live = None  # the window's LiveModelController, when attached
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.reward_box = QGroupBox("Reward model")
        reward_layout = QVBoxLayout(self.reward_box)
        self.reward_choice = QComboBox()
        self.reward_choice.setObjectName("reward_choice")
        self.reward_choice.activated.connect(self._on_reward_chosen)
        self.reward_choice.currentIndexChanged.connect(lambda index: self._on_reward_chosen(index, ask=False))
        self.reward_folder = QLineEdit()
        self.reward_folder.setPlaceholderText("a reward model folder, or package.module:function")
        self.reward_folder.hide()
        self.reward_folder.textChanged.connect(lambda _text: self.sig_changed.emit())
        reward_layout.addWidget(self.reward_choice)
        reward_layout.addWidget(self.reward_folder)
        layout.addWidget(self.reward_box)

        self.guard_box = QGroupBox("Over-optimisation guard")
        guard = QFormLayout(self.guard_box)
        self.check_choice = QComboBox()
        self.check_choice.setObjectName("check_choice")
        self.guard_every = QSpinBox()
        self.guard_every.setRange(1, 10_000)
        self.guard_every.setValue(10)
        self.best_of_n = QCheckBox("Best-of-n from the start (n = 1…16) at the end")
        self.best_of_n.setChecked(True)
        guard.addRow("Check reward", self.check_choice)
        guard.addRow(note(AUTO_NOTE))
        guard.addRow("Every (steps)", self.guard_every)
        guard.addRow(self.best_of_n)
        guard.addRow(note("A second reward model the policy never trains against scores held-out answers as "
                          "it learns. When the optimised reward keeps rising while the check falls, the "
                          "policy is exploiting the first model: the page says so, and export can take "
                          "the step with the best check reward."))
        layout.addWidget(self.guard_box)

    def attach_live_model(self, controller) -> None:
        """Offer the window's live instant model as a reward once it is fitted (and after each refit)."""
        self.live = controller
        controller.sig_fitted.connect(self._on_live_fitted)
        self._on_live_fitted()

    def _on_live_fitted(self, _fitted: bool = True) -> None:
        # after every refit (each few labels): only the live entry's text changes, no queries
        index = self.reward_choice.findData(LIVE_MODEL)
        live = self.live.model.status if self.live is not None and self.live.has_fit else None
        if live is None:
            if index >= 0:
                self.reward_choice.removeItem(index)
        elif index >= 0:
            self.reward_choice.setItemText(index, live_title(live.pairs, live.at))
        elif self.project is not None:
            self.fill(self.project)  # first fit: offer it, first in the list
    def fill(self, project) -> None:
        """Refill both lists for ``project``, keeping the choices that are still offered."""
        self.project = project
        reward, check = self.reward_choice.currentData(), self.check_choice.currentData()
        if reward == FOLDER and not self.reward_folder.text().strip():
            reward = None  # nothing typed yet: a reward offered now is the better first choice
        self.reward_choice.clear()
        self.check_choice.clear()
        self.check_choice.addItem("None (guard off)", "")
        if project is not None:
            self.check_choice.addItem("Auto: fitted on the labels the reward did not see", AUTO)
        live = self.live.model.status if self.live is not None and self.live.has_fit else None
        if live is not None:
            self.reward_choice.addItem(live_title(live.pairs, live.at), LIVE_MODEL)
        for entry in reward_models(project) if project is not None else []:
            self.reward_choice.addItem(entry.title, entry.path)
            self.check_choice.addItem(entry.title, entry.path)
        self.reward_choice.addItem("A folder or function…", FOLDER)
        if reward is not None and self.reward_choice.findData(reward) >= 0:
            self.reward_choice.setCurrentIndex(self.reward_choice.findData(reward))
        if check is not None and self.check_choice.findData(check) >= 0:
            self.check_choice.setCurrentIndex(self.check_choice.findData(check))
        elif project is not None and project.counts()["labels"] >= SUGGESTED_LABELS:
            self.check_choice.setCurrentIndex(self.check_choice.findData(AUTO))  # enough labels to spare
        self._on_reward_chosen(self.reward_choice.currentIndex(), ask=False)

    def _on_reward_chosen(self, _index: int, ask: bool = True) -> None:
        """``ask``: the person picked "A folder…" (a file dialog opens), not a refill of the list."""
        other = self.reward_choice.currentData() == FOLDER
        self.reward_folder.setVisible(other)
        if other and ask and not self.reward_folder.text():
            path = QFileDialog.getExistingDirectory(self, "A reward model folder")
            self.reward_folder.setText(path)
        self.sig_changed.emit()

    def reward(self) -> str:
        """The reward as PolicyConfig reads it (``LIVE_MODEL`` until ``take_live_snapshot``)."""
        data = self.reward_choice.currentData()
        return self.reward_folder.text().strip() if data == FOLDER else str(data or "")

    def check(self) -> str:
        return str(self.check_choice.currentData() or "")

    def take_live_snapshot(self, project_path) -> str:
        """The live model's head saved for a run now starting (a staging folder the run moves
        into its own); RmstudioError when there is none to take."""
        from rmstudio.core.errors import RmstudioError
        from rmstudio.core.policy.live_reward import snapshot_live_model

        if self.live is None:
            raise RmstudioError("the live instant model is off: turn it on in Settings, "
                                "or choose another reward")
        return str(snapshot_live_model(self.live.model, project_path))
