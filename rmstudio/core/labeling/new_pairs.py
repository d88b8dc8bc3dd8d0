"""New comparisons made from texts the app produced: two candidates from the Score playground,
a policy's output before and after optimisation. They join the label queue like imported
pairs, deduplicated by content, with the model column saying where each response came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmstudio.core.data.records import Text
from rmstudio.core.errors import RmstudioError
from rmstudio.core.store.inserts import ProjectWriter
from rmstudio.core.store.project import Project


@dataclass(frozen=True)
class NewPair:
    prompt: str
    response_a: str
    response_b: str
    model_a: str = "typed"
    """Who wrote response A ('typed', 'policy step 40', a model's name)."""
    model_b: str = "typed"


def add_pairs(project: Project, pairs: list[NewPair]) -> dict:
    """Add ``pairs`` to the label queue in one transaction. Returns the comparison ids (one per
    pair, an existing one where the same pair is already there) and how many are new. Raises
    RmstudioError, adding nothing, when a pair has an empty prompt or two equal responses."""
    for i, pair in enumerate(pairs, 1):
        if not pair.prompt.strip():
            raise RmstudioError(f"pair {i}: the prompt is empty")
        if not pair.response_a.strip() or not pair.response_b.strip():
            raise RmstudioError(f"pair {i}: a response is empty")
        if pair.response_a.strip() == pair.response_b.strip():
            raise RmstudioError(f"pair {i}: the two responses are the same text")
    ids, added = [], 0
    with project.write():
        writer = ProjectWriter(project)
        for pair in pairs:
            prompt_id, prompt_hash, _ = writer.prompt(Text(pair.prompt))
            a = writer.response(prompt_id, Text(pair.response_a), pair.model_a)[:2]
            b = writer.response(prompt_id, Text(pair.response_b), pair.model_b)[:2]
            comparison_id, new, _flipped = writer.comparison(prompt_id, prompt_hash, a, b)
            ids.append(comparison_id)
            added += new
    return {"comparison_ids": ids, "added": added}
