"""A small labeled project whose preference is learnable from token identity (for UI tests)."""

from __future__ import annotations

import random

from conftest import write_jsonl

from rmstudio.core.importer import import_files
from rmstudio.core.project import Project

WORDS = "the sea wind poem egg water minutes sleep tips night fox dog capital paris".split()


def synthetic_project(tmp_path, n=120, seed=0, name="syn"):
    """Chosen responses mention 'Paris', rejected ones do not."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        filler = " ".join(rng.choice(WORDS) for _ in range(6))
        rows.append({"prompt": f"question {i}: {filler}?",
                     "chosen": f"{filler} Paris Paris capital", "rejected": f"{filler} dog fox night"})
    path = tmp_path / f"{name}.rmstudio"
    with Project.create(path) as project:
        import_files(project, [write_jsonl(tmp_path / f"{name}.jsonl", rows)])
    return path
