"""Small projects for tests: pairs written straight into the store, and a learnable data set."""

from __future__ import annotations

import json
import random
from pathlib import Path

from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project
from rmstudio.core.data.records import Text
from rmstudio.core.store.inserts import ProjectWriter

WORDS = "the sea wind poem egg water minutes sleep tips night fox dog capital paris".split()


def add_pairs(project, n: int, prompt: str = "prompt {i}", a: str = "answer A to {i}",
              b: str = "answer B to {i}") -> list[int]:
    """``n`` unlabeled comparisons; the templates get the pair number as ``{i}``."""
    ids = []
    with project.write():
        writer = ProjectWriter(project)
        for i in range(n):
            pid, phash, _ = writer.prompt(Text(prompt.format(i=i)))
            ra = writer.response(pid, Text(a.format(i=i)), "m1")
            rb = writer.response(pid, Text(b.format(i=i)), "m2")
            ids.append(writer.comparison(pid, phash, ra[:2], rb[:2])[0])
    return ids


def project_from_rows(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    """``rows`` written as ``name``.jsonl and imported into a new ``name``.rmstudio."""
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = tmp_path / f"{name}.rmstudio"
    with Project.create(path) as project:
        import_files(project, [data])
    return path


def synthetic_project(tmp_path: Path, n: int = 120, seed: int = 0, name: str = "syn") -> Path:
    """A project whose chosen responses mention 'Paris' and rejected ones do not: a preference
    any reward model can learn from token identity, even on a tiny random backbone."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        filler = " ".join(rng.choice(WORDS) for _ in range(6))
        rows.append({"prompt": f"question {i}: {filler}?",
                     "chosen": f"{filler} Paris Paris capital", "rejected": f"{filler} dog fox night"})
    return project_from_rows(tmp_path, name, rows)


def rated_project(tmp_path: Path, n: int = 60, seed: int = 0, name: str = "rated") -> Path:
    """A project of rankings with ratings: each prompt has three responses of four words, rated
    by how many of their words are 'Paris' (0 to 4, no two alike), as an UltraFeedback-style
    file gives them."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        responses, ratings = [], []
        for count in rng.sample(range(5), 3):  # distinct counts: distinct responses
            words = ["Paris"] * count + [rng.choice(WORDS[:-2]) for _ in range(4 - count)]
            rng.shuffle(words)
            responses.append(" ".join(words))
            ratings.append(count)
        rows.append({"prompt": f"question {i}?", "responses": responses, "ratings": ratings})
    return project_from_rows(tmp_path, name, rows)
