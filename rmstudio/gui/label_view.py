"""The Label page's layout (queue bar, pair view) and its key map: what the screen shows and
which key means what.

Kept apart from ``label_page`` (which reads the queue and writes labels) so the layout can be
read in one place.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFrame, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton,
    QSpinBox, QSplitter, QTextBrowser, QVBoxLayout, QWidget,
)

from rmstudio.gui.label_order import ActiveOrderChoice
from rmstudio.gui.pages import heading, paragraph

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
PANEL_SPACING = 2  # px between a panel's header and its text
PROGRESS_BAR_WIDTH = 160  # px, fixed: a bar that stretched changed width with the texts beside it


def better_saved_text(comparisons_added: int) -> str:
    """What saving a written response stored: besides "both bad" on the shown pair, the written
    one against each of the two, both labeled, so "labeled" and "you" move by three at once."""
    pairs = {2: "2 new comparisons", 1: "1 new and 1 existing comparison"}.get(
        comparisons_added, "its 2 existing comparisons")
    return f"both bad; your response: {pairs} labeled, yours beats both"


def browser() -> QTextBrowser:
    view = QTextBrowser()
    view.setOpenLinks(False)  # a link in a response must not navigate the view away
    view.setFocusPolicy(Qt.NoFocus)  # keys belong to the page; the mouse still selects text
    view.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return view


def panel(title: str, view: QWidget) -> tuple[QWidget, QLabel]:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(PANEL_SPACING)
    header = QLabel(title)
    header.setStyleSheet("font-weight: 600;")
    layout.addWidget(header)
    layout.addWidget(view, 1)
    return box, header


class PairSplitter(QSplitter):
    """The prompt over the two responses. The prompt gets the height its text needs, up to
    ``PROMPT_MAX_SHARE`` of the view (then it scrolls), and the responses the rest: with fixed
    stretch factors a one-line prompt took a third of the height. Refitted on each pair and
    each resize; a drag on the handle holds until then."""

    PROMPT_MAX_SHARE = 0.4
    PROMPT_MIN = 60  # px: the header and one line, even on a very short window

    def __init__(self, prompt_panel: QWidget, prompt_header: QLabel, prompt_view: QTextBrowser,
                 sides: QWidget):
        super().__init__(Qt.Vertical)
        self.prompt_header, self.prompt_view = prompt_header, prompt_view
        self.addWidget(prompt_panel)
        self.addWidget(sides)
        self.setStretchFactor(0, 0)
        self.setStretchFactor(1, 1)
        self.setChildrenCollapsible(False)

    def prompt_height(self) -> int:
        """Header, frame and laid-out text of the prompt at the splitter's width (read from the
        splitter, not the view: in a resize the view's own geometry is not updated yet)."""
        view = self.prompt_view
        doc = view.document()
        doc.setTextWidth(max(self.width() - 2 * view.frameWidth(), 50))
        chrome = self.prompt_header.sizeHint().height() + PANEL_SPACING + 2 * view.frameWidth()
        return int(doc.size().height()) + chrome + 2

    def fit_prompt(self) -> None:
        total = sum(self.sizes())
        if total <= 0:
            return
        cap = max(self.PROMPT_MIN, int(total * self.PROMPT_MAX_SHARE))
        wanted = min(max(self.prompt_height(), self.PROMPT_MIN), cap)
        self.setSizes([wanted, total - wanted])

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.fit_prompt()


def build_pair_view(page) -> QWidget:
    """The prompt over the two responses, the both-bad box, the note and the action buttons, as
    attributes of ``page`` (the Label page handles their clicks and keys)."""
    view = QWidget()
    layout = QVBoxLayout(view)
    layout.setContentsMargins(0, 4, 0, 0)
    page.prompt_view = browser()
    page.left_view, page.right_view = browser(), browser()
    prompt_panel, page.prompt_header = panel("Prompt", page.prompt_view)
    left_panel, page.left_header = panel("Response 1  (key 1 / ←)", page.left_view)
    right_panel, page.right_header = panel("Response 2  (key 2 / →)", page.right_view)
    sides = QSplitter(Qt.Horizontal)
    sides.addWidget(left_panel)
    sides.addWidget(right_panel)
    sides.setChildrenCollapsible(False)
    page.splitter = PairSplitter(prompt_panel, page.prompt_header, page.prompt_view, sides)
    # Why "Highlight differences" marks nothing on this pair (responses too unlike).
    page.diff_note = QLabel("")
    page.diff_note.setWordWrap(True)
    page.diff_note.setStyleSheet("color: palette(placeholder-text); font-style: italic;")
    page.diff_note.hide()
    layout.addWidget(page.diff_note)
    layout.addWidget(page.splitter, 1)

    page.better_box = QFrame()
    page.better_box.setFrameShape(QFrame.StyledPanel)
    better = QVBoxLayout(page.better_box)
    better.addWidget(QLabel("<b>Both are bad.</b> Write a better response (optional) — it is "
                            "stored and preferred over both. Esc cancels."))
    page.better_edit = QPlainTextEdit()
    page.better_edit.setPlaceholderText("A better response to the prompt…")
    page.better_edit.setMaximumHeight(140)
    page.better_edit.installEventFilter(page)
    better.addWidget(page.better_edit)
    row = QHBoxLayout()
    page.save_better_button = QPushButton("Save better response  [Ctrl+Enter]")
    page.save_better_button.clicked.connect(page._on_save_better_clicked)
    page.skip_writing_button = QPushButton("Skip writing (just both bad)  [4]")
    page.skip_writing_button.clicked.connect(page._on_skip_writing_clicked)
    for button in (page.save_better_button, page.skip_writing_button):
        button.setFocusPolicy(Qt.NoFocus)
        row.addWidget(button)
    row.addStretch(1)
    better.addLayout(row)
    page.better_box.hide()
    layout.addWidget(page.better_box)

    note_row = QHBoxLayout()
    page.note = QLineEdit()
    page.note.setPlaceholderText("Note (optional, stored with the next label) — Enter or Esc "
                                 "returns to the label keys")
    page.note.setClearButtonEnabled(True)
    page.note.returnPressed.connect(page.setFocus)
    page.note.installEventFilter(page)
    note_row.addWidget(page.note, 1)
    layout.addLayout(note_row)

    buttons = QHBoxLayout()
    page.action_buttons = {}
    for text, choice, strength in ACTION_BUTTONS:
        button = QPushButton(text)
        button.setFocusPolicy(Qt.NoFocus)  # Space must skip, not press a focused button
        button.clicked.connect(lambda _c=False, c=choice, s=strength: page.act(c, s))
        page.action_buttons[(choice, strength)] = button
        buttons.addWidget(button)
    buttons.addStretch(1)
    page.undo_button = QPushButton("Undo  [Ctrl+Z]")
    page.undo_button.setFocusPolicy(Qt.NoFocus)
    page.undo_button.clicked.connect(page.undo)
    buttons.addWidget(page.undo_button)
    layout.addLayout(buttons)
    return view


def build_queue_bar(page) -> QHBoxLayout:
    """The page's title and the queue settings beside it: order, share of second labels, diff."""
    top = QHBoxLayout()
    top.addWidget(heading("Label"))
    top.addStretch(1)
    page.order_box = QComboBox()
    for key, title in ORDERS:
        page.order_box.addItem(title, key)
    page.order_box.setToolTip("Which unlabeled pair comes next")
    page.order_box.activated.connect(page._on_order_activated)
    page.overlap_box = QSpinBox()
    page.overlap_box.setRange(0, 100)
    page.overlap_box.setSuffix(" % second labels")
    page.overlap_box.setToolTip("Share of pairs another annotator labeled that you are asked "
                                "to label too, so agreement can be measured")
    page.overlap_box.valueChanged.connect(page._on_overlap_changed)
    # Most informative first under the live model (issue #18); created before the page's focus
    # loop, so its box gets Qt.NoFocus like every other control there.
    page.active = ActiveOrderChoice(page)
    page.active.sig_changed.connect(page._on_active_changed)
    page.diff_check = QCheckBox("Highlight differences")
    page.diff_check.toggled.connect(lambda _on: page._render())
    # The share is typed (digits, like the label keys), so the box takes focus on a click;
    # an arrow click, Enter or Esc hands the keys back to the page (its eventFilter).
    page.overlap_box.setFocusPolicy(Qt.ClickFocus)
    page.overlap_box.installEventFilter(page)
    page.overlap_box.editingFinished.connect(page._keys_to_page)
    for widget in (page.order_box, page.active.box, page.overlap_box, page.diff_check):
        top.addWidget(widget)
    return top


def build_progress_bar(page) -> QHBoxLayout:
    """Progress through the queue, why this pair came first, and what was just saved."""
    bar = QHBoxLayout()
    page.progress_bar = QProgressBar()
    page.progress_bar.setTextVisible(False)
    page.progress_bar.setMaximumHeight(10)
    page.progress_bar.setFixedWidth(PROGRESS_BAR_WIDTH)
    page.progress_text = QLabel("")
    page.status = QLabel("")
    page.status.setObjectName("label_status")
    bar.addWidget(page.progress_bar)
    bar.addWidget(page.progress_text)
    bar.addSpacing(12)
    bar.addWidget(page.active.reason)
    bar.addSpacing(12)
    bar.addWidget(page.status, 1)  # the texts take the rest; a long "Saved ✓ (…)" fits
    return bar


def build_empty_view(page) -> QWidget:
    """What the page says when there is nothing to label (its title and text set later)."""
    page.empty = QWidget()
    empty_layout = QVBoxLayout(page.empty)
    page.empty_title = heading("")
    page.empty_text = paragraph("")
    empty_layout.addSpacing(40)
    page.empty_text.setAlignment(Qt.AlignHCenter)
    empty_layout.setContentsMargins(120, 0, 120, 0)
    empty_layout.addWidget(page.empty_title, alignment=Qt.AlignHCenter)
    empty_layout.addWidget(page.empty_text)  # no layout alignment: it would cut wrapped lines
    empty_layout.addStretch(1)
    return page.empty
