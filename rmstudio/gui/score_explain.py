"""Why a response got its reward: a token heat map, its legend, and the reward as the text unfolds.

Colours are mixed into the theme's own background (green raised the reward, orange-red lowered
it) and the text keeps the theme's colour, so the map reads on light and dark themes alike; the
strongest piece has the strongest colour. (Qt's rich text has no translucent backgrounds, so
the mix is computed here.) The words of the two methods differ and the page says so.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from rmstudio.gui.plots import make_plot

RAISED = (0, 158, 115)  # Okabe-Ito bluish green
LOWERED = (213, 94, 0)  # Okabe-Ito vermillion
METHOD_NOTES = {
    "prefix": ("<b>Prefix rewards</b> (one forward pass): the reward of the text up to each token; a "
               "token's weight is how much the reward moved when it was read. It shows where the model "
               "changed its mind, not what it would think without that token: later tokens are read "
               "in the light of earlier ones."),
    "occlusion": ("<b>Leave one word out</b> (one pass per word, in the background): the full reward minus "
                  "the reward with that word removed. Exact for each word alone; it misses words that only "
                  "matter together, and a removed word can make the text ungrammatical."),
}


def _mix(color: tuple[int, int, int], alpha: float, base: tuple[int, int, int]) -> str:
    r, g, b = (round(c * alpha + k * (1 - alpha)) for c, k in zip(color, base))
    return f"#{r:02x}{g:02x}{b:02x}"


def heat_html(pieces: list[str], weights: list[float], base: tuple[int, int, int] = (255, 255, 255)) -> str:
    """The pieces (tokens or words with their spaces) as one text, each on its colour."""
    strongest = max((abs(w) for w in weights), default=0.0) or 1.0
    spans = []
    for piece, weight in zip(pieces, weights):
        alpha = 0.08 + 0.72 * min(1.0, abs(weight) / strongest)
        color = RAISED if weight >= 0 else LOWERED
        text = html.escape(piece).replace("\n", "<br>")
        spans.append(f"<span style='background-color:{_mix(color, alpha, base)}' title='{weight:+.4f}'>{text}</span>")
    return "<div style='line-height:150%'>" + "".join(spans) + "</div>"


def legend_html(weights: list[float], base: tuple[int, int, int] = (255, 255, 255)) -> str:
    strongest = max((abs(w) for w in weights), default=0.0)
    return (f"<span style='background-color:{_mix(RAISED, 0.8, base)}'>&nbsp;raised&nbsp;</span> "
            f"<span style='background-color:{_mix(LOWERED, 0.8, base)}'>&nbsp;lowered&nbsp;</span> "
            f"the reward; the strongest piece moved it by {strongest:.3f}. Hover a piece for its number.")


class ExplainView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.method_note = QLabel(METHOD_NOTES["prefix"])
        self.method_note.setWordWrap(True)
        self.method_note.setStyleSheet("color: palette(placeholder-text); font-size: 12px;")
        self.heat = QTextBrowser()
        self.heat.setObjectName("heat_map")
        self.heat.setMinimumHeight(90)
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.curve_plot = make_plot(self, "Reward as the text unfolds", x_label="token", y_label="reward",
                                    legend=False)
        self.curve_plot.setMinimumHeight(130)
        self.curve = self.curve_plot.plot([], [], pen={"color": "#0072B2", "width": 2})
        for widget in (self.method_note, self.heat, self.legend):
            layout.addWidget(widget)
        layout.addWidget(self.curve_plot, 1)
        self.weights: list[float] = []
        self.pieces: list[str] = []
        self._shown: tuple[list[str], list[float]] = ([], [])  # what the heat map holds, to redraw it

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange and self._shown[0]:
            self._draw(*self._shown)  # the colours were mixed into the old theme's background

    def show_prefix(self, prefix) -> None:
        """``core.reward.explain.PrefixRewards``: tokens coloured by what they added."""
        self.method_note.setText(METHOD_NOTES["prefix"] + (" <i>The text was cut at the model's length "
                                                           "limit.</i>" if prefix.truncated else ""))
        self._show(prefix.tokens, prefix.contributions)
        self.curve.setData(list(range(len(prefix.rewards) + 1)), [prefix.start, *prefix.rewards])
        self.curve_plot.show()

    def show_occlusion(self, response: str, occlusion) -> None:
        """``core.reward.explain.Occlusion``: words coloured by what removing them cost; the text
        between words (spaces, punctuation) stays uncoloured."""
        pieces, weights, at = [], [], 0
        for (start, end), weight in zip(occlusion.spans, occlusion.contributions):
            if start > at:
                pieces.append(response[at:start])
                weights.append(0.0)
            pieces.append(response[start:end])
            weights.append(weight)
            at = end
        if at < len(response):
            pieces.append(response[at:])
            weights.append(0.0)
        stopped = " <i>Stopped early: only the first words were measured.</i>" if occlusion.stopped else ""
        self.method_note.setText(METHOD_NOTES["occlusion"] + stopped)
        self._show(pieces, weights)
        self.weights = list(occlusion.contributions)
        self.curve_plot.hide()

    def _show(self, pieces: list[str], weights: list[float]) -> None:
        self.pieces, self.weights = list(pieces), list(weights)
        self._shown = (self.pieces, self.weights)
        self._draw(pieces, weights)

    def _draw(self, pieces: list[str], weights: list[float]) -> None:
        # The view's palette, not the heat map's: on a theme change the view hears it first.
        base = self.palette().color(QPalette.Base)
        base = (base.red(), base.green(), base.blue())
        self.heat.setHtml(heat_html(pieces, weights, base))
        self.legend.setText(legend_html(weights, base))

    def clear(self) -> None:
        self.pieces, self.weights = [], []
        self._shown = ([], [])
        self.heat.clear()
        self.legend.setText("")
        self.curve.setData([], [])
