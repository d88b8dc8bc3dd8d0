"""Counts a team looks at: how much is labeled, how labels split, who labeled what."""

from __future__ import annotations

from dataclasses import dataclass, field

from rmstudio.core.labeling.agreement import project_agreement
from rmstudio.core.store.project import Project
from rmstudio.core.data.records import CHOICES


@dataclass
class ProjectStats:
    counts: dict[str, int]
    choices: dict[str, int]
    annotators: list[dict]  # name, kind, labels, per-choice counts, first/last label time
    agreement: dict = field(default_factory=dict)  # agreement.project_agreement's dict

    def as_dict(self) -> dict:
        return {"counts": self.counts, "choices": self.choices, "annotators": self.annotators,
                "agreement": self.agreement}


def project_stats(project: Project) -> ProjectStats:
    conn = project.conn
    counts = project.counts()
    counts["unlabeled_comparisons"] = counts["comparisons"] - counts["labeled_comparisons"]
    choices = dict.fromkeys(CHOICES, 0)
    for choice, n in conn.execute("SELECT choice, count(*) FROM labels GROUP BY choice"):
        choices[choice] = n
    annotators = []
    for row in conn.execute(
        """SELECT a.name, a.kind, count(l.id) AS labels, min(l.created_at) AS first,
                  max(l.created_at) AS last
           FROM annotators a LEFT JOIN labels l ON l.annotator_id = a.id
           GROUP BY a.id ORDER BY a.id"""
    ):
        per_choice = dict.fromkeys(CHOICES, 0)
        for choice, n in conn.execute(
            "SELECT choice, count(*) FROM labels l JOIN annotators a ON a.id = l.annotator_id "
            "WHERE a.name = ? GROUP BY choice", (row["name"],)
        ):
            per_choice[choice] = n
        annotators.append({"name": row["name"], "kind": row["kind"], "labels": row["labels"],
                           "choices": per_choice, "first_label": row["first"],
                           "last_label": row["last"]})
    return ProjectStats(counts, choices, annotators, project_agreement(project))


def format_stats(stats: ProjectStats) -> str:
    c = stats.counts
    lines = [
        f"prompts      {c['prompts']:>9,}",
        f"responses    {c['responses']:>9,}",
        f"comparisons  {c['comparisons']:>9,}   labeled {c['labeled_comparisons']:,}, "
        f"unlabeled {c['unlabeled_comparisons']:,}",
        f"labels       {c['labels']:>9,}   "
        + ", ".join(f"{k.replace('_', '-')} {v:,}" for k, v in stats.choices.items()),
    ]
    if c["rankings"]:
        lines.append(f"rankings     {c['rankings']:>9,}")
    if stats.annotators:
        lines.append("")
        lines.append(f"{'annotator':<40} {'kind':<7} {'labels':>8}  {'a':>6} {'b':>6} {'tie':>5} "
                     f"{'both-bad':>8} {'skip':>5}")
        for a in stats.annotators:
            ch = a["choices"]
            lines.append(f"{a['name'][:40]:<40} {a['kind']:<7} {a['labels']:>8,}  {ch['a']:>6,} "
                         f"{ch['b']:>6,} {ch['tie']:>5,} {ch['both_bad']:>8,} {ch['skip']:>5,}")
    lines.extend(format_agreement(stats.agreement))
    return "\n".join(lines)


def _number(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.1f}%" if percent else f"{value:.3f}"


def format_agreement(agreement: dict) -> list[str]:
    """The pairwise table (pairs that labeled something in common) and Fleiss' kappa."""
    pairs = [p for p in agreement.get("pairs", []) if p["overlap"]]
    lines: list[str] = []
    if pairs:
        names = [f"{p['annotator_1'][:40]} / {p['annotator_2'][:40]}" for p in pairs]
        width = max(40, *map(len, names))
        lines += ["", "agreement (skips ignored)",
                  f"{'pair':<{width}} {'overlap':>8} {'% agree':>8} {'kappa':>7}"]
        for pair, p in zip(names, pairs):
            lines.append(f"{pair:<{width}} {p['overlap']:>8,} "
                         f"{_number(p['percent_agreement'], True):>8} {_number(p['cohen_kappa']):>7}")
        without = len(agreement["pairs"]) - len(pairs)
        if without:
            lines.append(f"({without:,} more pair(s) labeled nothing in common)")
    fleiss = agreement.get("fleiss")
    if fleiss and fleiss["items"]:
        if not pairs:
            lines.append("")
        extra = f", {fleiss['excluded']:,} excluded" if fleiss["excluded"] else ""
        lines.append(f"Fleiss' kappa {_number(fleiss['kappa'])} over {fleiss['items']:,} "
                     f"comparisons with {fleiss['raters']} labels each{extra}")
    return lines


def annotator_choice_counts(project: Project) -> list[dict]:
    """Each annotator's labels split by choice, the busiest first (an annotator without labels
    too, with zeros): ``{name, kind, labels, preference (a or b), tie, both_bad, skip}``."""
    rows = project.conn.execute(
        """SELECT a.name, a.kind, count(l.id),
                  sum(l.choice IN ('a', 'b')), sum(l.choice = 'tie'),
                  sum(l.choice = 'both_bad'), sum(l.choice = 'skip')
           FROM annotators a LEFT JOIN labels l ON l.annotator_id = a.id
           GROUP BY a.id ORDER BY count(l.id) DESC""").fetchall()
    return [{"name": name, "kind": kind, "labels": labels, "preference": preference or 0,
             "tie": tie or 0, "both_bad": both_bad or 0, "skip": skip or 0}
            for name, kind, labels, preference, tie, both_bad, skip in rows]


def labels_left_out_of_training(project: Project,
                                annotators: list[str] | None = None) -> dict[str, int]:
    """Labels that do not train a pairwise reward model, by choice: both-bad and skip (no
    preference between the two responses). Only ``annotators``' labels when given (None or
    empty: everyone's); a choice with no such label is missing from the result."""
    where, params = "", ()
    if annotators:
        where = f"AND an.name IN ({', '.join('?' * len(annotators))})"
        params = tuple(annotators)
    rows = project.conn.execute(
        f"SELECT l.choice, count(*) FROM labels l JOIN annotators an ON an.id = l.annotator_id "
        f"WHERE l.choice IN ('both_bad', 'skip') {where} GROUP BY l.choice", params).fetchall()
    return {choice: n for choice, n in rows}
