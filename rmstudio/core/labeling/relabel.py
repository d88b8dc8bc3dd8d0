"""Send pairs back for another look: the review queue the label queue serves first.

A reward model's most confident mistakes are often label mistakes. Deleting those labels would
lose the current state for training, so instead the pairs are *marked for review*: their ids go
into the project setting ``label.review_queue`` (no schema change), each entry with the time it
was queued and, optionally, the annotators who should look again.

An entry is pending for an annotator until that annotator labels the pair again after it was
queued (read from ``label_events``, so nothing has to remember to tick it off). An entry that
names no annotators is done once any human annotator has labeled it again.
"""

from __future__ import annotations

from rmstudio.core.errors import ProjectError
from rmstudio.core.store.project import Project, utc_now

REVIEW_KEY = "label.review_queue"


def send_to_relabel(project: Project, comparison_ids, annotator_names: list[str] | None = None) -> int:
    """Queue these comparisons for review (first in the label queue); returns how many were added.

    ``annotator_names``: who should look again (None: whichever human annotator comes next).
    A comparison already pending in the queue is re-queued with the new time and annotators.
    """
    ids = list(dict.fromkeys(int(c) for c in comparison_ids))
    if not ids:
        return 0
    known = {row[0] for row in project.conn.execute(
        f"SELECT id FROM comparisons WHERE id IN ({', '.join('?' * len(ids))})", ids)}
    unknown = [c for c in ids if c not in known]
    if unknown:
        raise ProjectError(f"no comparison with id {', '.join(map(str, unknown))} in {project.path.name}")
    names = sorted({n.strip() for n in annotator_names if n and n.strip()}) if annotator_names else None
    now = utc_now()
    queue = [e for e in _entries(project) if e["comparison_id"] not in set(ids)]
    queue += [{"comparison_id": c, "annotators": names, "queued_at": now} for c in ids]
    project.set_setting(REVIEW_KEY, queue)
    return len(ids)


def review_queue(project: Project, annotator: str | None = None) -> list[int]:
    """Comparison ids still waiting for review, oldest first; for ``annotator`` only when named."""
    pending = []
    for entry in _entries(project):
        if annotator is not None and entry["annotators"] is not None and annotator not in entry["annotators"]:
            continue
        if not _reviewed(project, entry, annotator):
            pending.append(entry["comparison_id"])
    return pending


def next_for_review(project: Project, annotator: str) -> int | None:
    """The first pair this annotator should look at again, or None (the label queue goes on)."""
    pending = review_queue(project, annotator)
    return pending[0] if pending else None


def clear_review_queue(project: Project) -> None:
    project.set_setting(REVIEW_KEY, [])


def _entries(project: Project) -> list[dict]:
    raw = project.setting(REVIEW_KEY, []) or []
    entries = []
    for item in raw:  # plain ids are accepted too (a hand-edited or older setting)
        entry = {"comparison_id": int(item), "annotators": None, "queued_at": ""} if isinstance(item, int) \
            else {"comparison_id": int(item["comparison_id"]), "annotators": item.get("annotators"),
                  "queued_at": item.get("queued_at", "")}
        entries.append(entry)
    return entries


def _reviewed(project: Project, entry: dict, annotator: str | None) -> bool:
    """Labeled again after it was queued: by ``annotator`` (any named one / any human if None)."""
    if annotator is not None:
        names = [annotator]
    else:
        names = entry["annotators"]
    sql = ("SELECT 1 FROM label_events e JOIN annotators a ON a.id = e.annotator_id "
           "WHERE e.comparison_id = ? AND e.at > ? AND e.after IS NOT NULL AND e.undone = 0 ")
    params: list = [entry["comparison_id"], entry["queued_at"]]
    if names is None or (annotator is not None and entry["annotators"] is None):
        # Anyone's new human label closes an entry that names nobody.
        sql += "AND a.kind = 'human'"
    else:
        if annotator is None:
            # Named annotators: done only when every one of them has looked again.
            return all(_reviewed(project, entry, name) for name in names)
        sql += "AND a.name = ?"
        params.append(annotator)
    return project.conn.execute(sql + " LIMIT 1", params).fetchone() is not None
