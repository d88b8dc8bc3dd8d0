"""What the Label workspace asks of the store: which pair comes next, which side it is shown on,
what a key press means for the stored label, the "write a better response" path, and progress.

Plain Python (no Qt): the label page, the CLI and the tests use it as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from rmstudio.core.errors import ProjectError
from rmstudio.core.store.project import Project, utc_now
from rmstudio.core.data.records import Message, Text
from rmstudio.core.store.inserts import ProjectWriter, flip_if

DISPLAYED_CHOICES = ("left", "right", "tie", "both_bad", "skip")
QUEUE_ORDERS = ("import", "random")
# comparisons.queue_key is random in [0, 2**62), fixed when the comparison is inserted.
QUEUE_KEY_RANGE = 1 << 62


def side_swap(comparison_id: int, annotator: str) -> bool:
    """Whether response A is shown on the RIGHT for this annotator and comparison.

    Random per (comparison, annotator), so position bias averages out and two annotators see a
    pair differently, yet stable: the same pair looks the same when it is shown again (undo)."""
    digest = hashlib.blake2b(f"{comparison_id}\x1f{annotator}".encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return bool(digest[0] & 1)


def displayed_to_stored(choice: str, swapped: bool) -> str:
    """Map a key press about what was SHOWN (left/right) to the stored choice about the REAL
    responses ('a'/'b'): a label always refers to the responses, never to screen positions."""
    if choice not in DISPLAYED_CHOICES:
        raise ValueError(f"choice {choice!r} is not one of {', '.join(DISPLAYED_CHOICES)}")
    if choice == "left":
        return "b" if swapped else "a"
    if choice == "right":
        return "a" if swapped else "b"
    return choice


def overlap_threshold(share: float) -> int:
    """Comparisons whose queue_key is below this are eligible for a second label.

    queue_key is a random number fixed per comparison at insert, i.e. a hash of the comparison:
    using it (rather than a hash computed in SQL) keeps the overlap query an index range scan on
    (label_count, queue_key)."""
    share = min(max(float(share), 0.0), 1.0)
    return int(share * QUEUE_KEY_RANGE)


def in_overlap_share(project: Project, comparison_id: int, share: float) -> bool:
    row = project.conn.execute("SELECT queue_key FROM comparisons WHERE id = ?",
                               (comparison_id,)).fetchone()
    return row is not None and row[0] < overlap_threshold(share)


def _annotator_row_id(project: Project, annotator: str) -> int:
    row = project.conn.execute("SELECT id FROM annotators WHERE name = ?", (annotator,)).fetchone()
    return row[0] if row else -1


def _overlap_due(project: Project, annotator_id: int, share: float) -> bool:
    """A Bernoulli(share) draw that is deterministic for the annotator's current state: it is
    keyed on their latest label event (an index lookup, not a count), so asking twice without
    labeling gives the same answer and each new label draws again."""
    last = project.conn.execute("SELECT max(id) FROM label_events WHERE annotator_id = ?",
                                (annotator_id,)).fetchone()[0] or 0
    digest = hashlib.blake2b(f"{annotator_id}\x1f{last}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def next_overlap(project: Project, annotator: str, overlap_share: float) -> int | None:
    """A comparison exactly one other annotator labeled (not skipped), in the overlap share,
    that this annotator has not labeled or skipped: served for a second label."""
    if overlap_share <= 0:
        return None
    annotator_id = _annotator_row_id(project, annotator)
    row = project.conn.execute(
        """SELECT c.id FROM comparisons c
           WHERE c.label_count = 1 AND c.queue_key < ? AND NOT EXISTS (
               SELECT 1 FROM labels l WHERE l.comparison_id = c.id AND l.annotator_id = ?)
           ORDER BY c.label_count, c.queue_key LIMIT 1""",
        (overlap_threshold(overlap_share), annotator_id),
    ).fetchone()
    return row[0] if row else None


def next_in_front(project: Project, annotator: str, front: Sequence[int]) -> int | None:
    """The first comparison of ``front`` (an order held in memory, e.g. active learning's) that
    the default queue would also serve: unlabeled by anyone, not labeled or skipped by this
    annotator, not in an import still running. Checked a chunk at a time, in one query each:
    the front's head is labeled as work goes on, so the first chunk nearly always answers."""
    annotator_id = _annotator_row_id(project, annotator)
    ids = list(front)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        eligible = {row[0] for row in project.conn.execute(
            f"""SELECT c.id FROM comparisons c
                WHERE c.id IN ({", ".join("?" * len(chunk))}) AND c.label_count = 0 AND NOT EXISTS (
                    SELECT 1 FROM labels l WHERE l.comparison_id = c.id AND l.annotator_id = ?)
                  AND coalesce(c.import_id, 0) NOT IN (SELECT id FROM imports WHERE status = 'running')""",
            (*chunk, annotator_id))}
        for cid in chunk:
            if cid in eligible:
                return cid
    return None


def next_for_annotator(project: Project, annotator: str, order: str = "import",
                       overlap_share: float = 0.0, front: Sequence[int] | None = None) -> int | None:
    """The comparison to show next: unlabeled ones first, with a second label on a share of
    the ones one other annotator labeled mixed in (so agreement can be measured).

    ``front`` (optional) is an order provider's list of comparison ids served before the
    default order (active learning's most informative first); reviews and due second labels
    still come before it, and the default order follows once it is used up."""
    if order not in QUEUE_ORDERS:
        raise ProjectError(f"unknown queue order {order!r}; use 'import' or 'random'")
    from rmstudio.core.labeling.relabel import next_for_review

    review = next_for_review(project, annotator)  # pairs sent back for a second look come first
    if review is not None:
        return review
    if overlap_share > 0:
        annotator_id = _annotator_row_id(project, annotator)
        if _overlap_due(project, annotator_id, overlap_share):
            found = next_overlap(project, annotator, overlap_share)
            if found is not None:
                return found
    found = next_in_front(project, annotator, front) if front else None
    if found is None:
        found = project.next_unlabeled(annotator, order=order)
    if found is None and overlap_share > 0:
        found = next_overlap(project, annotator, overlap_share)  # nothing new left: overlap only
    return found


@dataclass(frozen=True)
class BetterResponse:
    """What saving a written response stored, so the page can say why its counters moved."""

    response_id: int
    # New pairs, written vs A and written vs B, each labeled "written is better" (fewer than 2
    # only when the same text was written for this prompt before and its pair already exists).
    comparisons_added: int


def add_better_response(project: Project, comparison_id: int, annotator: str, text: str,
                        note: str | None = None) -> BetterResponse:
    """Both responses were bad and the annotator wrote a better one: store it as a response
    (model 'human:<annotator>'), compare it with A and with B (labeled as preferred by this
    annotator) and label the original pair both_bad. One transaction: all of it or nothing."""
    text = (text or "").strip()
    if not text:
        raise ProjectError("the better response is empty")
    comparison = project.comparison(comparison_id)
    project.annotator_id(annotator)  # create before the transaction (it commits on its own)
    added = 0
    with project.write():
        prompt_hash = project.conn.execute("SELECT content_hash FROM prompts WHERE id = ?",
                                           (comparison.prompt_id,)).fetchone()[0]
        hashes = dict(project.conn.execute(
            "SELECT id, content_hash FROM responses WHERE id IN (?, ?)",
            (comparison.response_a_id, comparison.response_b_id)).fetchall())
        conversational = comparison.response_a.messages is not None
        written = Text(text, (Message("assistant", text),) if conversational else None)
        writer = ProjectWriter(project)
        new_id, new_hash, _added = writer.response(comparison.prompt_id, written,
                                                   model=f"human:{annotator}")
        if new_id in hashes:
            raise ProjectError("the better response is the same as one of the two shown")
        for other_id in (comparison.response_a_id, comparison.response_b_id):
            cid, pair_added, flipped = writer.comparison(
                comparison.prompt_id, prompt_hash, (new_id, new_hash), (other_id, hashes[other_id]))
            added += bool(pair_added)
            project.set_label(cid, annotator, flip_if("a", flipped))
        project.set_label(comparison_id, annotator, "both_bad", note=note)
    return BetterResponse(new_id, added)


def progress(project: Project, annotator: str, now: datetime | None = None) -> dict:
    """Numbers for the progress line: how much is labeled, by this annotator, how fast, and
    how long the rest will take at that pace.

    Every count leaves skips out, as ``label_count`` does: a skipped pair stays in the queue, so
    counting it under "you" but not under "labeled" made the two numbers move differently."""
    now = now or datetime.now(timezone.utc)
    conn = project.conn
    total = conn.execute("SELECT count(*) FROM comparisons").fetchone()[0]
    labeled = conn.execute("SELECT count(*) FROM comparisons WHERE label_count > 0").fetchone()[0]
    annotator_id = _annotator_row_id(project, annotator)
    mine = conn.execute("SELECT count(*) FROM labels WHERE annotator_id = ? AND choice <> 'skip'",
                        (annotator_id,)).fetchone()[0]
    hour_ago = (now - timedelta(hours=1)).isoformat(timespec="microseconds")
    last_hour, first = conn.execute(
        "SELECT count(*), min(created_at) FROM labels "
        "WHERE annotator_id = ? AND created_at >= ? AND choice <> 'skip'",
        (annotator_id, hour_ago)).fetchone()
    rate = 0.0
    if last_hour:
        # Rate over the span actually worked this hour (at least a minute, so that the first
        # two labels do not claim thousands per hour).
        span = (now - datetime.fromisoformat(first)).total_seconds()
        rate = last_hour * 3600.0 / max(span, 60.0)
    remaining = total - labeled
    eta = remaining * 3600.0 / rate if rate > 0 else None
    return {"total": total, "labeled": labeled, "mine": mine, "last_hour": last_hour,
            "rate_per_hour": rate, "remaining": remaining, "eta_seconds": eta, "at": utc_now()}
