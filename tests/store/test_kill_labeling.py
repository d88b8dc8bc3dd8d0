"""kill -9 while labeling: every label the store acknowledged is there afterwards.

A child process labels as the app does (a window connection and a writer connection) and
prints each comparison id after ``set_label`` returned; the parent SIGKILLs it at a random
moment, sometimes while another process reads the same file. CI runs a few rounds; the long
run (``RMSTUDIO_SLOW=1 pytest tests/slow``) runs 1,000."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from rmstudio.core.store.project import Project
from builders import add_pairs

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent

LABELER = textwrap.dedent("""
    import random, sys
    from rmstudio.core.store.project import Project
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    window = Project.open(path)                # the GUI holds one connection...
    writer = Project.open(path)                # ...and its writer thread another
    ids = [r[0] for r in window.conn.execute("SELECT id FROM comparisons")]
    print("ready", flush=True)
    while True:
        cid = rng.choice(ids)
        choice = rng.choice(["a", "b", "tie", "both_bad"])
        print(f"try {cid} ann{seed % 3} {choice}", flush=True)  # may be committed, unacknowledged
        writer.set_label(cid, f"ann{seed % 3}", choice)
        print(f"ack {cid} ann{seed % 3} {choice}", flush=True)
""")


def kill_rounds(path: Path, rounds: int, seed: int = 0) -> int:
    """Run ``rounds`` label-then-kill rounds on ``path``; returns the labels acknowledged.
    Asserts after every round that each acknowledged label is stored as acknowledged."""
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    expected: dict[tuple[int, str], str] = {}
    acknowledged = 0
    for round_ in range(rounds):
        child = subprocess.Popen([sys.executable, "-c", LABELER, str(path), str(seed * 100_000 + round_)],
                                 stdout=subprocess.PIPE, text=True, env=env)
        assert child.stdout.readline().strip() == "ready"
        reader = None
        if round_ % 3 == 1:  # another program reads the project meanwhile (the lost-WAL bug)
            reader = subprocess.Popen([sys.executable, "-m", "rmstudio", "stats", str(path)],
                                      stdout=subprocess.DEVNULL, env=env)
        tried = None

        def take(line: str) -> None:
            nonlocal tried, acknowledged
            word, cid, annotator, choice = line.split()
            if word == "try":
                tried = ((int(cid), annotator), choice)
            else:
                expected[(int(cid), annotator)] = choice
                acknowledged += 1
                tried = None

        deadline = time.monotonic() + rng.uniform(0.02, 0.4)
        while time.monotonic() < deadline:
            take(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
        for line in child.stdout:  # lines the child wrote before it died count too
            take(line)
        child.wait()
        if reader is not None:
            assert reader.wait(60) == 0
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = {(cid, name): choice for cid, name, choice in conn.execute(
                "SELECT l.comparison_id, a.name, l.choice FROM labels l "
                "JOIN annotators a ON a.id = l.annotator_id")}
            dupes = conn.execute("SELECT count(*) FROM (SELECT comparison_id, annotator_id "
                                 "FROM labels GROUP BY 1, 2 HAVING count(*) > 1)").fetchone()[0]
        finally:
            conn.close()
        assert dupes == 0
        if tried is not None and stored.get(tried[0]) == tried[1]:
            expected[tried[0]] = tried[1]  # committed just before the kill, never acknowledged
        missing = {k: v for k, v in expected.items() if stored.get(k) != v}
        assert not missing, f"round {round_}: acknowledged labels lost or changed: {missing}"
    return acknowledged


def make_project(path: Path, pairs: int = 50) -> Path:
    with Project.create(path) as project:
        add_pairs(project, pairs)
    return path


def test_kill_9_while_labeling_loses_no_acknowledged_label(tmp_path):
    path = make_project(tmp_path / "p.rmstudio")
    assert kill_rounds(path, rounds=4) > 0
