"""Diagnostics of a reward model on any labeled set: where it agrees with people and where not.

``diagnose(scorer, pairs, sink)`` scores every pair once and reads the result five ways: reward
against length (Pearson and Spearman, with n), the rewards of chosen and of rejected responses
(histograms on shared edges), calibration (reliability bins, as ``evaluate_pairs`` makes them),
accuracy by annotator (with a 95% Wilson interval) and the disagreements: the pairs where the
model does not prefer the chosen response, most confident first, to send back to the label queue.

A *row* is one comparison judged one way. Two annotators who agree share a row (it lists both);
two who disagree give two rows, and the model must get one of them wrong. Ties ('tie' labels)
say nothing about which response is better, so they are counted and left out. Lengths are in
characters of the text the model reads (tokenizers differ between models; characters do not).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.reward.data import TrainingPair
from rmstudio.core.reward.evaluate import _sigmoid, evaluate_pairs

LENGTH_UNIT = "characters"
HISTOGRAM_BINS = 30
PREVIEW_CHARS = 120
Z_95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


class DiagnosisCancelled(InterruptedError):
    """The sink asked to stop while scoring: there is no result to show."""


@dataclass(frozen=True)
class PairRow:
    comparison_id: int
    """The project's comparison id; negative for a pair read from a file (not in any queue)."""
    annotators: tuple[str, ...]
    r_chosen: float
    r_rejected: float
    len_chosen: int
    len_rejected: int
    prompt: str
    """The prompt's first characters, to recognise the pair in a table."""

    @property
    def margin(self) -> float:
        return self.r_chosen - self.r_rejected

    @property
    def p_chosen(self) -> float:
        """P(chosen preferred) = σ(r_chosen − r_rejected), as the model sees it."""
        return float(_sigmoid(np.array(self.margin)))

    @property
    def agrees(self) -> bool:
        return self.margin > 0


@dataclass(frozen=True)
class AnnotatorAccuracy:
    name: str
    pairs: int
    correct: int
    accuracy: float
    low: float
    """The 95% Wilson interval: honest with few pairs and at 0% or 100%."""
    high: float


@dataclass
class Diagnostics:
    rows: list[PairRow]
    ties_left_out: int
    accuracy: float | None
    baseline_longer: float | None
    """Accuracy of "prefer the longer response" on the same rows."""
    ece: float | None
    reliability: list[dict]
    """Bins of confidence max(p, 1 − p): count, mean confidence, observed accuracy."""
    length_unit: str = LENGTH_UNIT
    pearson: float | None = None
    """Of reward vs length over the distinct responses (None when either does not vary)."""
    spearman: float | None = None
    correlation_n: int = 0
    histogram_edges: list[float] = field(default_factory=list)
    histogram_chosen: list[int] = field(default_factory=list)
    histogram_rejected: list[int] = field(default_factory=list)
    by_annotator: list[AnnotatorAccuracy] = field(default_factory=list)
    disagreements: list[PairRow] = field(default_factory=list)
    """Rows the model gets wrong, the most confident (lowest P(chosen)) first."""

    def to_json(self) -> dict:
        """Plain JSON (no NaN): the per-row figures and every summary."""
        out = asdict(self)
        for key in ("rows", "disagreements"):
            out[key] = [{**asdict(r), "annotators": list(r.annotators), "p_chosen": r.p_chosen}
                        for r in getattr(self, key)]
        return out


def diagnose(scorer, pairs: list[TrainingPair], sink: ProgressSink | None = None) -> Diagnostics:
    """Score ``pairs`` with ``scorer`` (anything with ``score_pairs(pairs, sink)``: a
    ``RewardScorer``, or a loaded ``RewardModel``) and read the result. Raises
    ``DiagnosisCancelled`` when the sink asked to stop."""
    sink = sink or NullSink()
    scorer = getattr(scorer, "scorer", scorer)  # a public RewardModel wraps its RewardScorer
    groups = group_rows(pairs)
    unique = [members[0] for members in groups.values()]
    ties = sum(p.target <= 0.5 for p in pairs)
    if not unique:
        return Diagnostics([], ties, None, None, None, [])
    r_chosen, r_rejected = scorer.score_pairs(unique, sink)
    if sink.should_stop() or len(r_chosen) != len(unique):
        raise DiagnosisCancelled("the diagnosis was cancelled")
    rows = []
    for members, rc, rr in zip(groups.values(), r_chosen, r_rejected):
        p = members[0]
        names = tuple(sorted({m.annotator for m in members}))
        rows.append(PairRow(p.comparison_id, names, float(rc), float(rr), len(p.chosen.text),
                            len(p.rejected.text), p.prompt.text[:PREVIEW_CHARS]))
    summary = evaluate_pairs(unique, np.asarray(r_chosen), np.asarray(r_rejected))
    out = Diagnostics(rows, ties, summary["accuracy"], summary["baseline_longer"], summary["ece"],
                      summary["reliability"])
    out.pearson, out.spearman, out.correlation_n = length_correlation(unique, r_chosen, r_rejected)
    out.histogram_edges, out.histogram_chosen, out.histogram_rejected = histograms(r_chosen, r_rejected)
    out.by_annotator = accuracy_by_annotator(rows)
    out.disagreements = sorted((r for r in rows if not r.agrees), key=lambda r: (r.margin, r.comparison_id))
    return out


def group_rows(pairs: list[TrainingPair]) -> dict[tuple, list[TrainingPair]]:
    """The decided pairs by (comparison, chosen, rejected), in first-seen order."""
    groups: dict[tuple, list[TrainingPair]] = {}
    for p in pairs:
        if p.target > 0.5:
            groups.setdefault((p.comparison_id, p.chosen_id, p.rejected_id), []).append(p)
    return groups


def pearson(x, y) -> float | None:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def average_ranks(x) -> np.ndarray:
    """Ranks from 0, tied values sharing their mean rank (Spearman's convention), in one sort:
    a file of 100,000 pairs has 200,000 rewards, too many for a pass per distinct value."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]  # where each run of equal values begins
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(x)] - 1
    ranks = np.empty(len(x))
    ranks[order] = ((first + last) / 2.0)[np.cumsum(starts) - 1]
    return ranks


def length_correlation(pairs: list[TrainingPair], r_chosen,
                       r_rejected) -> tuple[float | None, float | None, int]:
    """(Pearson, Spearman, n) of reward vs length over the distinct responses: a response met
    in several pairs counts once (its reward does not change between them)."""
    seen: dict[int, tuple[float, int]] = {}
    for p, rc, rr in zip(pairs, r_chosen, r_rejected):
        seen.setdefault(p.chosen_id, (float(rc), len(p.chosen.text)))
        seen.setdefault(p.rejected_id, (float(rr), len(p.rejected.text)))
    rewards = np.array([r for r, _ in seen.values()])
    lengths = np.array([n for _, n in seen.values()], dtype=np.float64)
    linear = pearson(rewards, lengths)
    ranked = pearson(average_ranks(rewards), average_ranks(lengths)) if linear is not None else None
    return linear, ranked, len(seen)


def histograms(r_chosen, r_rejected) -> tuple[list[float], list[int], list[int]]:
    """Counts of chosen and of rejected rewards on the same edges (every reward lands in a bin)."""
    both = np.concatenate([np.asarray(r_chosen, dtype=np.float64), np.asarray(r_rejected, dtype=np.float64)])
    edges = np.histogram_bin_edges(both, bins=min(HISTOGRAM_BINS, max(5, len(both) // 4)))
    chosen, _ = np.histogram(r_chosen, bins=edges)
    rejected, _ = np.histogram(r_rejected, bins=edges)
    return [float(e) for e in edges], [int(c) for c in chosen], [int(c) for c in rejected]


def wilson_interval(correct: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (stays inside [0, 1], sane at 0 and n)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + Z_95 ** 2 / (2 * n)) / (1 + Z_95 ** 2 / n)
    half = Z_95 * math.sqrt(p * (1 - p) / n + Z_95 ** 2 / (4 * n * n)) / (1 + Z_95 ** 2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_by_annotator(rows: list[PairRow]) -> list[AnnotatorAccuracy]:
    """Each annotator's share of rows the model ranks their way, most pairs first."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        for name in row.annotators:
            tally = counts.setdefault(name, [0, 0])
            tally[0] += 1
            tally[1] += row.agrees
    out = [AnnotatorAccuracy(name, n, correct, correct / n, *wilson_interval(correct, n))
           for name, (n, correct) in counts.items()]
    return sorted(out, key=lambda a: (-a.pairs, a.name))


# -- the labeled sets a diagnosis can run on --------------------------------------------

def project_pairs(project, run_id: int | None = None) -> list[TrainingPair]:
    """The project's labeled pairs: all of them, or (``run_id``) the validation split of that
    reward run, rebuilt from the seed, validation share and annotators its config recorded.
    Labels given since the run on held-out prompts are in it too: the model never saw them."""
    from rmstudio.core.errors import RmstudioError
    from rmstudio.core.reward.data import snapshot_pairs, split_by_prompt
    from rmstudio.core.runs.store import list_runs

    if run_id is None:
        return snapshot_pairs(project)
    run = next((r for r in list_runs(project, "reward") if r["id"] == run_id), None)
    if run is None:
        raise RmstudioError(f"{project.path.name} has no reward run #{run_id}")
    config = run["config"] or {}
    if "val_fraction" not in config:
        raise RmstudioError(f"reward run #{run_id} recorded no validation share: diagnose all labeled pairs")
    if not config["val_fraction"]:
        raise RmstudioError(f"reward run #{run_id} held out no prompts (validation share 0)")
    pairs = snapshot_pairs(project, config.get("annotators"), config.get("much_better_margin", 1.0))
    return split_by_prompt(pairs, float(config["val_fraction"]), int(config.get("seed", 0)))[1]


def file_pairs(path) -> list[TrainingPair]:
    """The labeled pairs of a preference file in any format the importer reads."""
    from rmstudio.core.errors import FormatError
    from rmstudio.core.reward.data import pairs_from_file

    pairs = pairs_from_file(path)
    if not pairs:
        raise FormatError(path, "no labeled pairs (prompt with chosen/rejected, or a/b with a choice)")
    return pairs


def labeled_set(source, run_id: int | None = None) -> list[TrainingPair]:
    """The labeled pairs of ``source``: a project file (all of them, or the validation split of
    reward run ``run_id``) or a preference file. Opens its own connection (any thread may call)."""
    from pathlib import Path

    from rmstudio.core.errors import RmstudioError
    from rmstudio.core.store.project import SUFFIX, Project

    source = Path(source)
    if not source.exists():
        raise RmstudioError(f"{source}: no such project or file")
    if source.suffix != SUFFIX:
        if run_id is not None:
            raise RmstudioError(f"{source} is a file, not a project: a run's validation split needs "
                                "its project")
        return file_pairs(source)
    with Project.open(source) as project:
        return project_pairs(project, run_id)
