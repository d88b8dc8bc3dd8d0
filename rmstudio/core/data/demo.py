"""The ready-to-use demo projects that `make run` and the welcome screen open."""

from __future__ import annotations

from pathlib import Path

from rmstudio.core.data.importer import import_files
from rmstudio.core.paths import data_dir
from rmstudio.core.store.project import Project
from rmstudio.core.data.resources import resource

HH_WARNING = (
    "The HH-RLHF harmless data (Anthropic, MIT License) contains red-teaming conversations: "
    "requests for harmful, offensive or upsetting content, and answers to them. It exists to make "
    "models less harmful. Open it only if you are prepared to read such text."
)

DEMOS = {
    # name: (project file name, data files inside resources/)
    # 40 everyday prompts, a pair of responses for each from the embedded model
    # (scripts/make_demo.py), all 40 labeled by reading them (helpful, correct, concise; the
    # first 20 by a person, the last 20 by the engineer who added cross-validation, by the same
    # standard; a note says why where it is not obvious): 27 train (a, b or tie), 13 are both-bad.
    # A second round of 40 pairs (another seed, scripts/make_demo.py --round 2) ships unlabeled,
    # so the label queue has work for a newcomer.
    "everyday": ("demo-everyday.rmstudio", ["demo/everyday.jsonl", "demo/everyday-pairs.jsonl",
                                            "demo/everyday-labels.jsonl", "demo/everyday-pairs-2.jsonl"]),
    "hh-harmless": ("demo-hh-harmless.rmstudio", ["examples/hh-rlhf-harmless-base-test.jsonl.gz"]),
}


def demo_project_path(name: str = "everyday", folder: Path | None = None) -> Path:
    """Create the demo project on first use (importing its shipped data); return its path."""
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; choose one of {', '.join(DEMOS)}")
    filename, files = DEMOS[name]
    path = (folder or data_dir()) / filename
    if not path.exists():
        tmp = path.with_name(path.name + ".creating")
        for leftover in tmp.parent.glob(tmp.name + "*"):
            leftover.unlink()  # a creation that was interrupted earlier
        with Project.create(tmp) as project:
            import_files(project, [resource(f) for f in files])
            project.set_setting("demo", name)
            project.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            project.conn.execute("PRAGMA journal_mode = DELETE")  # fold the WAL in before the rename
        tmp.rename(path)
    return path
