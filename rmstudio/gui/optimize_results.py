"""After a policy run: did it improve, did it over-optimise, did it beat sampling more, and what
do people say. Export the policy.

- The guard's evaluations and best-of-n from the starting policy on one plot, reward against
  √KL (Gao et al.'s axes): RL that does not beat best-of-n at the same KL bought nothing.
- Before/after: sample the start and the tuned policy on held-out prompts, win rates under the
  reward (and the check) model with 95% intervals; one click sends the pairs to the label queue
  (through the window's store writer) and the human win rate appears beside the models' once
  people have labeled them.
Sampling, scoring and exporting run as jobs off the UI thread.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem,
    QVBoxLayout, QWidget,
)

from rmstudio.gui.plots import color, make_plot, set_title
from rmstudio.gui.report_button import ReportButton
from rmstudio.gui.theme import colour
from rmstudio.gui.worker import start_job


class OptimizeResults(QWidget):
    sig_send_pairs = Signal(list)  # NewPair list for the label queue (the page has the writer)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = None
        self.result: dict = {}
        self.comparison = None
        self._job = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 0, 0)
        self.headline = QLabel("Results appear here when a run ends.")
        self.headline.setObjectName("policy_headline")
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.RichText)
        layout.addWidget(self.headline)
        self.kl_plot = make_plot(self, "Reward against √KL: the run's guard and best-of-n", x_label="√KL to the start",
                                 y_label="held-out reward")
        self.kl_plot.setMinimumHeight(200)
        layout.addWidget(self.kl_plot, 2)

        row = QHBoxLayout()
        self.export_step = QComboBox()
        self.export_step.addItem("the last step", "last")
        self.export_step.addItem("the step with the best check reward", "best")
        self.export_button = QPushButton("Export policy…")
        self.export_button.clicked.connect(self.export_clicked)
        row.addWidget(QLabel("Export"))
        row.addWidget(self.export_step)
        row.addWidget(self.export_button)
        self.report_button = ReportButton()  # the run's settings, figures and curves as one HTML file
        row.addWidget(self.report_button, 1)
        row.addStretch(1)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.prompts = QSpinBox()
        self.prompts.setRange(1, 10_000)
        self.prompts.setValue(16)
        self.compare_button = QPushButton("Compare before/after")
        self.compare_button.setToolTip("Sample the starting and the tuned policy on held-out prompts and score both.")
        self.compare_button.clicked.connect(self.compare)
        self.send_button = QPushButton("Send the pairs to labeling")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self._send)
        row.addWidget(QLabel("Held-out prompts"))
        row.addWidget(self.prompts)
        row.addWidget(self.compare_button)
        row.addWidget(self.send_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.verdict = QLabel("")
        self.verdict.setObjectName("policy_verdict")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.RichText)
        layout.addWidget(self.verdict)
        self.pairs = QTableWidget(0, 4)
        self.pairs.setHorizontalHeaderLabels(["prompt", "start", "tuned", "reward start → tuned"])
        self.pairs.horizontalHeader().setStretchLastSection(True)
        self.pairs.setEditTriggers(QTableWidget.NoEditTriggers)
        layout.addWidget(self.pairs, 2)
        self._update()

    # -- the run's result ----------------------------------------------------------------

    def set_project(self, project) -> None:
        self.project = project
        self.show_result({})

    def show_result(self, result: dict) -> None:
        self.result = dict(result or {})
        self.comparison = None
        self.pairs.setRowCount(0)
        self.verdict.setText("")
        self.kl_plot.getPlotItem().clear()
        run_id = self.result.get("run_id")
        self.report_button.set_run(self.project.path if self.project is not None and run_id else None, run_id)
        if not self.result:
            self.headline.setText("Results appear here when a run ends.")
            self._update()
            return
        metrics = self.result.get("metrics") or {}
        parts = [f"Run #{self.result.get('run_id', '?')} {self.result.get('status', '?')} after "
                 f"{self.result.get('steps', 0)} steps."]
        if "train/reward" in metrics:
            parts.append(f"Reward {metrics['train/reward']:+.3f}, KL {metrics.get('train/kl', float('nan')):.4f}.")
        step = self._checkpoint_step()
        if self.result.get("status") != "finished" and step is not None:
            parts.append(f"Its last checkpoint is step {step}: compare and export use that one.")
        guard = self.result.get("guard") or {}
        if guard.get("best_step") is not None:
            parts.append(f"Best check reward {guard.get('best_check', float('nan')):+.3f} at step {guard['best_step']}.")
        if self.result.get("warning"):
            parts.append(f"<br><span style='color:{colour('warning')}'>⚠ {self.result['warning']}</span>")
        self.headline.setText(" ".join(parts))
        self._plot_kl(guard.get("history") or [], self.result.get("best_of_n") or [])
        self._update()

    def _checkpoint_step(self) -> int | None:
        from pathlib import Path

        from rmstudio.core.policy.compare import policy_step

        checkpoint = self.result.get("checkpoint")
        return policy_step(Path(self.result.get("run_folder", "")), Path(checkpoint)) if checkpoint else None

    def _plot_kl(self, history: list[dict], best_of_n: list[dict]) -> None:
        item = self.kl_plot.getPlotItem()
        series = [("RL: reward (optimised)", [h["sqrt_kl"] for h in history], [h["proxy"] for h in history], 0, False),
                  ("RL: check reward", [h["sqrt_kl"] for h in history], [h.get("check") for h in history], 3, False),
                  ("best-of-n: reward", [r["sqrt_kl"] for r in best_of_n], [r["proxy"] for r in best_of_n], 0, True),
                  ("best-of-n: check", [r["sqrt_kl"] for r in best_of_n], [r.get("check") for r in best_of_n], 3, True)]
        for name, xs, ys, c, dashed in series:
            points = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
            if points:
                style = Qt.DashLine if dashed else Qt.SolidLine
                item.plot([p[0] for p in points], [p[1] for p in points], name=name,
                          pen=pg.mkPen(color(c), width=2, style=style), symbol="t" if dashed else "o",
                          symbolSize=6, symbolBrush=color(c))
        if not history and not best_of_n:
            set_title(self.kl_plot, "Turn on the guard (a check reward) and best-of-n to see reward "
                                    "against √KL")

    # -- before/after --------------------------------------------------------------------

    def compare(self) -> None:
        if self.project is None or not self.result.get("run_id") or self._job is not None:
            return
        path, run_id, n = str(self.project.path), self.result["run_id"], self.prompts.value()

        def job(sink):
            from rmstudio.core.policy.compare import compare_policies

            return compare_policies(path, run_id, n_prompts=n, sink=sink)

        self.verdict.setText("Sampling the starting and the tuned policy…")
        self._job = start_job(self, job, self._compared, self._failed)
        self._update()

    def _compared(self, comparison) -> None:
        self._job = None
        self.comparison = comparison
        lines = [f"Compared <i>{comparison.tuned_name}</i> with <i>{comparison.start_name}</i> on "
                 f"{len(comparison.rows)} held-out prompts.",
                 f"Tuned beats start under the reward model: <b>{comparison.reward.describe()}</b>"]
        if comparison.check is not None:
            lines.append(f"under the check model: <b>{comparison.check.describe()}</b>")
        self.verdict.setText("<br>".join(lines) + self._human_line())
        self.pairs.setRowCount(len(comparison.rows))
        for r, row in enumerate(comparison.rows):
            for c, text in enumerate((row.prompt, row.start, row.tuned,
                                      f"{row.reward_start:+.3f} → {row.reward_tuned:+.3f}")):
                cell = QTableWidgetItem(text.replace("\n", " ")[:300])
                cell.setToolTip(text)
                self.pairs.setItem(r, c, cell)
        self._update()

    def _human_line(self) -> str:
        from rmstudio.core.policy.compare import human_win_rate

        if self.project is None or not self.result.get("run_id"):
            return ""
        verdict = human_win_rate(self.project, self.result["run_id"])
        if not verdict.labeled:
            return ("<br>People: not labeled yet" + (f" ({verdict.comparisons} pairs in the queue)"
                                                     if verdict.comparisons else "") + ".")
        return f"<br>People: <b>{verdict.win.describe()}</b> ({verdict.labeled} of {verdict.comparisons} labeled)"

    def refresh_verdict(self) -> None:
        """Labels changed: the human win rate may have moved."""
        if self.comparison is not None:
            self._compared(self.comparison)

    def _send(self) -> None:
        from rmstudio.core.policy.compare import comparison_pairs

        if self.comparison is None:
            return
        pairs, skipped = comparison_pairs(self.comparison)
        if pairs:
            self.sig_send_pairs.emit(pairs)
        self.verdict.setText(self.verdict.text() + f"<br>{len(pairs)} pairs sent to the label queue"
                             + (f" ({skipped} with two equal answers left out)." if skipped else "."))
        self.send_button.setEnabled(False)

    # -- export --------------------------------------------------------------------------

    def choose_export_folder(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Export the tuned policy to an empty folder")

    def export_clicked(self) -> None:
        folder = self.result.get("run_folder") or self._run_folder()
        if not folder or self._job is not None:
            return
        out = self.choose_export_folder()
        if not out:
            return
        step = self.export_step.currentData()

        def job(_sink):
            from rmstudio.core.policy.export import export_policy

            return export_policy(folder, out, step=step)

        self.verdict.setText("Exporting…")
        self._job = start_job(self, job, self._exported, self._failed)
        self._update()

    def _run_folder(self) -> str:
        from rmstudio.core.policy.run import runs_dir

        if self.project is None or not self.result.get("run_id"):
            return ""
        return str(runs_dir(self.project.path) / f"run-{self.result['run_id']}")

    def _exported(self, path) -> None:
        self._job = None
        self.verdict.setText(f"Exported to {path}: <code>AutoModelForCausalLM.from_pretrained(\"{path}\")</code> "
                             "loads it, and the Generate dialog can use it as a model.")
        self._update()

    def _failed(self, message: str, _details: str) -> None:
        self._job = None
        self.verdict.setText(f"<span style='color:{colour('error')}'>{message}</span>")
        self._update()

    def _update(self) -> None:
        done = bool(self.result.get("run_id")) and self._job is None
        # a cancelled run is compared at its last checkpoint (named by that checkpoint's step)
        comparable = self.result.get("status") == "finished" or bool(self.result.get("checkpoint"))
        self.compare_button.setEnabled(done and comparable)
        self.export_button.setEnabled(done)
        self.send_button.setEnabled(self.comparison is not None and self._job is None)
        has_best = (self.result.get("guard") or {}).get("best_step") is not None
        self.export_step.model().item(1).setEnabled(has_best)
        if not has_best:
            self.export_step.setCurrentIndex(0)
