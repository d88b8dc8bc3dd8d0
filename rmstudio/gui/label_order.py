"""The Label page's "Order" choice: default queue order, or most informative first under the
live instant model (smallest margin / D-optimal, rmstudio.core.labeling.active).

The order itself is computed by the live model's background job after each refit and arrives
as an ActiveOrder (comparison ids and a reason for each); it is kept here, in memory, and the
page hands it to the queue as its front. Nothing is written to the project, so the store's
single-writer rule is untouched. The choice is only enabled once the live model has a fit:
before that there is no model to be uncertain with.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel

from rmstudio.core.labeling.active import ActiveOrder

CHOICES = [(None, "Order: default"), ("margin", "Order: smallest margin"),
           ("doptimal", "Order: most informative")]
NO_FIT_TIP = "Turn on the live reward model (Settings) and label a few pairs to order by informativeness"


class ActiveOrderChoice(QObject):
    sig_changed = Signal()  # the user picked another order, or its first order arrived: show the next pair

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.box = QComboBox()
        for key, title in CHOICES:
            self.box.addItem(title, key)
        self.box.setFocusPolicy(Qt.NoFocus)  # label keys stay with the page
        self.box.setEnabled(False)
        self.box.setToolTip(NO_FIT_TIP)
        self.box.activated.connect(self._on_activated)
        self.reason = QLabel("")
        self.reason.setObjectName("order_reason")
        self.reason.setStyleSheet("color: palette(placeholder-text);")
        self.live = None
        self.order = ActiveOrder("")
        self._waiting = False  # the user asked for an order that has not arrived yet

    @property
    def strategy(self) -> str | None:
        return self.box.currentData() if self.box.isEnabled() else None

    def attach(self, live) -> None:
        """Follow a LiveModelController (or anything with its signals, has_fit and set_strategy)."""
        if live is None or live is self.live:
            return
        self.live = live
        live.sig_fitted.connect(self.set_fitted)
        live.sig_order.connect(self.set_order)
        self.set_fitted(live.has_fit)

    def set_fitted(self, fitted: bool) -> None:
        self.box.setEnabled(bool(fitted))
        self.box.setToolTip("Which unlabeled pair comes next: the live model's most informative "
                            "first, or the default order" if fitted else NO_FIT_TIP)
        if not fitted:
            self.reason.setText("")

    def set_order(self, order: ActiveOrder) -> None:
        if order.strategy != self.strategy:
            return  # computed for a choice the user has since left
        self.order = order
        if self._waiting:
            self._waiting = False
            self.sig_changed.emit()

    def front(self) -> list[int] | None:
        """The ids the queue serves first, or None for the default order."""
        return self.order.ids if self.strategy and self.order.strategy == self.strategy else None

    def shown(self, comparison_id: int | None) -> None:
        """Say why the pair on screen came first (or that it did not come from the order)."""
        if not self.strategy or comparison_id is None:
            self.reason.setText("")
        elif self.order.strategy != self.strategy:
            self.reason.setText("ordering…")
        else:
            self.reason.setText(self.order.reasons.get(comparison_id, "default order (not embedded yet)"))

    def _on_activated(self, _index: int) -> None:
        strategy = self.strategy
        if self.live is not None:
            self.live.set_strategy(strategy)
        self._waiting = strategy is not None and self.order.strategy != strategy
        if not self._waiting:
            self.sig_changed.emit()
