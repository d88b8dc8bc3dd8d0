"""The Runs workspace: every run the project remembers, their curves side by side, and their details."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import (
    QAbstractItemView, QApplication, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSplitter,
    QTableWidget, QTableWidgetItem, QTextBrowser, QToolTip, QVBoxLayout, QWidget,
)

from rmstudio.core.store.project import Project
from rmstudio.core.runs.store import last_metric_values, list_runs, run_artifacts, run_metrics
from rmstudio.core.timefmt import format_duration
from rmstudio.gui.model_export_bar import ModelExportBar
from rmstudio.gui.pages import heading
from rmstudio.gui.plots import color, make_plot, place_legend, set_title
from rmstudio.gui.theme import colour

COLUMNS = ["Run", "Kind", "Name", "Status", "Started", "Duration", "Val accuracy"]
PREFERRED_KEYS = ("val/accuracy", "val/loss", "train/loss", "train/accuracy")
STATUS_COLORS = {"failed": "error", "cancelled": "warning", "interrupted": "warning",
                 "running": "info"}  # theme roles (gui/theme.py)


def flat_settings(config, prefix: str = "") -> list[tuple[str, str]]:
    """A run's config as (name, value) rows, nested keys joined with dots
    ("finetune.lora_rank"), values as JSON writes them (true, [1, 2]) except plain text, and
    "—" for a setting left empty (None)."""
    if not isinstance(config, dict) or (prefix and not config):
        return [(prefix, _setting_text(config))]
    rows: list[tuple[str, str]] = []
    for key, value in config.items():
        rows += flat_settings(value, f"{prefix}.{key}" if prefix else str(key))
    return rows


def _setting_text(value) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def settings_table_html(run_id: int, config) -> str:
    rows = "".join(f"<tr><td style='padding-right:14px'>{escape(name)}</td><td>{escape(text)}</td></tr>"
                   for name, text in flat_settings(config))
    return (f"<p><b>Settings</b> &nbsp;<a href='copy-settings:{run_id}'>Copy as JSON</a></p>"
            f"<table cellspacing='0' cellpadding='1' style='font-size:11px'>{rows}</table>")


def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _duration(run: dict) -> str:
    start = _parse_time(run.get("started_at"))
    end = _parse_time(run.get("finished_at"))
    if end is None and run["status"] == "running":
        end = datetime.now(timezone.utc)
    if start is None or end is None:
        return ""
    return format_duration((end - start).total_seconds())


class RunsPage(QWidget):
    def __init__(self):
        super().__init__()
        self.project: Project | None = None
        self.runs: list[dict] = []
        self._series: dict[int, dict] = {}  # run id -> run_metrics, read once per selection
        self.curves: dict[int, object] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        top = QHBoxLayout()
        top.addWidget(heading("Runs"))
        top.addStretch(1)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        top.addWidget(self.refresh_button)
        layout.addLayout(top)
        self.hint = QLabel("Select several runs (Ctrl/Shift-click) to overlay their curves.")
        self.hint.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.hint)

        splitter = QSplitter(Qt.Vertical)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("runs_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        splitter.addWidget(self.table)

        lower = QSplitter(Qt.Horizontal)
        plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Metric"))
        self.metric_box = QComboBox()
        self.metric_box.setMinimumWidth(180)
        self.metric_box.currentTextChanged.connect(self._on_metric_changed)
        row.addWidget(self.metric_box)
        row.addStretch(1)
        plot_layout.addLayout(row)
        self.plot = make_plot(self, "Select runs to compare")
        plot_layout.addWidget(self.plot, 1)
        lower.addWidget(plot_box)
        self.details = QTextBrowser()
        self.details.setObjectName("run_details")
        self.details.setOpenLinks(False)
        self.details.anchorClicked.connect(self._on_details_link_clicked)
        detail_box = QWidget()
        detail_layout = QVBoxLayout(detail_box)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.details, 1)
        self.export_bar = ModelExportBar()  # one selected run that saved a model
        detail_layout.addWidget(self.export_bar)
        lower.addWidget(detail_box)
        lower.setSizes([700, 420])
        splitter.addWidget(lower)
        splitter.setSizes([190, 550])
        layout.addWidget(splitter, 1)

    # -- project -------------------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        self.project = project
        self.refresh()

    def set_annotator(self, name: str) -> None:
        pass  # runs belong to the project, not to one annotator

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the runs, keeping the selection (connect TrainPage.sig_run_finished here too)."""
        selected = set(self.selected_run_ids())
        self.runs = list_runs(self.project) if self.project is not None else []
        self._series.clear()
        val_acc = self._last_values("val/accuracy")
        self.table.blockSignals(True)
        self.table.clearSelection()
        self.table.setRowCount(len(self.runs))
        for row, run in enumerate(reversed(self.runs)):  # newest first
            acc = val_acc.get(run["id"])
            values = [str(run["id"]), run["kind"], run["name"], run["status"], (run["started_at"] or "")[:19]
                      .replace("T", " "), _duration(run), "" if acc is None else f"{100 * acc:.1f}%"]
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setData(Qt.UserRole, run["id"])
                if col in (0, 5, 6):
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if col == 3 and run["status"] in STATUS_COLORS:
                    item.setForeground(QColor(colour(STATUS_COLORS[run["status"]])))
                self.table.setItem(row, col, item)
            if run["id"] in selected:
                self._add_row_to_selection(row)
        self.table.blockSignals(False)
        if not self.runs:
            self.details.setHtml("<i>No runs yet. Train a reward model (Train) or generate responses: "
                                 "each run is remembered here with its settings and curves.</i>")
        self._on_selection_changed()

    def _add_row_to_selection(self, row: int) -> None:
        index = self.table.model().index(row, 0)
        self.table.selectionModel().select(index, QItemSelectionModel.Select | QItemSelectionModel.Rows)

    def _last_values(self, key: str) -> dict[int, float]:
        if self.project is None:
            return {}
        return last_metric_values(self.project, key)

    def selected_run_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.table.item(r, 0).data(Qt.UserRole) for r in rows if self.table.item(r, 0)]

    def select_runs(self, run_ids: list[int]) -> None:
        self.table.clearSelection()
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.UserRole) in run_ids:
                self._add_row_to_selection(row)

    # -- overlay and details -------------------------------------------------------------

    def _show_export(self, ids: list[int]) -> None:
        """Export / open the model of the one selected run (its last 'model' file)."""
        models = [a["path"] for a in run_artifacts(self.project, ids[0]) if a["kind"] == "model"
                  and a["path"]] if self.project is not None and len(ids) == 1 else []
        if self.export_bar.busy():
            return  # a copy in progress keeps its buttons and status until it ends
        self.export_bar.set_model(models[-1] if models else None, ids[0] if models else None)

    def _metrics_of(self, run_id: int) -> dict:
        if run_id not in self._series:
            self._series[run_id] = run_metrics(self.project, run_id)
        return self._series[run_id]

    def _on_selection_changed(self) -> None:
        ids = self.selected_run_ids()
        keys = sorted({k for run_id in ids for k in self._metrics_of(run_id)})
        current = self.metric_box.currentText()
        self.metric_box.blockSignals(True)
        self.metric_box.clear()
        self.metric_box.addItems(keys)
        preferred = next((k for k in PREFERRED_KEYS if k in keys), keys[0] if keys else "")
        choice = current if current in keys else preferred
        self.metric_box.setCurrentText(choice)
        self.metric_box.blockSignals(False)
        self._draw_overlay()
        self._show_details(ids)

    def _on_metric_changed(self, _key: str) -> None:
        self._draw_overlay()

    def _draw_overlay(self) -> None:
        import pyqtgraph as pg

        key = self.metric_box.currentText()
        item = self.plot.getPlotItem()
        item.clear()
        if item.legend is not None:
            item.legend.clear()
        self.curves = {}
        by_id = {run["id"]: run for run in self.runs}
        ids = self.selected_run_ids()
        title = key if ids and key else ("These runs logged no metrics" if ids else "Select runs to compare")
        set_title(self.plot, escape(title))
        place_legend(self.plot, rising=any(word in key for word in ("accuracy", "margin", "reward")))
        for i, run_id in enumerate(sorted(ids)):
            points = self._metrics_of(run_id).get(key, [])
            if not points:
                continue
            steps, values = zip(*points)
            few = len(points) < 30  # an instant run logs one point: show it as a dot
            curve = self.plot.plot(list(steps), list(values), pen=pg.mkPen(color(i), width=2),
                                   symbol="o" if few else None, symbolSize=7, symbolBrush=color(i),
                                   symbolPen=None,
                                   name=f"#{run_id} {by_id.get(run_id, {}).get('name', '')}")
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            self.curves[run_id] = curve

    def _show_details(self, ids: list[int]) -> None:
        self._show_export(ids)
        if self.project is None or not ids:
            if self.runs:
                self.details.setHtml("<i>Select a run to see its settings, errors and files.</i>")
            return
        by_id = {run["id"]: run for run in self.runs}
        parts = []
        for run_id in ids[:5]:
            run = by_id[run_id]
            html = [f"<h3>Run #{run_id} · {escape(run['name'])} · {escape(run['status'])}</h3>"]
            if run.get("error"):
                message, _, trace = run["error"].partition("\n")
                html.append(f"<p style='color:{colour('error')}'><b>Error:</b> {escape(message)}</p>")
                if trace.strip():
                    html.append(f"<pre style='font-size:10px'>{escape(trace.strip())}</pre>")
            artifacts = run_artifacts(self.project, run_id)
            if artifacts:
                html.append("<b>Files</b><ul>" + "".join(
                    f"<li>{escape(a['kind'])}: <code>{escape(a['path'] or '–')}</code></li>"
                    for a in artifacts)
                    + "</ul>")
            html.append(settings_table_html(run_id, run["config"]))
            parts.append("".join(html))
        if len(ids) > 5:
            parts.append(f"<i>… and {len(ids) - 5} more selected.</i>")
        self.details.setHtml("<hr>".join(parts))

    def _on_details_link_clicked(self, url) -> None:
        """"Copy as JSON" under a run's settings: the config as it is stored, for power users."""
        kind, _, run_id = url.toString().partition(":")
        run = next((r for r in self.runs if str(r["id"]) == run_id), None)
        if kind != "copy-settings" or run is None:
            return
        QApplication.clipboard().setText(json.dumps(run["config"], indent=2, default=str))
        QToolTip.showText(QCursor.pos(), f"Settings of run #{run_id} copied as JSON", self.details)
