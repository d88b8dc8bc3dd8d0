"""A generation process killed (SIGKILL) part-way: nothing half-done, finished work kept.

"Nothing half-done" means: a prompt's generated responses and every pair among them are one
transaction, so after a kill each prompt either has all of them (responses, each in a comparison
with its prompt) or none (it stays in ``prompts_without_pairs`` and the next ``generate`` does
it). The one case where a prompt ends with a response that no comparison uses is a finished
prompt whose samples were all identical even after the resample: one distinct text, no pair.
The generation run says 'interrupted' once the project is opened again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import write_jsonl
from tiny_models import save_tiny_model

from rmstudio.core.models.collect import prompts_without_pairs
from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project
from rmstudio.core.runs.store import list_runs

PROMPTS = 30
REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from rmstudio.core.store import inserts as writer
    from rmstudio.core.models.collect import generate_pairs
    from rmstudio.core.models.generation import GenerationConfig

    project, model, mode = sys.argv[1], sys.argv[2], sys.argv[3]

    class Slow:
        # A prompt takes milliseconds on a tiny model: slow the run down so the test can kill it
        # while it is under way (the GUI's sink is where a real run spends no time at all).
        def log(self, step, metrics):
            if step:
                time.sleep(0.15)

        def should_stop(self):
            return False

    if mode == "mid-prompt":
        # Die inside the transaction of the 3rd prompt that makes a pair: its responses are
        # inserted, its comparison is about to be.
        real, seen = writer.ProjectWriter.comparison, []

        def comparison(self, prompt_id, *args):
            if prompt_id not in seen:
                seen.append(prompt_id)
            if len(seen) == 3:
                sys.stdout.write(f"dying in prompt {prompt_id}\\n")
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, prompt_id, *args)

        writer.ProjectWriter.comparison = comparison

    config = GenerationConfig(max_new_tokens=6, batch_size=2, seed=3)  # one prompt per batch
    generate_pairs(project, None, model=model, config=config, sink=Slow())
    sys.stdout.write("finished\\n")
""")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def prompts_project(tmp_path):
    path = tmp_path / "gen.rmstudio"
    rows = [{"prompt": f"Question number {i}: what is {i} plus {i}?"} for i in range(PROMPTS)]
    with Project.create(path) as project:
        import_files(project, [write_jsonl(tmp_path / "p.jsonl", rows)])
    return path


def _start(tmp_path, project_path, model_dir, mode) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(script), str(project_path), str(model_dir), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def _paired_prompts(path: Path) -> set[int]:
    """Prompts with a committed comparison, read as another program would: read-only, no locks kept."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return {r[0] for r in conn.execute("SELECT DISTINCT prompt_id FROM comparisons")}
    except sqlite3.OperationalError:  # busy or a schema not readable yet: try again
        return set()
    finally:
        conn.close()


def _assert_nothing_half_done(project: Project) -> dict[int, int]:
    """The project's invariants after a kill; returns {prompt_id: comparisons}."""
    conn = project.conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # Every comparison has both its responses, of its own prompt, and the prompt itself.
    broken = conn.execute("""
        SELECT c.id FROM comparisons c
        LEFT JOIN prompts p ON p.id = c.prompt_id
        LEFT JOIN responses a ON a.id = c.response_a_id
        LEFT JOIN responses b ON b.id = c.response_b_id
        WHERE p.id IS NULL OR a.id IS NULL OR b.id IS NULL
           OR a.prompt_id <> c.prompt_id OR b.prompt_id <> c.prompt_id""").fetchall()
    assert broken == []
    # A prompt with generated responses has every pair of them as a comparison ...
    for prompt_id, responses, pairs in conn.execute("""
            SELECT r.prompt_id, count(*),
                   (SELECT count(*) FROM comparisons c WHERE c.prompt_id = r.prompt_id)
            FROM responses r GROUP BY r.prompt_id"""):
        assert pairs == responses * (responses - 1) // 2, (prompt_id, responses, pairs)
    # ... so a response outside every comparison is a finished prompt's only distinct sample.
    lone = conn.execute("""
        SELECT r.prompt_id, (SELECT count(*) FROM responses o WHERE o.prompt_id = r.prompt_id)
        FROM responses r WHERE NOT EXISTS (SELECT 1 FROM comparisons c
                                           WHERE r.id IN (c.response_a_id, c.response_b_id))""").fetchall()
    assert all(count == 1 for _, count in lone), lone
    return dict(conn.execute("SELECT prompt_id, count(*) FROM comparisons GROUP BY prompt_id").fetchall())


def _assert_run_interrupted(project: Project, pid: int) -> None:
    [run] = list_runs(project, "generate")
    assert run["status"] == "interrupted", run
    assert f"pid {pid}" in run["error"]


def test_a_generation_killed_part_way_keeps_finished_prompts_and_nothing_half_done(
        tmp_path, prompts_project, tiny_dir):
    child = _start(tmp_path, prompts_project, tiny_dir, "run")
    try:
        deadline = time.monotonic() + 120
        paired: set[int] = set()
        while len(paired) < 3:
            assert child.poll() is None, f"generation ended before the kill: {child.communicate()}"
            assert time.monotonic() < deadline, "no prompt was committed within 120 s"
            time.sleep(0.02)
            paired = _paired_prompts(prompts_project)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    assert "finished" not in out

    with Project.open(prompts_project) as project:
        pairs = _assert_nothing_half_done(project)
        assert paired <= set(pairs)  # committed before the kill: still there, with their pairs
        assert len(pairs) < PROMPTS  # the kill did cut the run short
        # the prompts not done are exactly what the next `generate` picks up
        assert set(prompts_without_pairs(project)) == (
            {r[0] for r in project.conn.execute("SELECT id FROM prompts")} - set(pairs))
        _assert_run_interrupted(project, child.pid)


def test_a_kill_inside_a_prompts_commit_leaves_none_of_that_prompt(tmp_path, prompts_project, tiny_dir):
    """Killed after a prompt's responses are inserted and before its comparison: the whole prompt
    is rolled back; the two prompts before it are kept."""
    child = _start(tmp_path, prompts_project, tiny_dir, "mid-prompt")
    out, err = child.communicate(timeout=180)
    assert child.returncode == -signal.SIGKILL, err
    assert "dying in prompt" in out, (out, err)
    dying = int(out.split("dying in prompt")[1].split()[0])

    with Project.open(prompts_project) as project:
        pairs = _assert_nothing_half_done(project)
        assert len(pairs) == 2 and dying not in pairs
        assert project.conn.execute("SELECT count(*) FROM responses WHERE prompt_id = ?",
                                    (dying,)).fetchone()[0] == 0
        assert dying in prompts_without_pairs(project)
        _assert_run_interrupted(project, child.pid)
