"""How much annotators agree: percent agreement, Cohen's kappa per pair, Fleiss' kappa overall.

Only real judgements count: 'skip' labels say "I did not judge this" and are ignored, so the
categories are a, b, tie and both_bad. A pair of annotators is compared on the comparisons both
of them labeled.

Undefined statistics are ``None``, never NaN (NaN is not JSON, and ``rmstudio stats --json``
prints these). Kappa is undefined when chance agreement is 1: both raters (or all raters, for
Fleiss) used one and the same category for every item. Agreement is then perfect but carries
no information beyond chance, and 0/0 has no honest value, so we report ``None`` rather than
1.0 or 0.0. The percent agreement still says "they agreed on all of them".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations

from rmstudio.core.store.project import Project

CATEGORIES = ("a", "b", "tie", "both_bad")


def percent_agreement(pairs: Iterable[tuple[Hashable, Hashable]]) -> float | None:
    """Share of (label_1, label_2) pairs that are equal, in [0, 1]; None without pairs."""
    total = same = 0
    for first, second in pairs:
        total += 1
        same += first == second
    return same / total if total else None


def cohen_kappa(labels_1: Sequence[Hashable], labels_2: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items, in order.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e the agreement
    expected by chance from each rater's own category frequencies. None when there are no
    items, or when p_e == 1 (both used a single, identical category: see the module doc).
    """
    if len(labels_1) != len(labels_2):
        raise ValueError(f"the raters labeled {len(labels_1)} and {len(labels_2)} items; "
                         "kappa needs the same items from both")
    n = len(labels_1)
    if n == 0:
        return None
    p_o = sum(x == y for x, y in zip(labels_1, labels_2)) / n
    freq_1, freq_2 = Counter(labels_1), Counter(labels_2)
    p_e = sum(freq_1[c] * freq_2[c] for c in freq_1) / (n * n)
    if p_e >= 1.0 - 1e-12:
        return None
    return (p_o - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class FleissResult:
    kappa: float | None
    items: int  # items used: those with exactly ``raters`` ratings
    raters: int  # ratings per used item (the most common count)
    excluded: int  # items left out because they had a different number of ratings

    def as_dict(self) -> dict:
        return asdict(self)


def fleiss_kappa(table: Sequence[Sequence[int]], raters: int | None = None) -> FleissResult:
    """Fleiss' kappa from a ratings matrix: one row per item, one column per category, each cell
    the number of raters who put that item in that category.

    Fleiss' kappa needs the same number of ratings on every item. Rows with ``raters`` ratings
    are used (by default the most common row total, the larger one on a tie); the rest are
    excluded and counted. kappa is None with fewer than 2 raters per item, no items, or when
    every rating fell in one category (chance agreement 1).
    """
    totals = [sum(row) for row in table]
    if raters is None:
        common = Counter(t for t in totals if t >= 2)
        raters = max(common, key=lambda t: (common[t], t)) if common else 0
    used = [row for row, total in zip(table, totals) if total == raters]
    excluded = len(table) - len(used)
    if raters < 2 or not used:
        return FleissResult(None, len(used), raters, excluded)
    n_items = len(used)
    n_categories = max(len(row) for row in used)
    # p_j: share of all ratings in category j; P_i: agreeing rater pairs on item i / all pairs.
    column_totals = [sum(row[j] if j < len(row) else 0 for row in used) for j in range(n_categories)]
    p_j = [t / (n_items * raters) for t in column_totals]
    p_i = [(sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in used]
    p_bar = sum(p_i) / n_items
    p_e = sum(p * p for p in p_j)
    if p_e >= 1.0 - 1e-12:
        return FleissResult(None, n_items, raters, excluded)
    return FleissResult((p_bar - p_e) / (1.0 - p_e), n_items, raters, excluded)


def project_agreement(project: Project, include_sources: bool = True) -> dict:
    """Agreement between the annotators of a project, ready for JSON.

    Returns ``{"categories", "annotators": [{name, kind, labels, skips}], "pairs": [{annotator_1,
    annotator_2, overlap, percent_agreement, cohen_kappa}], "fleiss": FleissResult dict or None}``.
    ``pairs`` has every pair of annotators (overlap 0 included); Fleiss' kappa is over the
    comparisons with the most common number (>= 2) of non-skip labels, None if there are none.
    Annotators of kind 'source' (labels that came with an imported file) are left out when
    ``include_sources`` is False.
    """
    conn = project.conn
    kinds = () if include_sources else ("source",)
    where = f"WHERE a.kind NOT IN ({','.join('?' * len(kinds))})" if kinds else ""
    annotators = []
    names: dict[int, str] = {}
    for row in conn.execute(
        f"""SELECT a.id, a.name, a.kind,
                   coalesce(sum(l.choice <> 'skip'), 0) AS labels,
                   coalesce(sum(l.choice = 'skip'), 0) AS skips
            FROM annotators a LEFT JOIN labels l ON l.annotator_id = a.id
            {where} GROUP BY a.id ORDER BY a.id""", kinds,
    ):
        names[row["id"]] = row["name"]
        annotators.append({"name": row["name"], "kind": row["kind"], "labels": row["labels"],
                           "skips": row["skips"]})
    # comparison -> {annotator id: choice}; one pass over the labels, grouped in Python.
    by_item: dict[int, dict[int, str]] = defaultdict(dict)
    for comparison_id, annotator_id, choice in conn.execute(
        "SELECT comparison_id, annotator_id, choice FROM labels WHERE choice <> 'skip'"
    ):
        if annotator_id in names:
            by_item[comparison_id][annotator_id] = choice
    paired: dict[tuple[int, int], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    table = []
    for ratings in by_item.values():
        if len(ratings) < 2:
            continue
        table.append([sum(1 for c in ratings.values() if c == cat) for cat in CATEGORIES])
        for first, second in combinations(sorted(ratings), 2):
            seq_1, seq_2 = paired[(first, second)]
            seq_1.append(ratings[first])
            seq_2.append(ratings[second])
    pairs = []
    for first, second in combinations(sorted(names), 2):
        seq_1, seq_2 = paired.get((first, second), ([], []))
        pairs.append({
            "annotator_1": names[first], "annotator_2": names[second], "overlap": len(seq_1),
            "percent_agreement": percent_agreement(zip(seq_1, seq_2)),
            "cohen_kappa": cohen_kappa(seq_1, seq_2),
        })
    fleiss = fleiss_kappa(table).as_dict() if table else None
    return {"categories": list(CATEGORIES), "annotators": annotators, "pairs": pairs,
            "fleiss": fleiss}
