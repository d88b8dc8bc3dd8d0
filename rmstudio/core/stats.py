"""Counts a team looks at: how much is labeled, how labels split, who labeled what."""

from __future__ import annotations

from dataclasses import dataclass

from .project import Project
from .records import CHOICES


@dataclass
class ProjectStats:
    counts: dict[str, int]
    choices: dict[str, int]
    annotators: list[dict]  # name, kind, labels, per-choice counts, first/last label time

    def as_dict(self) -> dict:
        return {"counts": self.counts, "choices": self.choices, "annotators": self.annotators}


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
    return ProjectStats(counts, choices, annotators)


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
    return "\n".join(lines)
