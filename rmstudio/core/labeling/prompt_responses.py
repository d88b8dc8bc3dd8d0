"""A project's prompts with their responses, for the Score page's "From project…" list.

``find_prompts`` reads a short list (a search narrows it, the newest prompts are not favoured:
import order, as everywhere else) of the prompts that have at least two responses, so any
chosen prompt gives something to rank; ``prompt_with_responses`` reads one prompt and its
responses. Both read through the caller's connection and never write.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmstudio.core.errors import ProjectError
from rmstudio.core.labeling.browse import like_pattern
from rmstudio.core.store.project import Project

LIST_LIMIT = 200
"""Prompts listed at once: the list is for picking one, a search finds the rest."""
MAX_RESPONSES = 16
"""Responses read for one prompt (the Score page's candidates, like best-of-n's n)."""


@dataclass(frozen=True)
class PromptChoice:
    prompt_id: int
    text: str
    responses: int


def find_prompts(project: Project, search: str = "", limit: int = LIST_LIMIT) -> list[PromptChoice]:
    """Up to ``limit`` prompts with two or more responses, in import order; ``search`` is a
    case-insensitive (for ASCII) substring of the prompt."""
    where, params = "", []
    if search.strip():
        where = "WHERE p.text LIKE ? ESCAPE '\\'"
        params.append(like_pattern(search.strip()))
    # Walks prompts in id order and stops at `limit` matches (the responses' unique index on
    # prompt_id counts each prompt's responses), so a first screen costs little on a big project.
    rows = project.conn.execute(
        f"SELECT p.id, p.text, COUNT(r.id) AS n FROM prompts p JOIN responses r ON r.prompt_id = p.id "
        f"{where} GROUP BY p.id HAVING n >= 2 ORDER BY p.id LIMIT ?", (*params, int(limit)))
    return [PromptChoice(row[0], row[1], row[2]) for row in rows]


def prompt_with_responses(project: Project, prompt_id: int,
                          limit: int = MAX_RESPONSES) -> tuple[str, list[str]]:
    """The prompt's text and up to ``limit`` of its responses, oldest first; ProjectError when
    the prompt is gone (deleted since the list was read)."""
    text = project.prompt_text(prompt_id)
    rows = project.conn.execute("SELECT text FROM responses WHERE prompt_id = ? ORDER BY id LIMIT ?",
                                (prompt_id, int(limit)))
    responses = [row[0] for row in rows]
    if not responses:
        raise ProjectError(f"prompt #{prompt_id} has no responses")
    return text, responses
