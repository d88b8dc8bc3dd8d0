"""Rankings: several responses to one prompt put in order by one annotator.

A saved ranking is stored twice over, in one transaction: as a ``rankings`` row with one
``ranking_entries`` row per response (score = -position, higher is better), and as the pairwise
labels it implies (every earlier response beats every later one), which is what reward model
training reads. Saving again replaces the annotator's earlier ranking of that prompt; the
pairwise labels are overwritten through ``Project.set_label``, so their history is kept.
"""

from __future__ import annotations

from itertools import combinations

from rmstudio.core.errors import ProjectError
from rmstudio.core.store.project import Project, utc_now
from rmstudio.core.store.inserts import ProjectWriter


def prompts_with_many_responses(project: Project) -> list[dict]:
    """Prompts with more than two responses: ``{id, text, responses}``, in import order."""
    return [dict(r) for r in project.conn.execute(
        """SELECT p.id, p.text, count(r.id) AS responses
           FROM prompts p JOIN responses r ON r.prompt_id = p.id
           GROUP BY p.id HAVING count(r.id) > 2 ORDER BY p.id"""
    )]


def prompt_responses(project: Project, prompt_id: int) -> list[dict]:
    """The prompt's responses ``{id, text, model}``, in the order they were added."""
    return [dict(r) for r in project.conn.execute(
        "SELECT id, text, model FROM responses WHERE prompt_id = ? ORDER BY id", (prompt_id,)
    )]


def ranking_order(project: Project, prompt_id: int, annotator: str) -> list[int] | None:
    """The annotator's saved order for this prompt, best first, or None."""
    rows = project.conn.execute(
        """SELECT e.response_id FROM rankings k JOIN annotators a ON a.id = k.annotator_id
           JOIN ranking_entries e ON e.ranking_id = k.id
           WHERE k.prompt_id = ? AND a.name = ? ORDER BY e.score DESC, e.response_id""",
        (prompt_id, annotator),
    ).fetchall()
    return [r[0] for r in rows] or None


def save_ranking(project: Project, prompt_id: int, annotator: str,
                 ordered_response_ids: list[int]) -> int:
    """Store the order (best first) and its implied pairwise labels; returns the ranking id."""
    ordered = list(ordered_response_ids)
    if len(ordered) < 2:
        raise ProjectError("a ranking needs at least two responses")
    if len(set(ordered)) != len(ordered):
        raise ProjectError("a response appears twice in the ranking")
    prompt = project.conn.execute(
        "SELECT content_hash FROM prompts WHERE id = ?", (prompt_id,)).fetchone()
    if prompt is None:
        raise ProjectError(f"no prompt {prompt_id} in {project.path.name}")
    marks = ",".join("?" * len(ordered))
    hashes = dict(project.conn.execute(
        f"SELECT id, content_hash FROM responses WHERE prompt_id = ? AND id IN ({marks})",
        (prompt_id, *ordered),
    ).fetchall())
    missing = [rid for rid in ordered if rid not in hashes]
    if missing:
        raise ProjectError(f"response(s) {missing} are not responses to prompt {prompt_id}")
    with project.write():
        annotator_id = project.annotator_id(annotator)
        # ranking_entries go with it (ON DELETE CASCADE).
        project.conn.execute("DELETE FROM rankings WHERE prompt_id = ? AND annotator_id = ?",
                             (prompt_id, annotator_id))
        ranking_id = project.conn.execute(
            "INSERT INTO rankings (prompt_id, annotator_id, created_at) VALUES (?, ?, ?)",
            (prompt_id, annotator_id, utc_now()),
        ).lastrowid
        project.conn.executemany(
            "INSERT INTO ranking_entries (ranking_id, response_id, score) VALUES (?, ?, ?)",
            [(ranking_id, rid, -float(position)) for position, rid in enumerate(ordered)],
        )
        writer = ProjectWriter(project)
        for better, worse in combinations(ordered, 2):
            comparison_id, _added, flipped = writer.comparison(
                prompt_id, prompt["content_hash"], (better, hashes[better]), (worse, hashes[worse]))
            project.set_label(comparison_id, annotator, "b" if flipped else "a")
    return ranking_id
