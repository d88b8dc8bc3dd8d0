"""The Score workspace: type a prompt and responses, see each reward at once, ranked, and why.

The page gathers text and shows numbers; ``ScoreEngine`` loads the chosen reward model and
scores off the UI thread (debounced while typing, stale answers dropped), and new comparisons
go to the label queue through the window's store writer. Candidates can also come from a
generation model (the best-of-n box, ``score_best_of_n``) or from a prompt of the project
(``score_project_prompts``).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QScrollArea, QSplitter,
    QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from rmstudio.core.errors import ProjectError
from rmstudio.core.labeling.new_pairs import NewPair
from rmstudio.core.labeling.prompt_responses import prompt_with_responses
from rmstudio.core.reward.catalog import RewardModelEntry, reward_models
from rmstudio.core.store.project import Project
from rmstudio.gui.pages import heading
from rmstudio.gui.plots import color, make_plot
from rmstudio.gui.score_best_of_n import BestOfNBox
from rmstudio.gui.score_candidate import Candidate
from rmstudio.gui.score_engine import ScoreEngine, ScoreRequest
from rmstudio.gui.score_explain import ExplainView
from rmstudio.gui.score_project_prompts import ProjectPromptsDialog
from rmstudio.gui.store_writer import StoreWriter
from rmstudio.gui.theme import colour

DEBOUNCE_MS = 250  # a pause in typing, not every key
FOLDER = "__folder__"


class ScorePage(QWidget):
    sig_pairs_sent = Signal(int)  # how many comparisons were new

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.writer: StoreWriter | None = None
        self.entries: list[RewardModelEntry] = []
        self.folder = ""
        self.rewards: list[float] = []
        self.engine = ScoreEngine(self)
        self.engine.sig_scored.connect(self._on_scored)
        self.engine.sig_failed.connect(self._on_failed)
        self.engine.sig_busy.connect(lambda busy: self.busy.setText(
            "" if not busy else "generating…" if self.best_of_n.running else "scoring…"))
        self.engine.sig_occlusion_progress.connect(
            lambda done, total: self.occlude_button.setText(f"Stop ({done}/{total} words)"))
        self.engine.sig_occlusion_done.connect(self._on_occluded)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.score_now)
        self._pair_request: int | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 16, 16, 16)
        outer.addWidget(heading("Score"))
        top = QHBoxLayout()
        self.model_box = QComboBox()
        self.model_box.setObjectName("reward_model")
        self.model_box.setMinimumWidth(380)
        self.model_box.activated.connect(self._on_model_chosen)
        self.busy = QLabel("")
        top.addWidget(QLabel("Reward model"))
        top.addWidget(self.model_box, 1)
        top.addWidget(self.busy)
        outer.addLayout(top)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        outer.addWidget(self.message)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self._build_inputs())
        splitter.addWidget(self._build_outputs())
        splitter.setSizes([520, 640])
        outer.addWidget(splitter, 1)
        for _ in range(2):
            self.add_candidate()

    # -- building ------------------------------------------------------------------------

    def _build_inputs(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 8, 0)
        layout.addWidget(QLabel("Prompt"))
        self.prompt = QPlainTextEdit()
        self.prompt.setObjectName("prompt")
        self.prompt.setPlaceholderText("The question or instruction the responses answer…")
        self.prompt.setMaximumHeight(90)
        self.prompt.setTabChangesFocus(True)
        self.prompt.textChanged.connect(self._schedule)
        layout.addWidget(self.prompt)
        self.best_of_n = BestOfNBox(self.engine)
        self.best_of_n.sig_generate_clicked.connect(
            lambda: self.best_of_n.start(self.prompt.toPlainText(), self.model_path()))
        self.best_of_n.sig_ranked.connect(
            lambda prompt, ranked: self.set_texts(prompt, [r.text for r in ranked]))
        layout.addWidget(self.best_of_n)
        self.candidates: list[Candidate] = []
        holder = QWidget()
        self.candidate_layout = QVBoxLayout(holder)
        self.candidate_layout.setContentsMargins(0, 0, 0, 0)
        self.candidate_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        layout.addWidget(scroll, 1)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add a response")
        self.add_button.clicked.connect(lambda: self.add_candidate())
        self.project_button = QPushButton("From project…")
        self.project_button.setToolTip("Fill the prompt and the candidates from a prompt of the project.")
        self.project_button.clicked.connect(self.open_project_prompts)
        self.send_button = QPushButton("Send the two ticked to labeling")
        self.send_button.clicked.connect(self.send_to_labeling)
        row.addWidget(self.add_button)
        row.addWidget(self.project_button)
        row.addWidget(self.send_button)
        layout.addLayout(row)
        return box

    def _build_outputs(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(8, 0, 0, 0)
        self.headline = QLabel("Type a prompt and a response.")
        self.headline.setObjectName("score_headline")
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.RichText)
        layout.addWidget(self.headline)
        self.bars = make_plot(self, "Reward of each response", x_label="response", y_label="reward",
                              legend=False)
        self.bars.setMinimumHeight(140)
        layout.addWidget(self.bars, 1)
        layout.addWidget(QLabel("P(row beats column) under Bradley-Terry: σ(r_row − r_col)"))
        self.matrix = QTableWidget(0, 0)
        self.matrix.setObjectName("win_probabilities")
        self.matrix.setMaximumHeight(130)
        self.matrix.setEditTriggers(QTableWidget.NoEditTriggers)
        layout.addWidget(self.matrix)
        why = QHBoxLayout()
        why.addWidget(QLabel("Why: response"))
        self.explain_box = QComboBox()
        self.explain_box.currentIndexChanged.connect(lambda _i: self._schedule())
        why.addWidget(self.explain_box)
        self.occlude_button = QPushButton("Leave one word out")
        self.occlude_button.setToolTip("Exact per word, one forward pass per word: runs in the background.")
        self.occlude_button.clicked.connect(self._on_occlude_clicked)
        why.addWidget(self.occlude_button)
        why.addStretch(1)
        layout.addLayout(why)
        self.explain = ExplainView()
        layout.addWidget(self.explain, 2)
        return box

    # -- project, writer, model ----------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.entries = reward_models(project) if project is not None else []
        self.model_box.clear()
        for entry in self.entries:
            self.model_box.addItem(entry.title, entry.path)
        self.model_box.addItem("A model folder on disk…", FOLDER)
        if self.folder:
            self.model_box.insertItem(self.model_box.count() - 1, f"Folder: {self.folder}", self.folder)
        self.project_button.setEnabled(project is not None)
        self.message.setText("" if self.entries or self.folder else
                             "No reward model yet: train one on the Train page, or pick a folder on disk.")
        self._schedule()

    def set_annotator(self, name: str) -> None:
        self.annotator = name  # pairs sent to labeling are for everyone; kept for symmetry with the pages

    def set_writer(self, writer: StoreWriter | None) -> None:
        if self.writer is not None:
            self.writer.sig_saved.disconnect(self._on_saved)
        self.writer = writer
        if writer is not None:
            writer.sig_saved.connect(self._on_saved)

    def use_model_folder(self, path: str) -> None:
        self.folder = path
        self.set_project(self.project)
        self.model_box.setCurrentIndex(self.model_box.findData(path))
        self._schedule()

    def model_path(self) -> str:
        data = self.model_box.currentData()
        return "" if data in (None, FOLDER) else str(data)

    def _on_model_chosen(self, _index: int) -> None:
        if self.model_box.currentData() == FOLDER:
            path = QFileDialog.getExistingDirectory(self, "A reward model folder (instant or fine-tuned)")
            if path:
                self.use_model_folder(path)
            else:
                self.model_box.setCurrentIndex(0)
            return
        self._schedule()

    def shutdown(self) -> None:
        self._timer.stop()
        self.engine.shutdown()

    # -- candidates ----------------------------------------------------------------------

    def add_candidate(self, text: str = "") -> Candidate:
        candidate = Candidate(len(self.candidates) + 1, text)
        candidate.edit.textChanged.connect(self._schedule)
        candidate.remove.clicked.connect(lambda: self.remove_candidate(candidate))
        self.candidates.append(candidate)
        self.candidate_layout.insertWidget(self.candidate_layout.count() - 1, candidate)
        self._renumber()
        return candidate

    def remove_candidate(self, candidate: Candidate) -> None:
        if len(self.candidates) <= 1:
            return
        self.candidates.remove(candidate)
        candidate.deleteLater()
        self._renumber()
        self._schedule()

    def _renumber(self) -> None:
        current = self.explain_box.currentIndex()
        self.explain_box.blockSignals(True)
        self.explain_box.clear()
        for i, candidate in enumerate(self.candidates, 1):
            candidate.set_number(i)
            candidate.remove.setEnabled(len(self.candidates) > 1)
            self.explain_box.addItem(str(i))
        self.explain_box.setCurrentIndex(min(max(current, 0), len(self.candidates) - 1))
        self.explain_box.blockSignals(False)

    def set_texts(self, prompt: str, responses: list[str]) -> None:
        """Fill the page (a pair from the project, a test): one candidate per response."""
        while len(self.candidates) > max(1, len(responses)):
            self.remove_candidate(self.candidates[-1])
        while len(self.candidates) < len(responses):
            self.add_candidate()
        for candidate, text in zip(self.candidates, responses):
            candidate.edit.setPlainText(text)
        self.prompt.setPlainText(prompt)

    def open_project_prompts(self) -> ProjectPromptsDialog | None:
        """The list of the project's prompts (window-modal, not blocking: tests drive it too)."""
        if self.project is None:
            return None
        dialog = ProjectPromptsDialog(self.project, self)
        dialog.sig_chosen.connect(self._on_project_prompt_chosen)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _on_project_prompt_chosen(self, prompt_id: int) -> None:
        try:
            prompt, responses = prompt_with_responses(self.project, prompt_id)
        except ProjectError as exc:
            self.message.setText(str(exc))
            return
        self.set_texts(prompt, responses)
        self.message.setText(f"The {len(responses)} responses of prompt #{prompt_id} from the project.")

    # -- scoring -------------------------------------------------------------------------

    def _schedule(self, *_args) -> None:
        self._timer.start()

    def score_now(self) -> None:
        self._timer.stop()
        path = self.model_path()
        texts = [c.text() for c in self.candidates]
        filled = [i for i, t in enumerate(texts) if t.strip()]
        if not path or not self.prompt.toPlainText().strip() or not filled:
            self.rewards = []
            for candidate in self.candidates:
                candidate.set_best(False)  # nothing is ranked now
            self.headline.setText("Type a prompt and a response." if path else "Choose a reward model.")
            return
        explain = self.explain_box.currentIndex()
        self.engine.request(ScoreRequest(path, self.prompt.toPlainText(), [texts[i] for i in filled],
                                         filled.index(explain) if explain in filled else None))
        self._filled = filled

    def _on_scored(self, request: ScoreRequest, result: dict) -> None:
        self.message.setText("")
        filled, rewards, normalized = self._filled, result["rewards"], result["normalized"]
        self.rewards = [math.nan] * len(self.candidates)
        for rank, i in enumerate(np.argsort(rewards)[::-1], 1):
            text = f"#{rank} · reward <b>{rewards[i]:+.3f}</b>"
            if normalized is not None:
                text += f" · normalised {normalized[i]:+.2f} σ"
            self.candidates[filled[i]].reward.setText(text)
            self.rewards[filled[i]] = rewards[i]
        best = filled[int(np.argmax(rewards))]
        for i, candidate in enumerate(self.candidates):
            candidate.set_best(i == best)
            if i not in filled:
                candidate.reward.setText("—")
        self._draw(filled, rewards)
        if result["prefix"] is not None:
            self.explain.show_prefix(result["prefix"])

    def _draw(self, filled: list[int], rewards: list[float]) -> None:
        best = int(np.argmax(rewards))
        self.headline.setText(f"Best: <b>response {filled[best] + 1}</b>, reward {rewards[best]:+.3f}"
                              + self._placement(rewards[best]))
        item = self.bars.getPlotItem()
        item.clear()
        xs = [i + 1 for i in filled]
        brushes = [color(0) if i != best else color(2) for i in range(len(rewards))]
        item.addItem(pg.BarGraphItem(x=xs, height=rewards, width=0.6, brushes=brushes))
        item.getAxis("bottom").setTicks([[(x, str(x)) for x in xs]])  # responses, not a scale
        n = len(rewards)
        self.matrix.setRowCount(n)
        self.matrix.setColumnCount(n)
        labels = [str(i + 1) for i in filled]
        self.matrix.setHorizontalHeaderLabels(labels)
        self.matrix.setVerticalHeaderLabels(labels)
        for r in range(n):
            for c in range(n):
                p = 1 / (1 + math.exp(-(rewards[r] - rewards[c])))
                self.matrix.setItem(r, c, QTableWidgetItem("—" if r == c else f"{p:.0%}"))

    def _placement(self, reward: float) -> str:
        """Where ``reward`` falls among the chosen model's validation rewards, when it has some."""
        entry = next((e for e in self.entries if e.path == self.model_path()), None)
        if entry is None or not entry.rewards_chosen:
            return ""
        every = np.array(entry.rewards_chosen + entry.rewards_rejected)
        share = float((every < reward).mean())
        return (f"<br><small>above {share:.0%} of the validation responses of run #{entry.run_id} "
                f"(chosen mean {np.mean(entry.rewards_chosen):+.2f}, rejected mean "
                f"{np.mean(entry.rewards_rejected):+.2f})</small>")

    def _on_failed(self, message: str) -> None:
        self.message.setText(f"<span style='color:{colour('error')}'>Could not score: {message}</span>")

    # -- occlusion -----------------------------------------------------------------------

    def _on_occlude_clicked(self) -> None:
        if self.engine._occlusion is not None:
            self.engine.cancel_occlusion()
            return
        index = self.explain_box.currentIndex()
        path = self.model_path()
        if not path or index < 0 or not self.candidates[index].text().strip():
            return
        self._occluded_text = self.candidates[index].text()
        self.occlude_button.setText("Stop")
        self.engine.occlude(path, self.prompt.toPlainText(), self._occluded_text)

    def _on_occluded(self, occlusion) -> None:
        self.occlude_button.setText("Leave one word out")
        self.explain.show_occlusion(self._occluded_text, occlusion)

    # -- to the label queue --------------------------------------------------------------

    def send_to_labeling(self) -> None:
        picked = [c for c in self.candidates if c.pick.isChecked()]
        if len(picked) != 2:
            self.message.setText("Tick exactly two responses to compare.")
            return
        if self.writer is None:
            self.message.setText("Open a project first.")
            return
        pair = NewPair(self.prompt.toPlainText(), picked[0].text(), picked[1].text(), "typed in Score",
                       "typed in Score")
        self._pair_request = self.writer.add_pairs([pair])

    def _on_saved(self, result: dict) -> None:
        if result.get("request_id") != self._pair_request:
            return
        self._pair_request = None
        if result.get("pairs_error"):
            self.message.setText(f"Not sent: {result['pairs_error']}")
            return
        added = int(result.get("added", 0))
        self.message.setText("Sent: the pair is in the label queue." if added else
                             "That pair is already in the project.")
        for candidate in self.candidates:
            candidate.pick.setChecked(False)
        self.sig_pairs_sent.emit(added)
