"""The Label workspace: one pair at a time, side by side, labeled from the keyboard.

Reads go through the UI thread's ``Project`` (one indexed query per pair); every write goes to
the ``StoreWriter`` thread, and label keys are ignored until its commit comes back, so a label
is on disk before "Saved ✓" shows and before the next pair appears.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from rmstudio.core.labeling.queue import (
    displayed_to_stored,
    next_for_annotator,
    progress,
    side_swap,
)
from rmstudio.core.store.project import Comparison, Project
from rmstudio.core.labeling.relabel import review_queue
from rmstudio.core.timefmt import format_duration
from rmstudio.gui.label_diff import diff_view
from rmstudio.gui.label_order import ActiveOrderChoice
from rmstudio.gui.label_render import flat_response, text_html
from rmstudio.gui.pages import heading, paragraph
from rmstudio.gui.store_writer import StoreWriter

# key, shift held -> (what was pressed about the screen, strength). Shift+1/2 arrive as the
# shifted character on real keyboards ('!', '@' or '"'), as Key_1/Key_2 + Shift from tests.
LABEL_KEYS: dict[tuple[int, bool], tuple[str, int | None]] = {
    (Qt.Key_1, False): ("left", 1), (Qt.Key_Left, False): ("left", 1),
    (Qt.Key_1, True): ("left", 2), (Qt.Key_Exclam, True): ("left", 2), (Qt.Key_Left, True): ("left", 2),
    (Qt.Key_2, False): ("right", 1), (Qt.Key_Right, False): ("right", 1),
    (Qt.Key_2, True): ("right", 2), (Qt.Key_At, True): ("right", 2),
    (Qt.Key_QuoteDbl, True): ("right", 2), (Qt.Key_Right, True): ("right", 2),
    (Qt.Key_3, False): ("tie", None), (Qt.Key_4, False): ("both_bad", None),
    (Qt.Key_Space, False): ("skip", None),
}
ACTION_BUTTONS = [  # (text, displayed choice, strength)
    ("◀◀ Left much better  [⇧1]", "left", 2), ("◀ Left better  [1]", "left", 1),
    ("Tie  [3]", "tie", None), ("Both bad  [4]", "both_bad", None), ("Skip  [Space]", "skip", None),
    ("Right better  [2] ▶", "right", 1), ("Right much better  [⇧2] ▶▶", "right", 2),
]
SAID = {("left", 1): "left better", ("left", 2): "left much better", ("right", 1): "right better",
        ("right", 2): "right much better", ("tie", None): "tie", ("both_bad", None): "both bad",
        ("skip", None): "skipped"}
ORDERS = [("import", "Import order"), ("random", "Random order")]


def _browser() -> QTextBrowser:
    view = QTextBrowser()
    view.setOpenLinks(False)  # a link in a response must not navigate the view away
    view.setFocusPolicy(Qt.NoFocus)  # keys belong to the page; the mouse still selects text
    view.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return view


def _panel(title: str, view: QWidget) -> tuple[QWidget, QLabel]:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    header = QLabel(title)
    header.setStyleSheet("font-weight: 600;")
    layout.addWidget(header)
    layout.addWidget(view, 1)
    return box, header


class LabelPage(QWidget):
    sig_labeled = Signal()  # a label (or undo) was committed and the next pair is shown

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.writer: StoreWriter | None = None
        self.annotator = "annotator"
        self.order = "import"
        self.overlap_share = 0.0
        self.current: Comparison | None = None
        self.swapped = False
        self.review_note = ""
        self._pending: int | None = None  # request id of the label write in flight
        self._shortcuts: dict = {}
        self.setFocusPolicy(Qt.StrongFocus)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        top = QHBoxLayout()
        top.addWidget(heading("Label"))
        top.addStretch(1)
        self.order_box = QComboBox()
        for key, title in ORDERS:
            self.order_box.addItem(title, key)
        self.order_box.setToolTip("Which unlabeled pair comes next")
        self.order_box.activated.connect(self._on_order_activated)
        self.overlap_box = QSpinBox()
        self.overlap_box.setRange(0, 100)
        self.overlap_box.setSuffix(" % second labels")
        self.overlap_box.setToolTip("Share of pairs another annotator labeled that you are asked "
                                    "to label too, so agreement can be measured")
        self.overlap_box.valueChanged.connect(self._on_overlap_changed)
        # Most informative first under the live model (issue #18); created before the focus
        # loop below, so its box gets Qt.NoFocus like every other control here.
        self.active = ActiveOrderChoice(self)
        self.active.sig_changed.connect(self._on_active_changed)
        self.diff_check = QCheckBox("Highlight differences")
        self.diff_check.toggled.connect(lambda _on: self._render())
        # The share is typed (digits, like the label keys), so the box takes focus on a click;
        # an arrow click, Enter or Esc hands the keys back to the page (eventFilter).
        self.overlap_box.setFocusPolicy(Qt.ClickFocus)
        self.overlap_box.installEventFilter(self)
        self.overlap_box.editingFinished.connect(self._keys_to_page)
        for widget in (self.order_box, self.active.box, self.overlap_box, self.diff_check):
            top.addWidget(widget)
        layout.addLayout(top)

        bar = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(10)
        self.progress_text = QLabel("")
        self.status = QLabel("")
        self.status.setObjectName("label_status")
        bar.addWidget(self.progress_bar, 1)
        bar.addWidget(self.progress_text)
        bar.addSpacing(12)
        bar.addWidget(self.active.reason)
        bar.addSpacing(12)
        bar.addWidget(self.status)
        layout.addLayout(bar)

        self.stack = QStackedWidget()
        layout.addWidget(self.stack, 1)
        self.empty = QWidget()
        empty_layout = QVBoxLayout(self.empty)
        self.empty_title = heading("")
        self.empty_text = paragraph("")
        empty_layout.addSpacing(40)
        self.empty_text.setAlignment(Qt.AlignHCenter)
        empty_layout.setContentsMargins(120, 0, 120, 0)
        empty_layout.addWidget(self.empty_title, alignment=Qt.AlignHCenter)
        empty_layout.addWidget(self.empty_text)  # no layout alignment: it would cut wrapped lines
        empty_layout.addStretch(1)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self._build_pair_view())
        self._refresh_timer = QTimer(self, singleShot=True, interval=0)
        self._refresh_timer.timeout.connect(self._refresh_progress)
        # No button, checkbox or list on this page ever takes the keyboard: clicked, a focused
        # "Highlight differences" took Space (toggling itself instead of skipping the pair) and
        # a focused list took the arrow keys. Set for every one here, so a new control can't forget.
        for kind in (QAbstractButton, QComboBox):
            for widget in self.findChildren(kind):
                widget.setFocusPolicy(Qt.NoFocus)
        self._show_empty()

    def _build_pair_view(self) -> QWidget:
        view = QWidget()
        layout = QVBoxLayout(view)
        layout.setContentsMargins(0, 4, 0, 0)
        self.prompt_view = _browser()
        self.left_view, self.right_view = _browser(), _browser()
        prompt_panel, self.prompt_header = _panel("Prompt", self.prompt_view)
        left_panel, self.left_header = _panel("Response 1  (key 1 / ←)", self.left_view)
        right_panel, self.right_header = _panel("Response 2  (key 2 / →)", self.right_view)
        sides = QSplitter(Qt.Horizontal)
        sides.addWidget(left_panel)
        sides.addWidget(right_panel)
        sides.setChildrenCollapsible(False)
        self.splitter = QSplitter(Qt.Vertical)
        self.splitter.addWidget(prompt_panel)
        self.splitter.addWidget(sides)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        # Why "Highlight differences" marks nothing on this pair (responses too unlike).
        self.diff_note = QLabel("")
        self.diff_note.setWordWrap(True)
        self.diff_note.setStyleSheet("color: palette(placeholder-text); font-style: italic;")
        self.diff_note.hide()
        layout.addWidget(self.diff_note)
        layout.addWidget(self.splitter, 1)

        self.better_box = QFrame()
        self.better_box.setFrameShape(QFrame.StyledPanel)
        better = QVBoxLayout(self.better_box)
        better.addWidget(QLabel("<b>Both are bad.</b> Write a better response (optional) — it is "
                                "stored and preferred over both. Esc cancels."))
        self.better_edit = QPlainTextEdit()
        self.better_edit.setPlaceholderText("A better response to the prompt…")
        self.better_edit.setMaximumHeight(140)
        self.better_edit.installEventFilter(self)
        better.addWidget(self.better_edit)
        row = QHBoxLayout()
        self.save_better_button = QPushButton("Save better response  [Ctrl+Enter]")
        self.save_better_button.clicked.connect(self._on_save_better_clicked)
        self.skip_writing_button = QPushButton("Skip writing (just both bad)  [4]")
        self.skip_writing_button.clicked.connect(self._on_skip_writing_clicked)
        for button in (self.save_better_button, self.skip_writing_button):
            button.setFocusPolicy(Qt.NoFocus)
            row.addWidget(button)
        row.addStretch(1)
        better.addLayout(row)
        self.better_box.hide()
        layout.addWidget(self.better_box)

        note_row = QHBoxLayout()
        self.note = QLineEdit()
        self.note.setPlaceholderText("Note (optional, stored with the next label) — Enter or Esc "
                                     "returns to the label keys")
        self.note.setClearButtonEnabled(True)
        self.note.returnPressed.connect(self.setFocus)
        self.note.installEventFilter(self)
        note_row.addWidget(self.note, 1)
        layout.addLayout(note_row)

        buttons = QHBoxLayout()
        self.action_buttons = {}
        for text, choice, strength in ACTION_BUTTONS:
            button = QPushButton(text)
            button.setFocusPolicy(Qt.NoFocus)  # Space must skip, not press a focused button
            button.clicked.connect(lambda _c=False, c=choice, s=strength: self.act(c, s))
            self.action_buttons[(choice, strength)] = button
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.undo_button = QPushButton("Undo  [Ctrl+Z]")
        self.undo_button.setFocusPolicy(Qt.NoFocus)
        self.undo_button.clicked.connect(self.undo)
        buttons.addWidget(self.undo_button)
        layout.addLayout(buttons)
        return view

    # -- project and annotator -----------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        self.shutdown()
        self.project = project
        self.current = None
        if project is not None:
            self.writer = StoreWriter(project.path)
            self.writer.sig_saved.connect(self._on_writer_saved)
            self.writer.sig_failed.connect(self._on_writer_failed)
            self.order = project.setting("label.order", "import")
            self.overlap_share = float(project.setting("label.overlap_share", 0.0))
            self.order_box.setCurrentIndex(max(0, self.order_box.findData(self.order)))
            self.overlap_box.blockSignals(True)
            self.overlap_box.setValue(round(self.overlap_share * 100))
            self.overlap_box.blockSignals(False)
        self.status.setText("")
        self.show_next()

    def set_annotator(self, name: str) -> None:
        self.annotator = name
        if self.project is not None:
            self.show_next()

    def shutdown(self) -> None:
        """Finish queued writes and end the writer thread (before the project closes)."""
        if self.writer is not None:
            self.writer.stop()
            self.writer.sig_saved.disconnect(self._on_writer_saved)
            self.writer.sig_failed.disconnect(self._on_writer_failed)
            self.writer = None
        self._pending = None

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    # -- showing pairs -------------------------------------------------------------------

    def show_next(self) -> None:
        if self.project is None:
            self._show_empty()
            return
        cid = next_for_annotator(self.project, self.annotator, self.order, self.overlap_share,
                                 front=self.active.front())
        self.active.shown(cid)
        if cid is None:
            self._show_empty()
        else:
            self.show_comparison(cid)

    def show_comparison(self, comparison_id: int) -> None:
        """Show one pair, on the sides this annotator always sees it on; reuses the views."""
        self.current = self.project.comparison(comparison_id)
        self.swapped = side_swap(comparison_id, self.annotator)
        self.review_note = self._review_note(comparison_id)
        self._close_better_box()
        self._render()
        if self.stack.currentIndex() != 1:
            self.stack.setCurrentIndex(1)
        self._install_shortcuts("pair")
        self._refresh_timer.start()

    def _review_note(self, comparison_id: int) -> str:
        """A badge for a pair sent back for another look, with this annotator's earlier label."""
        if comparison_id not in review_queue(self.project, self.annotator):
            return ""
        earlier = self.project.label(comparison_id, self.annotator)
        said = ""
        if earlier is not None:
            shown = {"a": "right" if self.swapped else "left", "b": "left" if self.swapped else "right",
                     "tie": "tie", "both_bad": "both bad", "skip": "skip"}[earlier.choice]
            said = f" (your earlier label: {shown})"
        return f"  ·  <b style='color:#c77700'>sent back for review</b>{said}"

    def _render(self) -> None:
        if self.current is None:
            return
        c = self.current
        left, right = (c.response_b, c.response_a) if self.swapped else (c.response_a, c.response_b)
        role_color = self.palette().link().color().name()
        self.prompt_header.setText(f"Prompt  ·  pair #{c.id}{self.review_note}")
        self.prompt_view.setHtml(text_html(c.prompt, role_color, turns=True))
        # The last turn is the one being answered: show the end of a long conversation.
        bar = self.prompt_view.verticalScrollBar()
        bar.setValue(bar.maximum())
        note = ""
        if self.diff_check.isChecked():
            dark = self.palette().base().color().lightness() < 128
            view = diff_view(flat_response(left), flat_response(right), dark)
            left_html, right_html, note = view.left, view.right, view.note
        else:
            left_html, right_html = text_html(left, role_color, False), text_html(right, role_color, False)
        self.diff_note.setText(note)
        self.diff_note.setVisible(bool(note))
        self.left_view.setHtml(left_html)
        self.right_view.setHtml(right_html)

    def _show_empty(self) -> None:
        self.current = None
        self._close_better_box()
        if self.project is None:
            title, text = "No project open", "Open or create a project to label pairs."
        elif not self.project.has_comparisons():
            title = "No pairs to label yet"
            text = ("This project has no comparisons. Import pairs of responses on the "
                    "<b>Data</b> page, or generate responses to your prompts to make pairs.")
        else:
            title = "Everything is labeled ✓"
            text = ("There is no pair left for you: every comparison has a label"
                    + (" and no second label is due." if self.overlap_share > 0 else ".")
                    + " Import or generate more pairs, raise the share of second labels, or "
                      "train a reward model on what you labeled.")
        self.empty_title.setText(title)
        self.empty_text.setText(text)
        self.stack.setCurrentIndex(0)
        self._install_shortcuts("empty")
        self._refresh_progress()

    def _refresh_progress(self) -> None:
        if self.project is None:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_text.setText("")
            return
        p = progress(self.project, self.annotator)
        self.progress_bar.setRange(0, max(p["total"], 1))
        self.progress_bar.setValue(p["labeled"])
        self.progress_text.setText(
            f"{p['labeled']:,} / {p['total']:,} labeled  ·  you: {p['mine']:,}  ·  "
            f"{p['rate_per_hour']:,.0f}/h  ·  {p['remaining']:,} left  ·  "
            f"ETA {format_duration(p['eta_seconds'])}")

    # -- keys and actions ----------------------------------------------------------------

    def _install_shortcuts(self, state: str) -> None:
        """Shortcuts are data, per state: label keys only while a pair is shown."""
        if state == "pair":
            self._shortcuts = {key: (lambda c=c, s=s: self.act(c, s)) for key, (c, s) in LABEL_KEYS.items()}
        elif state == "better":
            self._shortcuts = {(Qt.Key_4, False): self._on_skip_writing_clicked,
                               (Qt.Key_Escape, False): self._close_better_box}
        else:
            self._shortcuts = {}

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.matches(QKeySequence.Undo):
            self.undo()
            return
        if event.key() in (Qt.Key_Escape, Qt.Key_Return, Qt.Key_Enter) and self.focusWidget() is self.note:
            self.setFocus()
            return
        shift = bool(event.modifiers() & Qt.ShiftModifier)
        handler = self._shortcuts.get((event.key(), shift))
        others = event.modifiers() & ~(Qt.ShiftModifier | Qt.KeypadModifier)
        if handler is None or others:
            super().keyPressEvent(event)
            return
        handler()

    def _keys_to_page(self) -> None:
        # Only from the share box: when it lost focus to the note field, the note keeps it.
        if QApplication.focusWidget() is self.overlap_box:
            self.setFocus()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if watched is self.overlap_box:
            # Clicks on its arrows reach the box itself (clicks on the number, its line edit):
            # a step changes the share and the keys stay with the labels.
            if event.type() == event.Type.MouseButtonRelease:
                QTimer.singleShot(0, self._keys_to_page)
            elif event.type() == event.Type.KeyPress and event.key() in (
                    Qt.Key_Escape, Qt.Key_Return, Qt.Key_Enter):
                self.overlap_box.interpretText()
                self.setFocus()
                return True
            return super().eventFilter(watched, event)
        if event.type() == event.Type.KeyPress:
            if watched is self.note and event.key() == Qt.Key_Escape:
                self.setFocus()
                return True
            if watched is self.better_edit:
                if event.key() == Qt.Key_Escape:
                    self._close_better_box()
                    return True
                if event.key() in (Qt.Key_Return, Qt.Key_Enter) and event.modifiers() & Qt.ControlModifier:
                    self._on_save_better_clicked()
                    return True
        return super().eventFilter(watched, event)

    @property
    def saving(self) -> bool:
        return self._pending is not None

    def act(self, choice: str, strength: int | None = None) -> None:
        """What a label key or button does: store the label for the shown pair."""
        if self.saving or self.current is None or self.writer is None:
            return  # a save is in flight: the next pair is not on screen yet
        if choice == "both_bad" and not self.better_box.isVisible():
            self._open_better_box()
            return
        stored = displayed_to_stored(choice, self.swapped)
        self._pending = self.writer.set_label(self.current.id, self.annotator, stored,
                                              strength if stored in ("a", "b") else None,
                                              self.note.text().strip() or None)
        self._said = SAID.get((choice, strength), choice)
        self.status.setText("Saving…")

    def undo(self) -> None:
        if self.saving or self.writer is None:
            return
        self._close_better_box()
        self._pending = self.writer.undo(self.annotator)
        self.status.setText("Undoing…")

    def _open_better_box(self) -> None:
        self.better_box.show()
        self.better_edit.setFocus()
        self._install_shortcuts("better")

    def _close_better_box(self) -> None:
        if self.better_box.isVisible():
            self.better_box.hide()
            self.setFocus()
        self._install_shortcuts("pair" if self.current is not None else "empty")

    def _on_save_better_clicked(self) -> None:
        text = self.better_edit.toPlainText().strip()
        if not text:
            self._on_skip_writing_clicked()
            return
        if self.saving or self.current is None or self.writer is None:
            return
        self._pending = self.writer.add_better_response(self.current.id, self.annotator, text,
                                                        self.note.text().strip() or None)
        self._said = "both bad, better response written"
        self.status.setText("Saving…")

    def _on_skip_writing_clicked(self) -> None:
        self.act("both_bad")

    # -- writer answers ------------------------------------------------------------------

    def _on_writer_saved(self, result: dict) -> None:
        if result.get("request_id") != self._pending:
            return  # a settings write
        self._pending = None
        if result["op"] == "undo":
            cid = result.get("comparison_id")
            if cid is None:
                self.status.setText("Nothing to undo")
                return
            self.show_comparison(cid)
            label = self.project.label(cid, self.annotator)
            self.status.setText("Undone ✓ — " + ("showing that pair again" if label is None
                                                 else f"its label is back to {label.choice}"))
            self.sig_labeled.emit()
            return
        self.note.clear()
        self.better_edit.clear()
        self.status.setText(f"Saved ✓  ({self._said})")
        self.show_next()
        self.sig_labeled.emit()  # after the next pair is on screen

    def _on_writer_failed(self, message: str) -> None:
        self._pending = None
        self.status.setText(f"Not saved: {message}")

    # -- queue settings (stored in the project, through the writer thread) ---------------

    def _on_order_activated(self, _index: int) -> None:
        self.order = self.order_box.currentData()
        if self.writer is not None:
            self.writer.set_setting("label.order", self.order)
        self.setFocus()
        if not self.saving:
            self.show_next()

    def attach_live_model(self, live) -> None:
        """The live reward model whose fits the "Order" choice follows."""
        self.active.attach(live)

    def _on_active_changed(self) -> None:
        self.setFocus()
        if not self.saving:
            self.show_next()

    def _on_overlap_changed(self, value: int) -> None:
        self.overlap_share = value / 100
        if self.writer is not None:
            self.writer.set_setting("label.overlap_share", self.overlap_share)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self.active.live is None:  # the window's live model, when it has one
            from rmstudio.gui.live_model import LiveModelController

            self.attach_live_model(self.window().findChild(LiveModelController))
        self.setFocus()

