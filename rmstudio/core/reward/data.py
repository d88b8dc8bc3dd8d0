"""What a reward model trains on: an immutable snapshot of the project's labels at start.

Label semantics (documented in the README):
- 'a' / 'b': a Bradley-Terry pair, chosen = the preferred response. Strength 2 ("much better")
  adds a margin: the loss asks for r_chosen - r_rejected > margin.
- 'tie': a pair with target probability 0.5 (the loss pulls the two rewards together).
- 'both_bad' and 'skip': no preference between the two, left out. (A better response written
  on "both bad" arrives as its own preferred pairs.)
Each label is one example, so two annotators who agree weigh twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rmstudio.core.store.project import Project, row_to_text
from rmstudio.core.data.records import Text


@dataclass(frozen=True)
class TrainingPair:
    comparison_id: int
    prompt_id: int
    prompt: Text
    chosen_id: int
    chosen: Text
    rejected_id: int
    rejected: Text
    target: float = 1.0  # P(chosen preferred): 1 for a preference, 0.5 for a tie
    margin: float = 0.0
    annotator: str = ""
    teacher: float | None = None  # P(chosen preferred) by a teacher reward model, for distillation


def snapshot_pairs(project: Project, annotators: list[str] | None = None,
                   much_better_margin: float = 1.0) -> list[TrainingPair]:
    where, params = "", ()
    if annotators:
        where = f"AND an.name IN ({', '.join('?' * len(annotators))})"
        params = tuple(annotators)
    rows = project.conn.execute(
        f"""SELECT c.id, c.prompt_id, p.text AS pt, p.messages AS pm,
                   ra.id AS a_id, ra.text AS at, ra.messages AS am,
                   rb.id AS b_id, rb.text AS bt, rb.messages AS bm,
                   l.choice, l.strength, an.name AS annotator
            FROM labels l JOIN comparisons c ON c.id = l.comparison_id
            JOIN annotators an ON an.id = l.annotator_id
            JOIN prompts p ON p.id = c.prompt_id
            JOIN responses ra ON ra.id = c.response_a_id
            JOIN responses rb ON rb.id = c.response_b_id
            WHERE l.choice IN ('a', 'b', 'tie') {where}
            ORDER BY c.id, an.name""", params).fetchall()
    pairs = []
    for r in rows:
        a = (r["a_id"], row_to_text(r["at"], r["am"]))
        b = (r["b_id"], row_to_text(r["bt"], r["bm"]))
        chosen, rejected = (b, a) if r["choice"] == "b" else (a, b)
        pairs.append(TrainingPair(
            comparison_id=r["id"], prompt_id=r["prompt_id"], prompt=row_to_text(r["pt"], r["pm"]),
            chosen_id=chosen[0], chosen=chosen[1], rejected_id=rejected[0], rejected=rejected[1],
            target=0.5 if r["choice"] == "tie" else 1.0,
            margin=much_better_margin if r["strength"] == 2 else 0.0, annotator=r["annotator"]))
    return pairs


@dataclass(frozen=True)
class RatedResponse:
    """One response with an annotator's absolute rating, for the regression objective."""
    prompt_id: int
    prompt: Text
    response_id: int
    response: Text
    rating: float
    annotator: str = ""


def snapshot_ratings(project: Project, annotators: list[str] | None = None) -> list[RatedResponse]:
    """Every rating from rankings whose scores are ratings (scale 'rating'; ranks and orders
    only order, so they train as pairs)."""
    where, params = "", ()
    if annotators:
        where = f"AND an.name IN ({', '.join('?' * len(annotators))})"
        params = tuple(annotators)
    rows = project.conn.execute(
        f"""SELECT k.prompt_id, p.text AS pt, p.messages AS pm, r.id AS rid, r.text AS rt,
                   r.messages AS rm, e.score, an.name AS annotator
            FROM rankings k JOIN ranking_entries e ON e.ranking_id = k.id
            JOIN annotators an ON an.id = k.annotator_id
            JOIN prompts p ON p.id = k.prompt_id
            JOIN responses r ON r.id = e.response_id
            WHERE k.scale = 'rating' {where}
            ORDER BY k.prompt_id, an.name, r.id""", params).fetchall()
    return [RatedResponse(prompt_id=r["prompt_id"], prompt=row_to_text(r["pt"], r["pm"]), response_id=r["rid"],
                          response=row_to_text(r["rt"], r["rm"]), rating=float(r["score"]),
                          annotator=r["annotator"]) for r in rows]


def prompt_rank(text: str, seed: int) -> int:
    """A prompt's place in the seeded shuffle that decides its side (and its fold)."""
    digest = hashlib.blake2b(f"{seed}|{text}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def held_out_count(prompts: int, val_fraction: float) -> int:
    """How many of ``prompts`` prompts a share holds out: round(share x prompts), at least one
    when the share is above zero and there are two prompts or more, and never all of them
    (training needs one). A count, not a per-prompt coin, so 10% of 15 prompts is 2, not 0-4."""
    if val_fraction <= 0 or prompts < 2:
        return 0
    return min(prompts - 1, max(1, round(val_fraction * prompts)))


def shuffled_prompts(items: list, seed: int = 0) -> list[str]:
    """The distinct prompt texts of ``items`` in the seeded order (ties broken by the text)."""
    texts = {item.prompt.text for item in items}
    return sorted(texts, key=lambda text: (prompt_rank(text, seed), text))


def split_by_prompt(pairs: list, val_fraction: float = 0.1, seed: int = 0) -> tuple[list, list]:
    """Train/validation split where no prompt is in both. Works on anything with a ``prompt``
    (pairs, rated responses, policy prompts).

    The prompts are put in a seeded order (a hash of seed and prompt text, so the order of
    ``pairs`` does not matter) and the first ``held_out_count`` of them are held out: the share
    is honoured on few prompts too, and a larger share holds out a superset of a smaller one."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = shuffled_prompts(pairs, seed)
    held = set(order[:held_out_count(len(order), val_fraction)])
    train = [p for p in pairs if p.prompt.text not in held]
    val = [p for p in pairs if p.prompt.text in held]
    return train, val


def pairs_from_file(path) -> list[TrainingPair]:
    """Labeled pairs of a preference file (any format `import` reads), for held-out testing."""
    from rmstudio.core.data.formats import iter_records
    from rmstudio.core.data.records import PairRecord

    pairs = []
    for record in iter_records(path):
        if not isinstance(record, PairRecord) or record.choice not in ("a", "b", "tie"):
            continue
        chosen, rejected = ((record.response_b, record.response_a) if record.choice == "b"
                            else (record.response_a, record.response_b))
        pairs.append(TrainingPair(comparison_id=-record.line, prompt_id=-record.line, prompt=record.prompt,
                                  chosen_id=-2 * record.line, chosen=chosen,
                                  rejected_id=-2 * record.line - 1, rejected=rejected,
                                  target=0.5 if record.choice == "tie" else 1.0,
                                  annotator=record.annotator or "file"))
    return pairs
