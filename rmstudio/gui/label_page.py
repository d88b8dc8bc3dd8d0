"""The Label workspace: one pair at a time, side by side, labeled from the keyboard.

Reads go through the UI thread's ``Project`` (one indexed query per pair); every write goes to
the ``StoreWriter`` thread, and label keys are ignored until its commit comes back, so a label
is on disk before "Saved ✓" shows and before the next pair appears.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QStackedWidget,
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
from rmstudio.gui.label_render import flat_response, text_html
from rmstudio.gui.label_view import (
    LABEL_KEYS, SAID, better_saved_text, build_empty_view, build_pair_view, build_progress_bar,
    build_queue_bar,
)
from rmstudio.gui.store_writer import StoreWriter
from rmstudio.gui.theme import colour, is_dark


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
        layout.addLayout(build_queue_bar(self))
        layout.addLayout(build_progress_bar(self))
        self.stack = QStackedWidget()
        layout.addWidget(self.stack, 1)
        self.stack.addWidget(build_empty_view(self))
        self.stack.addWidget(build_pair_view(self))
        self._refresh_timer = QTimer(self, singleShot=True, interval=0)
        self._refresh_timer.timeout.connect(self._refresh_progress)
        # No button, checkbox or list on this page ever takes the keyboard: clicked, a focused
        # "Highlight differences" took Space (toggling itself instead of skipping the pair) and
        # a focused list took the arrow keys. Set for every one here, so a new control can't forget.
        for kind in (QAbstractButton, QComboBox):
            for widget in self.findChildren(kind):
                widget.setFocusPolicy(Qt.NoFocus)
        self._show_empty()

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
        return f"  ·  <b style='color:{colour('warning')}'>sent back for review</b>{said}"

    def _render(self) -> None:
        if self.current is None:
            return
        c = self.current
        left, right = (c.response_b, c.response_a) if self.swapped else (c.response_a, c.response_b)
        role_color = self.palette().link().color().name()
        self.prompt_header.setText(f"Prompt  ·  pair #{c.id}{self.review_note}")
        self.prompt_view.setHtml(text_html(c.prompt, role_color, turns=True))
        self.splitter.fit_prompt()
        # The last turn is the one being answered: show the end of a long conversation.
        bar = self.prompt_view.verticalScrollBar()
        bar.setValue(bar.maximum())
        note = ""
        if self.diff_check.isChecked():
            view = diff_view(flat_response(left), flat_response(right), is_dark(self.palette()))
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

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            self._render()  # its HTML holds colours chosen for the theme it was drawn on

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
        if result["op"] == "add_better_response":  # says why the counters jump by more than one
            self._said = better_saved_text(result["comparisons_added"])
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
        self.setFocus()

