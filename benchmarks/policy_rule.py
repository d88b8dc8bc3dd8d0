"""The benchmark policy.py's rule and its project: brevity as a checkable preference (no humans),
the shipped prompts it is tried on, and the project labeled by that rule.

``rule_reward`` is the rule as a TRL reward function; policy.py imports it, so
``policy:rule_reward`` (and ``policy_rule:rule_reward``) name it for PolicyConfig.reward.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

MIN_WORDS = 3
"""An answer shorter than this scores as the worst: brevity, not silence."""
EMPTY_SCORE = -1000.0


# -- the rule --------------------------------------------------------------------------------

def words(text: str) -> int:
    return len(re.findall(r"\S+", text))


def rule_score(text: str) -> float:
    """Brevity: minus the word count (fewer words is better), but fewer than MIN_WORDS is worst."""
    n = words(text)
    return -float(n) if n >= MIN_WORDS else EMPTY_SCORE


def rule_reward(prompts, completions, **kwargs) -> list[float]:
    """``rule_score`` as a TRL reward function (``policy:rule_reward``; completions as strings or
    chat turns)."""
    from rmstudio.core.policy.rewards import as_text

    out = []
    for c in completions:
        if isinstance(c, str):
            text = c
        else:
            text = c[-1]["content"] if c and isinstance(c, list) else as_text(c).text
        out.append(rule_score(text))
    return out


# -- the project -----------------------------------------------------------------------------

def shipped_prompts(limit: int) -> list[str]:
    """The everyday demo prompts, then first user turns of short HH-RLHF dialogues."""
    from rmstudio.core.data.resources import resource

    prompts = [json.loads(line)["prompt"] for line in
               resource("demo/everyday.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    with gzip.open(resource("examples/hh-rlhf-harmless-base-test.jsonl.gz"), "rt", encoding="utf-8") as fh:
        for line in fh:
            if len(prompts) >= limit:
                break
            text = json.loads(line)["chosen"]
            turn = text.split("\n\nHuman: ", 1)[-1].split("\n\nAssistant:", 1)[0].strip()
            if 10 <= len(turn) <= 160 and turn not in prompts:
                prompts.append(turn)
    return prompts[:limit]


def make_project(path: Path, prompts: list[str]) -> None:
    from rmstudio.core.data.importer import import_files
    from rmstudio.core.store.project import Project

    source = path.with_suffix(".prompts.jsonl")
    source.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    with Project.create(path) as project:
        import_files(project, [source])


def split(path: Path, fraction: float, seed: int):
    from rmstudio.core.policy import data
    from rmstudio.core.store.project import Project

    with Project.open(path) as project:
        return data.split_prompts(data.read_prompts(project), fraction, seed)


def label_by_rule(path: Path) -> dict:
    """Label every comparison by ``rule_score`` as annotator 'rule' (equal scores: a tie)."""
    from rmstudio.core.store.project import Project

    counts = {"a": 0, "b": 0, "tie": 0}
    with Project.open(path) as project:
        rows = project.conn.execute(
            """SELECT c.id, ra.text, rb.text FROM comparisons c
               JOIN responses ra ON ra.id = c.response_a_id
               JOIN responses rb ON rb.id = c.response_b_id""").fetchall()
        for cid, a, b in rows:
            sa, sb = rule_score(a), rule_score(b)
            choice = "a" if sa > sb else "b" if sb > sa else "tie"
            project.set_label(cid, "rule", choice)
            counts[choice] += 1
    return counts
