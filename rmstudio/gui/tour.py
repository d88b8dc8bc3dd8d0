"""A short first-run tour of the loop: Label → Train → Score → Optimize.

A panel floats over the bottom-right corner of the main window (a child widget, not a dialog:
it blocks nothing, so the app can be used while it is open). Each step is one sentence and,
once a project is open, opens its workspace (its navigation entry is then the selected one);
before that it says to open a project.
Back / Next / Skip; after Skip or the last step it is never shown by itself again
(``tour/seen`` in QSettings); Help → Tour of rmstudio opens it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMainWindow, QPushButton, QVBoxLayout

SEEN = "tour/seen"
MARGIN = 16
BOTTOM_CLEARANCE = 64  # the pages keep their main buttons along the bottom: stay above them


@dataclass(frozen=True)
class TourStep:
    title: str
    text: str
    workspace: str | None  # the navigation entry to open, or None for the welcome screen


STEPS = [
    TourStep("The loop", "rmstudio turns your judgement into a reward model in four steps: Label, Train, "
             "Score and Optimize; open the demo project to follow along.", None),
    TourStep("Label", "Pick the better of two responses with the keys 1–4 (Shift for 'much better'); each "
             "label is saved at once, under your annotator name.", "Label"),
    TourStep("Train", "Train a reward model on your labels and watch its loss and validation accuracy as it "
             "learns.", "Train"),
    TourStep("Score", "Type a prompt and a few answers to see the reward each one gets and which words moved "
             "it; send surprising pairs back to labeling.", "Score"),
    TourStep("Optimize", "Improve a policy against your reward model (or straight from your labels with "
             "DPO), compare its answers before and after, and send them to labeling to close the loop.",
             "Optimize"),
]


def tour_seen(settings: QSettings) -> bool:
    return str(settings.value(SEEN, "false")).lower() == "true"


class TourPanel(QFrame):
    sig_closed = Signal(bool)  # True when the last step was reached, False when skipped

    def __init__(self, window: QMainWindow, settings: QSettings, steps: list[TourStep] = STEPS):
        super().__init__(window)
        self.window_, self.settings, self.steps = window, settings, steps
        self.step = 0
        self.setObjectName("tour")
        self.setFrameShape(QFrame.StyledPanel)
        self.setAutoFillBackground(True)
        self.setStyleSheet("QFrame#tour { background: palette(base); border: 2px solid palette(highlight); "
                           "border-radius: 8px; }")
        self.setFixedWidth(380)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        self.heading = QLabel()
        self.heading.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.note = QLabel("Open a project (the demo is on the welcome screen) to see this workspace.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text); font-size: 12px;")
        buttons = QHBoxLayout()
        self.skip_button = QPushButton("Skip tour")
        self.back_button = QPushButton("Back")
        self.next_button = QPushButton("Next")
        self.skip_button.clicked.connect(self.skip)
        self.back_button.clicked.connect(lambda: self.show_step(self.step - 1))
        self.next_button.clicked.connect(self.next)
        buttons.addWidget(self.skip_button)
        buttons.addStretch(1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        for widget in (self.heading, self.text, self.note):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        window.installEventFilter(self)  # follow the window's size to stay in its corner
        self.hide()

    def start(self) -> None:
        self.show_step(0)
        self.show()
        self.raise_()

    def show_step(self, index: int) -> None:
        self.step = max(0, min(index, len(self.steps) - 1))
        step = self.steps[self.step]
        self.heading.setText(f"{step.title}  ·  step {self.step + 1} of {len(self.steps)}")
        self.text.setText(step.text)
        self.back_button.setEnabled(self.step > 0)
        self.next_button.setText("Finish" if self.step == len(self.steps) - 1 else "Next")
        self.note.setVisible(step.workspace is not None and not self._workspace_open())
        self._open(step.workspace)
        self.adjustSize()
        self._place()

    def next(self) -> None:
        if self.step == len(self.steps) - 1:
            self._close(finished=True)
        else:
            self.show_step(self.step + 1)

    def skip(self) -> None:
        self._close(finished=False)

    def _close(self, finished: bool) -> None:
        self.settings.setValue(SEEN, "true")
        self.hide()
        self.sig_closed.emit(finished)

    def _workspace_open(self) -> bool:
        window = self.window_
        return getattr(window, "stack", None) is not None and window.stack.currentWidget() is window.workspace

    def _open(self, workspace: str | None) -> None:
        """Select ``workspace`` in the navigation, which opens it, when a project is open."""
        nav = getattr(self.window_, "nav", None)
        if workspace is None or nav is None or not self._workspace_open():
            return
        items = nav.findItems(workspace, Qt.MatchExactly)
        if items:
            nav.setCurrentItem(items[0])

    def _place(self) -> None:
        central = self.window_.centralWidget()
        area = central.geometry() if central is not None else self.window_.rect()
        self.move(area.right() - self.width() - MARGIN, area.bottom() - self.height() - BOTTOM_CLEARANCE)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.window_ and event.type() in (QEvent.Resize, QEvent.Show) and self.isVisible():
            self._place()
        return False


def install_tour(window: QMainWindow, settings: QSettings) -> TourPanel:
    """The tour panel for ``window``, started now if this is the first run."""
    panel = TourPanel(window, settings)
    window.tour = panel
    if not tour_seen(settings):
        panel.start()
    return panel
