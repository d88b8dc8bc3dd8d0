"""The Browse workspace: every label in a lazily loaded table, filters, a detail pane to change
or delete one, and how much the annotators agree."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
    QPlainTextEdit, QPushButton, QSplitter, QTableView, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from rmstudio.core.labeling.agreement import project_agreement
from rmstudio.core.store.project import Project
from rmstudio.core.data.records import CHOICES
from rmstudio.gui.browse_model import CHOICE_NAMES, NO_STRENGTH, LabelTableModel, strength_text
from rmstudio.gui.pages import heading
from rmstudio.gui.theme import colour

SEARCH_DEBOUNCE_MS = 250


class LabelDetail(QWidget):
    """The opened label: prompt, both responses, and buttons that change or delete it."""

    sig_choice_clicked = Signal(str)
    sig_delete_clicked = Signal()
    sig_open_clicked = Signal()

    def __init__(self):
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("Open a label (double-click or Enter) to see it here.")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.prompt = self._text_box("Prompt")
        layout.addWidget(QLabel("<b>Prompt</b>"))
        layout.addWidget(self.prompt, 2)
        sides = QHBoxLayout()
        self.response_a, self.response_b = self._text_box("A"), self._text_box("B")
        for name, box in (("A", self.response_a), ("B", self.response_b)):
            column = QVBoxLayout()
            column.addWidget(QLabel(f"<b>Response {name}</b>"))
            column.addWidget(box)
            sides.addLayout(column)
        layout.addLayout(sides, 3)
        self.label_text = QLabel("")
        self.label_text.setWordWrap(True)
        layout.addWidget(self.label_text)
        buttons = QHBoxLayout()
        self.choice_buttons = {}
        for choice in CHOICES:
            button = QPushButton(CHOICE_NAMES[choice])
            button.setCheckable(True)
            button.clicked.connect(lambda _=False, c=choice: self.sig_choice_clicked.emit(c))
            self.choice_buttons[choice] = button
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.delete_button = QPushButton("Delete label")
        self.delete_button.clicked.connect(self.sig_delete_clicked)
        buttons.addWidget(self.delete_button)
        layout.addLayout(buttons)
        self.open_button = QPushButton("Open in the Label workspace")
        self.open_button.clicked.connect(self.sig_open_clicked)
        layout.addWidget(self.open_button, alignment=Qt.AlignRight)
        self.show_label(None)

    @staticmethod
    def _text_box(name: str) -> QPlainTextEdit:
        box = QPlainTextEdit()
        box.setReadOnly(True)
        box.setObjectName(f"detail_{name.lower()}")
        return box

    def show_label(self, values: dict | None) -> None:
        enabled = values is not None
        for button in (*self.choice_buttons.values(), self.delete_button, self.open_button):
            button.setEnabled(enabled)
        if values is None:
            for box in (self.prompt, self.response_a, self.response_b):
                box.clear()
            self.label_text.setText("")
            for button in self.choice_buttons.values():
                button.setChecked(False)
            return
        comparison = values["comparison"]
        self.title.setText(f"Comparison {comparison.id}")
        # Shown without the blank lines some formats (HH dialogues) start with.
        self.prompt.setPlainText(comparison.prompt.text.strip("\n"))
        self.response_a.setPlainText(comparison.response_a.text.strip("\n"))
        self.response_b.setPlainText(comparison.response_b.text.strip("\n"))
        self.show_choice(values)

    def show_choice(self, values: dict) -> None:
        label = values["label"]
        mine = values["annotator"]
        who = label.annotator if label else values["label_annotator"]
        if label is None:
            text = f"<i>{who}'s label was deleted.</i>"
        else:
            strength = strength_text(label.choice, label.strength)
            strength = "no strength given" if strength == NO_STRENGTH else strength
            text = (f"<b>{who}</b>: {CHOICE_NAMES[label.choice]}"
                    + (f" ({strength})" if strength else "")
                    + f" — {label.created_at[:19].replace('T', ' ')}"
                    + (f"<br>Note: {label.note}" if label.note else ""))
        if mine and who != mine:
            text += (f"<br><span style='color: {colour('warning')}'>Changes here edit {who}'s label, "
                     "not yours.</span>")
        self.label_text.setText(text)
        for choice, button in self.choice_buttons.items():
            button.setChecked(label is not None and label.choice == choice)
        self.delete_button.setEnabled(label is not None)


class AgreementPanel(QGroupBox):
    """Pairwise percent agreement and Cohen's kappa, and Fleiss' kappa (skips ignored)."""

    def __init__(self):
        super().__init__("Agreement between annotators (skips ignored)")
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.fleiss = QLabel("")
        top.addWidget(self.fleiss, 1)
        self.refresh_button = QPushButton("Refresh")
        top.addWidget(self.refresh_button)
        layout.addLayout(top)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Pair", "Overlap", "% agree", "Cohen's κ"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        layout.addWidget(self.table)

    def show_agreement(self, agreement: dict | None) -> None:
        pairs = [p for p in (agreement or {}).get("pairs", []) if p["overlap"]]
        self.table.setRowCount(len(pairs))
        for row, p in enumerate(pairs):
            percent = p["percent_agreement"]
            kappa = p["cohen_kappa"]
            cells = [f"{p['annotator_1']} / {p['annotator_2']}", f"{p['overlap']:,}",
                     "n/a" if percent is None else f"{percent * 100:.1f}%",
                     "n/a" if kappa is None else f"{kappa:.3f}"]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(row, column, item)
        fleiss = (agreement or {}).get("fleiss")
        if agreement is None:
            self.fleiss.setText("")
        elif fleiss and fleiss["items"]:
            kappa = "n/a" if fleiss["kappa"] is None else f"{fleiss['kappa']:.3f}"
            extra = f", {fleiss['excluded']:,} excluded" if fleiss["excluded"] else ""
            self.fleiss.setText(f"Fleiss' κ {kappa} over {fleiss['items']:,} comparisons with "
                                f"{fleiss['raters']} labels each{extra}")
        else:
            self.fleiss.setText("No comparison has labels from two annotators yet.")


class BrowsePage(QWidget):
    sig_open_comparison = Signal(int)

    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.annotator = ""
        self._opened: int | None = None  # label id in the detail pane
        self._opened_annotator = ""
        self._opened_comparison = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 24, 24, 24)
        layout.addWidget(heading("Browse labels"))
        filters = QHBoxLayout()
        self.annotator_filter = QComboBox()
        self.annotator_filter.setMinimumContentsLength(16)
        self.choice_filter = QComboBox()
        self.choice_filter.addItem("All choices", None)
        for choice in CHOICES:
            self.choice_filter.addItem(CHOICE_NAMES[choice], choice)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search notes, prompts and responses…")
        self.search.setClearButtonEnabled(True)
        self.count = QLabel("")
        filters.addWidget(QLabel("Annotator"))
        filters.addWidget(self.annotator_filter)
        filters.addWidget(QLabel("Choice"))
        filters.addWidget(self.choice_filter)
        filters.addWidget(self.search, 1)
        filters.addWidget(self.count)
        layout.addLayout(filters)

        self.model = LabelTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.ElideRight)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(True)
        time_width = self.table.fontMetrics().horizontalAdvance("0000-00-00 00:00:00") + 16
        for column, width in {0: 90, 1: 200, 2: 110, 3: 80, 4: 100, 5: time_width}.items():
            self.table.setColumnWidth(column, width)  # the Note column (last) takes the rest
        self.empty = QLabel("")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignCenter)
        self.empty.setStyleSheet("color: palette(placeholder-text); font-size: 14px; padding: 24px;")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.empty)
        left_layout.addWidget(self.table)
        self.detail = LabelDetail()
        top = QSplitter(Qt.Horizontal)
        top.addWidget(left)
        top.addWidget(self.detail)
        top.setStretchFactor(0, 3)  # a wider window widens the table (its Note column) first
        top.setStretchFactor(1, 1)
        top.setSizes([700, 460])
        self.agreement = AgreementPanel()
        outer = QSplitter(Qt.Vertical)
        outer.addWidget(top)
        outer.addWidget(self.agreement)
        outer.setStretchFactor(0, 4)
        outer.setStretchFactor(1, 1)
        outer.setSizes([520, 200])
        layout.addWidget(outer, 1)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self._apply_filters)
        self.search.textChanged.connect(self._search_timer.start)
        self.annotator_filter.currentIndexChanged.connect(self._apply_filters)
        self.choice_filter.currentIndexChanged.connect(self._apply_filters)
        self.table.activated.connect(self._on_table_activated)
        self.table.doubleClicked.connect(self._on_table_activated)
        self.model.sig_loaded.connect(self._update_empty_state)
        self.model.rowsRemoved.connect(self._update_empty_state)
        self.detail.sig_choice_clicked.connect(self._on_choice_clicked)
        self.detail.sig_delete_clicked.connect(self._on_delete_clicked)
        self.detail.sig_open_clicked.connect(self._on_open_clicked)
        self.agreement.refresh_button.clicked.connect(self.refresh_agreement)
        self.set_project(None)

    # -- public --------------------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self._opened = None
        self.detail.show_label(None)
        self.model.project = project
        self._fill_annotators()
        self._apply_filters()
        self.refresh_agreement()
        for widget in (self.annotator_filter, self.choice_filter, self.search):
            widget.setEnabled(project is not None)

    def set_annotator(self, name: str) -> None:
        """Who is working: the detail pane warns before they change someone else's label."""
        self.annotator = name

    def refresh(self) -> None:
        """Re-read the labels (after labeling elsewhere), keeping the filters."""
        self._fill_annotators()
        self._apply_filters()

    def refresh_agreement(self) -> None:
        self.agreement.show_agreement(project_agreement(self.project) if self.project else None)

    def open_row(self, row: int) -> None:
        values = self.model.row_values(row)
        if values is None:
            return
        self._opened, self._opened_comparison, self._opened_annotator = values[0], values[1], values[3]
        self.detail.show_label({"comparison": self.project.comparison(values[1]),
                                "label": self.project.label(values[1], values[3]),
                                "annotator": self.annotator, "label_annotator": values[3]})

    def change_label(self, choice: str) -> None:
        """Give the opened label another choice, keeping its note (and strength for a/b)."""
        if self._opened is None:
            return
        cid, who = self._opened_comparison, self._opened_annotator
        old = self.project.label(cid, who)
        self.project.set_label(cid, who, choice, strength=old.strength if old else None,
                               note=old.note if old else None)
        self.model.refresh_label(self._opened)
        self._show_opened_choice()

    def delete_label(self) -> None:
        if self._opened is None:
            return
        self.project.delete_label(self._opened_comparison, self._opened_annotator)
        self.model.remove_label(self._opened)
        self._show_opened_choice()

    # -- internals -------------------------------------------------------------------------

    def _show_opened_choice(self) -> None:
        self.detail.show_choice({
            "label": self.project.label(self._opened_comparison, self._opened_annotator),
            "annotator": self.annotator, "label_annotator": self._opened_annotator})

    def _fill_annotators(self) -> None:
        current = self.annotator_filter.currentText()
        self.annotator_filter.blockSignals(True)
        self.annotator_filter.clear()
        self.annotator_filter.addItem("All annotators", None)
        for a in self.project.annotators() if self.project else []:
            self.annotator_filter.addItem(a["name"], a["id"])
        found = self.annotator_filter.findText(current)
        self.annotator_filter.setCurrentIndex(max(found, 0))
        self.annotator_filter.blockSignals(False)

    def _apply_filters(self) -> None:
        self._search_timer.stop()
        self.model.set_filters(self.annotator_filter.currentData(),
                               self.choice_filter.currentData(), self.search.text())

    def _update_empty_state(self) -> None:
        rows = self.model.rowCount()
        if self.project is None:
            text = "Open a project to browse its labels."
        elif rows == 0 and not self.project.has_labels():
            text = ("No labels yet. Label pairs in the Label workspace, or import labeled data "
                    "(chosen/rejected files arrive as labels by their source).")
        elif rows == 0:
            text = "No labels match these filters."
        else:
            text = ""
        self.empty.setText(text)
        self.empty.setVisible(bool(text))
        self.table.setVisible(not text)
        more = "+" if self.model.canFetchMore() else ""
        self.count.setText(f"{rows:,}{more} labels" if self.project else "")

    def _on_table_activated(self, index) -> None:
        if index.isValid() and self.model.row_values(index.row()) is not None:
            if self.model.label_id(index.row()) != self._opened:
                self.open_row(index.row())

    def _on_choice_clicked(self, choice: str) -> None:
        self.change_label(choice)

    def _on_delete_clicked(self) -> None:
        self.delete_label()

    def _on_open_clicked(self) -> None:
        if self._opened is not None:
            self.sig_open_comparison.emit(self._opened_comparison)
