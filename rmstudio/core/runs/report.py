"""One run as one self-contained HTML file: what it was, what it trained on, how it did, its
curves and where its model is. The file needs nothing beside it: the charts are inline SVG
(``svg_chart``), drawn here from the recorded metrics, without Qt.

The run is read through the run store (``list_runs``, ``run_metrics``, ``run_artifacts``) and
its result file (the 'evaluation' artifact, where a run left one). Curves are grouped as the
run's kind declares its plots; a kind this module cannot load, or metrics in no declared plot,
are grouped by measure (``train/loss`` and ``val/loss`` share a chart).
"""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from pathlib import Path

from rmstudio.core.errors import RmstudioError
from rmstudio.core.runs.kinds import Plot, load_kind
from rmstudio.core.runs.store import list_runs, run_artifacts, run_metrics
from rmstudio.core.runs.svg_chart import COLORS, SPLIT_COLORS, Series, bar_chart, line_chart
from rmstudio.core.timefmt import format_duration

# Kinds by reference, the way the launcher finds them (nothing is imported until a report asks).
KIND_REFS = {"reward": "rmstudio.core.reward.kind:REWARD", "policy": "rmstudio.core.policy.kind:POLICY"}
SPLITS = ("train", "val", "test")
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "monitor"}  # as the live view names them
PERCENT = {"accuracy", "baseline_longer"}
COUNTS = {"train_pairs": "training pairs", "val_pairs": "validation pairs", "train_items": "training prompts",
          "held_out_items": "held-out prompts", "truncated": "over-long pairs truncated",
          "skipped": "over-long pairs skipped", "too_long": "prompts too long (left out)",
          "steps": "steps trained", "total_steps": "steps planned"}
FIGURES = {"accuracy": "validation accuracy", "baseline_longer": "prefer-longer baseline",
           "ece": "expected calibration error (ECE)",
           "reward_length_correlation": "reward–length correlation",
           "pearson": "Pearson correlation with the rating", "spearman": "Spearman correlation",
           "rmse": "RMSE on the rating's scale"}
STYLE = """body{font-family:sans-serif;max-width:980px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0}
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}.charts{display:flex;flex-wrap:wrap;gap:10px}
.error{color:#c62828}code{background:#f4f4f4;padding:1px 4px}small{color:#666}"""


def declared_plots(kind: str, config: dict) -> tuple[Plot, ...] | None:
    """The plots the run's kind declares for its config, or None when they cannot be known."""
    ref = KIND_REFS.get(kind)
    if ref is None:
        return None
    try:
        run_kind = load_kind(ref)
        return run_kind.plots_of(run_kind.config_from_json(config))
    except Exception:  # an old or hand-made config: fall back to grouping by measure
        return None


def _measure(metric: str) -> str:
    split, _, rest = metric.partition("/")
    return rest if split in SPLITS and rest else metric


def chart_groups(metrics: dict, plots: tuple[Plot, ...] | None) -> list[tuple[Plot, list[str]]]:
    """Each chart of the report and the recorded metrics on it, in the kind's order first; a
    chart whose metrics have one point each is left out."""
    groups, placed = [], set()
    for plot in plots or ():
        present = [m for m in plot.metrics if metrics.get(m)]
        if present:
            groups.append((plot, present))
            placed.update(present)
    by_measure: dict[str, list[str]] = {}
    for metric in sorted(metrics):
        if metric not in placed and metrics[metric]:
            by_measure.setdefault(_measure(metric), []).append(metric)
    groups += [(Plot(measure, tuple(names)), names) for measure, names in by_measure.items()]
    # One point is no curve (an instant fit logs each metric once): the results table has it.
    return [(plot, names) for plot, names in groups if any(len(metrics[m]) > 1 for m in names)]


def _curve_chart(plot: Plot, names: list[str], metrics: dict) -> str:
    """One chart of a plot group, drawn as the live view draws it: one measure on several splits
    is named and coloured by split, validation and monitor curves are dashed."""
    by_split = len({_measure(n) for n in names}) == 1 and all(n.partition("/")[0] in SPLITS for n in names)
    given = dict(zip(plot.metrics, plot.names))
    series = []
    for i, metric in enumerate(names):
        split = metric.partition("/")[0]
        if metric in given:
            legend, colour = given[metric], COLORS[i % len(COLORS)]
        elif by_split:
            legend, colour = SPLIT_NAMES[split], SPLIT_COLORS[split]
        else:
            legend, colour = metric, COLORS[i % len(COLORS)]
        series.append(Series(legend, metrics[metric], colour, dashed=split in ("val", "test")))
    return line_chart(plot.title, series, "step", plot.y_label, plot.y_limits, legend_low=plot.rising)


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return escape(", ".join(str(v) for v in value)) or "–"
    if isinstance(value, dict) and not value:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return escape(str(value))
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def _table(rows: list[tuple[str, str]], numbers: bool = True) -> str:
    """Rows of (already escaped) label and value."""
    cls = ' class="n"' if numbers else ""
    return "<table>" + "".join(f"<tr><th>{k}</th><td{cls}>{v}</td></tr>" for k, v in rows) + "</table>"


def _flatten(config, prefix: str = "") -> list[tuple[str, object]]:
    """Nested settings as 'finetune.learning_rate' rows, in the order the run stored them."""
    if isinstance(config, dict) and config:
        return [row for key, value in config.items() for row in _flatten(value, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), config)]


def _evaluation_charts(result: dict) -> list[str]:
    """The result's own figures: calibration, accuracy by margin, rewards, reward against √KL."""
    evaluation = result.get("evaluation") or {}
    charts = []
    bins = evaluation.get("reliability") or []
    if bins:
        charts.append(line_chart("Reliability (validation)", [Series(
            "model", [(b["confidence"], b["accuracy"]) for b in bins], SPLIT_COLORS["val"])],
            "confidence", "accuracy", (0.0, 1.0), guides=[Series("", [(0.5, 0.5), (1.0, 1.0)], "#888")]))
    buckets = evaluation.get("accuracy_by_margin") or []
    if buckets:
        labels = [f"≥ {b['low']:g}" if b.get("high") is None else f"{b['low']:g}–{b['high']:g}"
                  for b in buckets]
        charts.append(bar_chart("Accuracy by |r_c − r_r|", labels, [b["accuracy"] for b in buckets],
                                "accuracy", reference=0.5))
    chosen, rejected = evaluation.get("rewards_chosen") or [], evaluation.get("rewards_rejected") or []
    if chosen and rejected:
        charts.append(_histograms(chosen, rejected))
    guard = result.get("guard") or {}
    history, best_of_n = guard.get("history") or [], result.get("best_of_n") or []
    if history or best_of_n:
        def points(rows, key):
            return [(r["sqrt_kl"], r[key]) for r in rows
                    if r.get("sqrt_kl") is not None and r.get(key) is not None]
        charts.append(line_chart("Reward against √KL", [
            Series("RL: reward", points(history, "proxy"), COLORS[0]),
            Series("RL: check", points(history, "check"), COLORS[3]),
            Series("best-of-n: reward", points(best_of_n, "proxy"), COLORS[0], dashed=True),
            Series("best-of-n: check", points(best_of_n, "check"), COLORS[3], dashed=True)],
            "√KL to the start", "held-out reward"))
    return charts


def _histograms(chosen: list[float], rejected: list[float]) -> str:
    """Rewards of the chosen and rejected answers as two count curves over shared bins."""
    low, high = min(chosen + rejected), max(chosen + rejected)
    bins = min(30, max(5, (len(chosen) + len(rejected)) // 4))
    width = (high - low) / bins or 1.0

    def counts(values):
        tally = [0] * bins
        for v in values:
            tally[min(bins - 1, int((v - low) / width))] += 1
        return [(low + width * (i + 0.5), c) for i, c in enumerate(tally)]

    return line_chart("Rewards on validation", [Series("chosen", counts(chosen), SPLIT_COLORS["train"]),
                                                Series("rejected", counts(rejected), SPLIT_COLORS["val"])],
                      "reward", "pairs")


def _read_result(artifacts: list[dict]) -> tuple[dict, str]:
    """The run's result file (its last 'evaluation' artifact) and a note when it cannot be read."""
    files = [a["path"] for a in artifacts if a["kind"] == "evaluation" and a["path"]]
    if not files:
        return {}, ""
    try:
        return json.loads(Path(files[-1]).read_text(encoding="utf-8")), ""
    except (OSError, ValueError) as exc:
        return {}, f"its result file {files[-1]} could not be read ({exc.__class__.__name__})"


def _when(text: str | None) -> str:
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S UTC") if text else "–"
    except ValueError:
        return text or "–"


def _duration(run: dict) -> str:
    try:
        start, end = datetime.fromisoformat(run["started_at"]), datetime.fromisoformat(run["finished_at"])
    except (TypeError, ValueError):
        return "–"
    return format_duration((end - start).total_seconds())


def build_report(project, run_id: int, plots: tuple[Plot, ...] | None = None) -> str:
    """The HTML report of run ``run_id``; ``plots`` overrides the charts its kind declares."""
    run = next((r for r in list_runs(project) if r["id"] == run_id), None)
    if run is None:
        raise RmstudioError(f"there is no run {run_id} in this project")
    metrics = run_metrics(project, run_id)
    artifacts = run_artifacts(project, run_id)
    result, unreadable = _read_result(artifacts)
    title = f"Run #{run_id} · {run['name']}"
    html = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"]
    about = [("Kind", escape(run["kind"])), ("Status", escape(run["status"])),
             ("Started", _when(run["started_at"])), ("Finished", _when(run.get("finished_at"))),
             ("Duration", _duration(run))]
    html.append(_table(about, numbers=False))
    if run.get("error"):
        html.append(f"<p class='error'><b>Error:</b> {escape(run['error'].partition(chr(10))[0])}</p>")
    if unreadable:
        html.append(f"<p class='error'>{escape(unreadable)}.</p>")

    evaluation = result.get("evaluation") or {}
    counts = [(label, _number(result[key])) for key, label in COUNTS.items() if result.get(key) is not None]
    counts += [(f"validation {unit} measured", _number(evaluation[unit])) for unit in ("pairs", "responses")
               if evaluation.get(unit) is not None]
    if counts:
        html.append("<h2>Data</h2>" + _table(counts))
    figures = [(label, (f"{evaluation[key]:.1%} <small>({_number(evaluation[key])})</small>" if key in PERCENT
                        else _number(evaluation[key])))
               for key, label in FIGURES.items() if isinstance(evaluation.get(key), (int, float))]
    last = [(escape(key), f"{_number(points[-1][1])} <small>at step {points[-1][0]:,}</small>")
            for key, points in sorted(metrics.items())]
    if figures or last:
        html.append("<h2>Results</h2>")
        if figures:
            html.append(_table(figures))
        if last:
            html.append("<p><b>Last recorded value of each metric</b></p>" + _table(last))
    charts = _evaluation_charts(result)
    if charts:
        html.append("<h2>Evaluation</h2><div class='charts'>" + "".join(charts) + "</div>")
    groups = chart_groups(metrics, plots if plots is not None else declared_plots(run["kind"], run["config"]))
    if groups:
        html.append("<h2>Curves</h2><div class='charts'>"
                    + "".join(_curve_chart(plot, names, metrics) for plot, names in groups) + "</div>")
    settings = [(escape(key), _number(value)) for key, value in _flatten(run["config"])]
    html.append("<h2>Settings</h2>"
                + (_table(settings, numbers=False) if settings else "<p>none recorded</p>"))
    models = [a["path"] for a in artifacts if a["kind"] == "model" and a["path"]]
    model = models[-1] if models else result.get("model_dir")
    html.append("<h2>Files</h2><p><b>Model folder:</b> "
                + (f"<code>{escape(str(model))}</code>" if model else "none saved") + "</p>")
    if artifacts:
        html.append("<ul>" + "".join(f"<li>{escape(a['kind'])}: <code>{escape(a['path'] or '–')}</code></li>"
                                     for a in artifacts) + "</ul>")
    html.append(f"<p><small>Project {escape(str(project.path))} · report made "
                f"{datetime.now().astimezone().strftime('%Y-%m-%d %H:%M')}</small></p></body></html>")
    return "\n".join(html)


def write_report(project, run_id: int, out: str | Path, plots: tuple[Plot, ...] | None = None) -> Path:
    """Write the report of ``run_id`` to ``out``; RmstudioError says in one line what failed."""
    out = Path(out)
    text = build_report(project, run_id, plots)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RmstudioError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return out
