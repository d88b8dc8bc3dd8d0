"""Reading labels for the Browse table: pages of label ids newest first, and a block of rows.

The table shows a million labels at once by holding only their ids: ``label_ids`` reads a page
of them (keyset paging, so page 2,000 costs what page 1 does), and ``label_rows`` the columns of
the few rows on screen. Filters are an annotator, a stored choice and a text search over the
note, the prompt and both responses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rmstudio.core.store.project import Project

PROMPT_CHARS = 400  # of a prompt read for a row: its first line and a tooltip, not the whole text


def like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its ``%``, ``_`` and ``\\`` escaped
    (for ``LIKE ? ESCAPE '\\'``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class LabelFilter:
    """Which labels the Browse table shows: all of them by default. ``search`` is a plain,
    case-insensitive (for ASCII) substring of the note, the prompt or either response."""

    annotator_id: int | None = None
    choice: str | None = None
    search: str = ""
    _clauses: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _params: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        clauses, params = [], []
        if self.annotator_id is not None:
            clauses.append("l.annotator_id = ?")
            params.append(self.annotator_id)
        if self.choice:
            clauses.append("l.choice = ?")
            params.append(self.choice)
        if self.search.strip():
            # A scan over the texts; the LIMIT of each page keeps the first page quick.
            pattern = like_pattern(self.search.strip())
            clauses.append(
                r"""(l.note LIKE ? ESCAPE '\' OR EXISTS (
                        SELECT 1 FROM comparisons c JOIN prompts p ON p.id = c.prompt_id
                        JOIN responses ra ON ra.id = c.response_a_id
                        JOIN responses rb ON rb.id = c.response_b_id
                        WHERE c.id = l.comparison_id AND (p.text LIKE ? ESCAPE '\'
                          OR ra.text LIKE ? ESCAPE '\' OR rb.text LIKE ? ESCAPE '\')))""")
            params += [pattern] * 4
        object.__setattr__(self, "_clauses", tuple(clauses))
        object.__setattr__(self, "_params", tuple(params))


def label_ids(project: Project, label_filter: LabelFilter | None = None,
              before_id: int | None = None, limit: int = 500) -> list[int]:
    """Up to ``limit`` ids of the labels ``label_filter`` lets through, newest (highest id)
    first. The next page: pass the last id read as ``before_id``; a page shorter than
    ``limit`` is the last one."""
    label_filter = label_filter or LabelFilter()
    where = list(label_filter._clauses)
    params = list(label_filter._params)
    if before_id is not None:  # keyset paging: continue below the last id shown
        where.append("l.id < ?")
        params.append(before_id)
    sql = ("SELECT l.id FROM labels l" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY l.id DESC LIMIT ?")
    return [r[0] for r in project.conn.execute(sql, (*params, limit))]


def label_rows(project: Project, ids: list[int]) -> dict[int, tuple]:
    """The Browse columns of these labels, by label id: ``(label id, comparison id, the
    prompt's first PROMPT_CHARS characters, annotator name, choice, strength, note,
    created_at)``. A label deleted meanwhile is missing from the result."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {r[0]: tuple(r) for r in project.conn.execute(
        f"""SELECT l.id, l.comparison_id, substr(p.text, 1, {PROMPT_CHARS}), a.name, l.choice,
                   l.strength, l.note, l.created_at
            FROM labels l JOIN annotators a ON a.id = l.annotator_id
            JOIN comparisons c ON c.id = l.comparison_id JOIN prompts p ON p.id = c.prompt_id
            WHERE l.id IN ({marks})""", ids)}
