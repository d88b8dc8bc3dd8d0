"""The results of one reward-model run, read honestly: accuracy next to its baselines,
calibration, where it fails, and the confident mistakes to send back for another look."""

from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from rmstudio.core.reward.cross_validation import describe
from rmstudio.gui.model_export_bar import ModelExportBar
from rmstudio.gui.plots import SPLIT_COLORS, make_plot, set_title
from rmstudio.gui.report_button import ReportButton
from rmstudio.gui.theme import colour as theme_colour


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _bucket(bucket: dict) -> str:
    low, high = bucket["low"], bucket["high"]
    return f"≥ {low:g}" if high is None else f"{low:g} – {high:g}"


def _overlong_note(result: dict) -> str:
    """Fine-tunes cut or drop pairs longer than max_length; say how many (TRL does it silently)."""
    truncated, skipped = result.get("truncated"), result.get("skipped")
    if truncated is None and skipped is None:
        return ""
    return (f"<br>Over-long pairs: {truncated or 0:,} truncated (end of the prompt and start of the "
            f"response kept), {skipped or 0:,} skipped.")


def _export_note(result: dict) -> str:
    """Say which weights a fine-tune exported when they are not simply the last step's: an earlier
    validation that was clearly better, or the mean of the run's last steps."""
    best, steps = result.get("best_step"), result.get("steps")
    if best is not None and steps is not None and best != steps:
        which = "the probed head, before any step," if best == 0 else f"step {best} of {steps}"
        return (f"<br>Exported: {which} (its validation loss beat the last step's by more than one "
                f"standard error); the last step's validation accuracy was "
                f"{_pct((result.get('last_val') or {}).get('accuracy'))}.")
    if result.get("averaged_steps"):
        return f"<br>Exported: the mean of the last {result['averaged_steps']:,} steps' weights."
    return ""


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


class ResultsPanel(QWidget):
    sig_relabel_requested = Signal(list)  # comparison ids to send back to the label queue

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project_path = None  # where the shown run is recorded (set_project_path)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.headline = QLabel("")
        self.headline.setObjectName("results_headline")
        self.headline.setTextFormat(Qt.RichText)
        self.headline.setWordWrap(True)
        self.headline.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.headline)

        plots = QGridLayout()
        self.hist_plot = make_plot(self, "Rewards on validation", "reward", "pairs")
        self.reliability_plot = make_plot(self, "Reliability", "confidence",
                                          "accuracy", legend=False)
        self.reliability_plot.setXRange(0.5, 1.0)
        self.reliability_plot.setYRange(0.0, 1.0)
        self.margin_plot = make_plot(self, "Accuracy by |r_c − r_r|", "", "accuracy",
                                     legend=False)
        for col, plot in enumerate((self.hist_plot, self.reliability_plot, self.margin_plot)):
            plots.addWidget(plot, 0, col)
        # A regression run shows its predictions against the ratings instead of the pair plots.
        self.ratings_plot = make_plot(self, "Predicted vs given rating (validation)", "given rating",
                                      "predicted rating", legend=False)
        plots.addWidget(self.ratings_plot, 0, 3)
        layout.addLayout(plots, 1)

        bottom = QHBoxLayout()
        self.details = QLabel("")
        self.details.setObjectName("results_details")
        self.details.setTextFormat(Qt.RichText)
        self.details.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.details.setWordWrap(True)
        self.details.setMinimumWidth(220)
        left = QVBoxLayout()
        left.addWidget(self.details, 1)
        self.export_bar = ModelExportBar()  # hidden until a run saved a model
        left.addWidget(self.export_bar)
        self.report_button = ReportButton()  # hidden until a run of a known project is shown
        left.addWidget(self.report_button)
        bottom.addLayout(left, 1)

        self.mistakes_panel = QWidget()
        mistakes_box = QVBoxLayout(self.mistakes_panel)
        mistakes_box.setContentsMargins(0, 0, 0, 0)
        mistakes_box.addWidget(QLabel("<b>Confident mistakes</b> (the model disagrees with the label "
                                      "most strongly; often a label slip)"))
        self.mistakes = QTableWidget(0, 4)
        self.mistakes.setHorizontalHeaderLabels(["Pair", "Annotator", "P(chosen)", "r chosen − r rejected"])
        self.mistakes.verticalHeader().hide()
        self.mistakes.verticalHeader().setDefaultSectionSize(22)
        self.mistakes.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.mistakes.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.mistakes.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        mistakes_box.addWidget(self.mistakes, 1)
        row = QHBoxLayout()
        self.relabel_button = QPushButton("Send back to the label queue")
        self.relabel_button.setToolTip("Marks the selected pairs (all listed when none is selected) for "
                                       "review: the label queue shows them first. Labels are kept.")
        self.relabel_button.clicked.connect(self._on_relabel_clicked)
        self.relabel_status = QLabel("")
        row.addWidget(self.relabel_button)
        row.addWidget(self.relabel_status, 1)
        mistakes_box.addLayout(row)
        bottom.addWidget(self.mistakes_panel, 2)
        layout.addLayout(bottom, 1)
        self.clear()

    # -- public --------------------------------------------------------------------------

    def clear(self) -> None:
        self.result: dict = {}
        self.headline.setText("<i>No results yet: start a run. Results are measured on the validation "
                              "split, which training never sees.</i>")
        self.details.setText("")
        for plot in (self.hist_plot, self.reliability_plot, self.margin_plot, self.ratings_plot):
            plot.clear()
        self._show_pair_panels(True)
        self.mistakes.setRowCount(0)
        self.relabel_button.setEnabled(False)
        self.relabel_status.setText("")
        self.export_bar.set_model(None)
        self.report_button.set_run(None, None)

    def set_project_path(self, path) -> None:
        """The project the shown runs belong to: 'Save report…' reads the run from it."""
        self.project_path = path

    def show_result(self, result: dict) -> None:
        self.clear()
        self.result = result
        self.export_bar.set_model(result.get("model_dir"), result.get("run_id"))
        self.report_button.set_run(self.project_path, result.get("run_id"))
        evaluation = result.get("evaluation") or {}
        metrics = result.get("metrics") or {
            **{f"train/{k}": v for k, v in (result.get("train") or {}).items()},
            **{f"val/{k}": v for k, v in (result.get("val") or {}).items()}}  # the fine-tune's shape
        run = f"Run #{result.get('run_id', '?')} ({result.get('method', '')})"
        seconds = result.get("seconds")
        took = f" in {seconds:.1f} s" if seconds is not None else ""
        if result.get("status") == "cancelled":
            self.headline.setText(f"<b>{run} was cancelled{took}.</b> {_after_cancel(result)}")
            return
        if evaluation.get("responses") is not None:  # the regression objective
            self._show_regression(run, took, evaluation, result)
            return
        if not evaluation and metrics.get("val/accuracy") is not None:
            self.headline.setText(
                f"<b>{run} {result.get('status', '')}{took}.</b><br>"
                f"<span style='font-size:22px; font-weight:600'>Validation accuracy "
                f"{_pct(metrics['val/accuracy'])}</span>&nbsp;&nbsp;vs random <b>50%</b> · validation loss "
                f"{_num(metrics.get('val/loss'))} · train accuracy {_pct(metrics.get('train/accuracy'))}<br>"
                "<i>This run reported no full evaluation (calibration, baselines, mistakes).</i>")
            return
        if not evaluation.get("pairs"):
            self.headline.setText(f"<b>{run} {result.get('status', '')}{took}.</b> No validation "
                                  "pairs with a preference, so there is nothing to measure: raise the "
                                  "validation share or label more pairs.")
            return
        cv = evaluation.get("cross_validation")
        accuracy = cv["accuracy_mean"] if cv else evaluation["accuracy"]
        longer = evaluation.get("baseline_longer")
        beat = accuracy - max(0.5, longer or 0.0)
        verdict = ("beats both baselines" if beat > 0.02 else
                   "is no better than a baseline: more labels, or another method" if beat <= 0 else
                   "barely beats a baseline")
        if cv:
            folds = ", ".join(_pct(f["accuracy"]) for f in cv["per_fold"])
            total, decided = result.get("train_pairs", evaluation["pairs"]), evaluation["pairs"]
            ties = f" ({decided} with a preference)" if total != decided else ""
            measured = f"{total} labeled pairs{ties}, each scored out of fold; the saved model trains on all"
            big = describe(cv)[0].upper() + describe(cv)[1:]
            detail = f"Per fold {folds} · out-of-fold accuracy {_pct(evaluation['accuracy'])} · "
            loss = f"out-of-fold loss {_num(metrics.get('val/loss'))}"
        else:
            decided, held = evaluation["pairs"], result.get("val_pairs", evaluation["pairs"])
            ties = f" ({decided} with a preference)" if held != decided else ""
            measured = f"{held} validation pairs{ties}"
            big, detail = f"Validation accuracy {_pct(accuracy)}", ""
            loss = f"validation loss {_num(metrics.get('val/loss'))}"
        warning = (f"<br><span style='color:{theme_colour('error')}'>Warning: "
                   f"{escape(result['validation_warning'])}.</span>"
                   if result.get("validation_warning") else "")
        self.headline.setText(
            f"<b>{run} {result.get('status', '')}{took}</b> · {measured}<br>"
            f"<span style='font-size:22px; font-weight:600'>{big}</span>"
            f"&nbsp;&nbsp;vs random <b>50%</b> and prefer-longer <b>{_pct(longer)}</b>: {verdict}.<br>"
            f"{detail}ECE {_num(evaluation.get('ece'))} · reward–length correlation "
            f"{_num(evaluation.get('reward_length_correlation'), 2)} · {loss} · train accuracy "
            f"{_pct(metrics.get('train/accuracy'))}" + warning + _export_note(result)
            + _overlong_note(result))
        set_title(self.hist_plot, "Out-of-fold rewards" if cv else "Rewards on validation")
        self._plot_histograms(evaluation)
        self._plot_reliability(evaluation.get("reliability") or [])
        self._plot_margins(evaluation.get("accuracy_by_margin") or [])
        self._show_details(evaluation, result)
        self._show_mistakes(evaluation.get("confident_mistakes") or [])

    def _show_pair_panels(self, pairs: bool) -> None:
        for widget in (self.hist_plot, self.reliability_plot, self.margin_plot, self.mistakes_panel):
            widget.setVisible(pairs)
        self.ratings_plot.setVisible(not pairs)

    def _show_regression(self, run: str, took: str, evaluation: dict, result: dict) -> None:
        self._show_pair_panels(False)
        given = np.asarray(evaluation.get("ratings") or [], dtype=float)
        predicted = np.asarray(evaluation.get("predicted") or [], dtype=float)
        if len(given):
            low, high = float(min(given.min(), predicted.min())), float(max(given.max(), predicted.max()))
            self.ratings_plot.plot([low, high], [low, high], pen=pg.mkPen("#888888", width=1, style=Qt.DashLine))
            jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(given)) * (given.std() or 1.0)
            self.ratings_plot.plot(given + jitter, predicted, pen=None, symbol="o", symbolSize=6,
                                   symbolPen=None, symbolBrush=pg.mkColor(SPLIT_COLORS["val"]))
        if not evaluation.get("responses"):
            self.headline.setText(f"<b>{run} {result.get('status', '')}{took}.</b> No validation "
                                  "ratings, so there is nothing to measure: raise the validation share.")
            return
        pairs = evaluation.get("pairs") or 0
        implied = (f"accuracy <b>{_pct(evaluation['accuracy'])}</b> on the {pairs:,} pairs the ratings imply "
                   f"(prefer-longer {_pct(evaluation.get('baseline_longer'))})" if pairs else
                   "no two responses to one prompt rated differently, so no implied pairs")
        self.headline.setText(
            f"<b>{run} {result.get('status', '')}{took}</b> · {evaluation['responses']:,} validation ratings<br>"
            f"<span style='font-size:22px; font-weight:600'>Pearson {_num(evaluation.get('pearson'), 2)}</span>"
            f"&nbsp;&nbsp;Spearman {_num(evaluation.get('spearman'), 2)} · RMSE {_num(evaluation.get('rmse'))} "
            f"on the rating's scale (ratings: mean {_num(evaluation.get('rating_mean'), 2)}, "
            f"spread {_num(evaluation.get('rating_std'), 2)})<br>{implied} · reward–length correlation "
            f"{_num(evaluation.get('reward_length_correlation'), 2)}" + _export_note(result)
            + _overlong_note(result))

    def accuracy_text(self) -> str:
        return self.headline.text()

    # -- parts ---------------------------------------------------------------------------

    def _plot_histograms(self, evaluation: dict) -> None:
        chosen = np.asarray(evaluation.get("rewards_chosen") or [], dtype=float)
        rejected = np.asarray(evaluation.get("rewards_rejected") or [], dtype=float)
        if not len(chosen):
            return
        both = np.concatenate([chosen, rejected])
        edges = np.histogram_bin_edges(both, bins=min(30, max(5, len(both) // 4)))
        for name, values, key in (("chosen", chosen, "train"), ("rejected", rejected, "val")):
            counts, _ = np.histogram(values, bins=edges)
            colour = pg.mkColor(SPLIT_COLORS[key])
            fill = pg.mkColor(colour)
            fill.setAlpha(90)
            self.hist_plot.plot(edges, counts, stepMode="center", fillLevel=0, brush=fill,
                                pen=pg.mkPen(colour, width=1.5), name=name)

    def _plot_reliability(self, bins: list[dict]) -> None:
        diagonal = pg.mkPen("#888888", width=1, style=Qt.DashLine)
        self.reliability_plot.plot([0.5, 1.0], [0.5, 1.0], pen=diagonal)
        if not bins:
            return
        conf = [b["confidence"] for b in bins]
        acc = [b["accuracy"] for b in bins]
        sizes = [6 + 10 * np.sqrt(b["count"] / max(x["count"] for x in bins)) for b in bins]
        self.reliability_plot.plot(conf, acc, pen=pg.mkPen(SPLIT_COLORS["val"], width=2), symbol="o",
                                   symbolSize=sizes, symbolBrush=SPLIT_COLORS["val"], symbolPen=None)
        self.reliability_plot.setXRange(0.48, 1.02, padding=0)
        self.reliability_plot.setYRange(0.0, 1.05, padding=0)

    def _plot_margins(self, buckets: list[dict]) -> None:
        if not buckets:
            return
        x = np.arange(len(buckets))
        acc = [b["accuracy"] for b in buckets]
        self.margin_plot.addItem(pg.BarGraphItem(x=x, height=acc, width=0.6, brush=SPLIT_COLORS["train"]))
        labels = [(i, _bucket(b)) for i, b in enumerate(buckets)]
        self.margin_plot.getPlotItem().getAxis("bottom").setTicks([labels])
        coin = pg.mkPen("#888888", style=Qt.DashLine)
        self.margin_plot.plot([-0.5, len(buckets) - 0.5], [0.5, 0.5], pen=coin)
        self.margin_plot.setYRange(0, 1.05)
        self.margin_plot.setXRange(-0.6, len(buckets) - 0.4)

    def _show_details(self, evaluation: dict, result: dict) -> None:
        margin_rows = "".join(
            f"<tr><td>{_bucket(b)}</td>"
            f"<td align=right>&nbsp;{_pct(b['accuracy'])}</td><td align=right>&nbsp;{b['count']}</td></tr>"
            for b in evaluation.get("accuracy_by_margin") or [])
        annotator_rows = "".join(
            f"<tr><td>{escape(name)}</td><td align=right>&nbsp;{_pct(a['accuracy'])}</td>"
            f"<td align=right>&nbsp;{a['pairs']}</td></tr>"
            for name, a in (evaluation.get("accuracy_per_annotator") or {}).items())
        model_dir = result.get("model_dir") or "–"
        self.details.setText(
            "<b>Accuracy by margin</b><table>"
            "<tr><td><i>|r_c − r_r|</i></td><td>&nbsp;<i>accuracy</i></td><td>&nbsp;<i>pairs</i></td></tr>"
            f"{margin_rows}</table><br><b>Accuracy per annotator</b><table>{annotator_rows}</table>"
            f"<br><b>Model</b><br><small>{escape(model_dir)}</small>")

    def _show_mistakes(self, mistakes: list[dict]) -> None:
        self.mistakes.setRowCount(len(mistakes))
        for row, m in enumerate(mistakes):
            values = [str(m["comparison_id"]), m.get("annotator", ""), f"{m['p_chosen']:.3f}",
                      f"{m['r_chosen'] - m['r_rejected']:+.3f}"]
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setData(Qt.UserRole, int(m["comparison_id"]))
                self.mistakes.setItem(row, col, item)
        self.relabel_button.setEnabled(bool(mistakes))

    def selected_mistakes(self) -> list[int]:
        rows = sorted({index.row() for index in self.mistakes.selectionModel().selectedRows()})
        if not rows:
            rows = list(range(self.mistakes.rowCount()))
        return [self.mistakes.item(r, 0).data(Qt.UserRole) for r in rows]

    def _on_relabel_clicked(self) -> None:
        ids = self.selected_mistakes()
        if ids:
            self.sig_relabel_requested.emit(ids)


def _after_cancel(result: dict) -> str:
    """What a cancelled run left behind, and how to go on from it."""
    if result.get("method") == "instant":
        return "Features computed so far are cached, so starting again goes on from there."
    if result.get("checkpoint"):
        steps = result.get("steps")
        at = f" (step {steps} of {result['total_steps']})" if steps and result.get("total_steps") else ""
        return f"Its last checkpoint{at} is kept: <b>Resume</b> goes on from there."
    return "It stopped before its first step, so there is nothing to resume: Start begins afresh."
