"""The project file survives other processes, damage and full disks (issue: reliability).

Each test here reproduces a failure that was seen, and fails without its fix."""

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rmstudio.core.store import file_guard
from rmstudio.core.errors import ProjectError
from rmstudio.core.store.filesystems import network_folder_kind
from rmstudio.core.store.integrity import DamagedProject
from rmstudio.core.store.project import Project
from builders import add_pairs

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def _labels(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT comparison_id, choice FROM labels ORDER BY comparison_id").fetchall()
    finally:
        conn.close()


def test_another_process_touching_the_project_loses_no_acknowledged_label(tmp_path):
    """The app holds two connections (window + writer thread); a CLI command opens and closes the
    file; more labels are saved; the app is killed. Every label set_label returned for is there.
    Before the fix, the second Project.open read the header with open()/close(), which dropped
    the first connection's locks: the CLI then deleted the WAL and later labels were lost."""
    path = tmp_path / "shared.rmstudio"
    done = _python("""
        import os, subprocess, sys
        from rmstudio.core.store.project import Project
        from builders import add_pairs
        path = sys.argv[1]
        window = Project.create(path)
        ids = add_pairs(window, 3)
        writer = Project.open(path)
        writer.set_label(ids[0], "ann", "a")
        cli = subprocess.run([sys.executable, "-m", "rmstudio", "stats", path], capture_output=True)
        assert cli.returncode == 0, cli.stderr
        writer.set_label(ids[1], "ann", "b")
        writer.set_label(ids[2], "ann", "a")
        print("acknowledged", flush=True)
        os._exit(9)  # killed: nothing is closed or checkpointed
    """, str(path))
    assert "acknowledged" in done.stdout, done.stderr
    assert [c for _, c in _labels(path)] == ["a", "b", "a"]


def test_a_plain_open_of_an_open_project_is_refused(tmp_path):
    path = tmp_path / "p.rmstudio"
    project = Project.create(path)
    for attempt in (lambda: open(path, "rb"), lambda: path.read_bytes(),
                    lambda: shutil.copy(path, tmp_path / "copy"),
                    lambda: os.open(str(path) + "-wal", os.O_RDONLY)):
        with pytest.raises(file_guard.ProjectFileInUse, match="drop SQLite's locks"):
            attempt()
    second = Project.open(path)  # SQLite's own connections are fine
    project.close()
    with pytest.raises(file_guard.ProjectFileInUse):
        open(path, "rb")  # the second connection still holds it
    second.close()
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"  # nothing open: allowed again


def _damage(path: Path, offset: int, data: bytes) -> bytes:
    """Write ``data`` at ``offset`` of a closed project; return the damaged bytes."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)
    return path.read_bytes()


def _closed_project(tmp_path, pairs=40) -> Path:
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        ids = add_pairs(project, pairs)
        for cid in ids[:10]:
            project.set_label(cid, "ann", "a")
    return path


@pytest.mark.parametrize("where", ["data page", "middle", "truncated"])
def test_a_damaged_file_is_refused_and_left_exactly_as_it_was(tmp_path, where):
    path = _closed_project(tmp_path)
    size = path.stat().st_size
    page = 4096
    if where == "truncated":
        with open(path, "r+b") as fh:
            fh.truncate(size - 3 * page)
        before = path.read_bytes()
    else:  # a whole page of garbage, at a page boundary
        offset = size - 2 * page if where == "data page" else (size // 2) // page * page
        before = _damage(path, offset, os.urandom(page))
    with pytest.raises(DamagedProject, match="damaged .*nothing was written"):
        Project.open(path)
    assert path.read_bytes() == before
    assert not Path(str(path) + "-wal").exists()  # not even switched to WAL


def test_empty_and_foreign_files_are_refused_unchanged(tmp_path):
    empty = tmp_path / "empty.rmstudio"
    empty.touch()
    with pytest.raises(DamagedProject, match="empty"):
        Project.open(empty)
    assert empty.stat().st_size == 0
    header = _closed_project(tmp_path)
    before = _damage(header, 0, b"Not SQLite here\x00")
    with pytest.raises(ProjectError, match="not an SQLite database"):
        Project.open(header)
    assert header.read_bytes() == before


def test_the_cli_says_damaged_in_one_line_and_exits_1(tmp_path):
    path = _closed_project(tmp_path)
    _damage(path, path.stat().st_size - 2 * 4096, os.urandom(4096))
    for args in (["stats", str(path)], ["export", str(path), str(tmp_path / "out.jsonl")]):
        run = subprocess.run([sys.executable, "-m", "rmstudio", *args], capture_output=True,
                             text=True, cwd=ROOT)
        assert run.returncode == 1
        assert run.stderr.count("\n") == 1 and "damaged" in run.stderr, run.stderr
    assert not (tmp_path / "out.jsonl").exists()


class _MalformedOnLabelWrite:
    """The project's connection, except that writing a label meets a garbage page."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, *args):
        if "INTO labels" in sql:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_damage_met_during_a_session_stops_every_later_write(project):
    ids = add_pairs(project, 2)
    real = project.conn
    project.conn = _MalformedOnLabelWrite(real)
    try:
        with pytest.raises(DamagedProject, match="damaged"):
            project.set_label(ids[0], "ann", "a")
    finally:
        project.conn = real
    assert project.damaged and not real.in_transaction
    with pytest.raises(DamagedProject):  # no further write is even tried, on any table
        project.set_setting("x", 1)
    assert real.execute("SELECT count(*) FROM labels").fetchone()[0] == 0
    assert real.execute("SELECT count(*) FROM settings WHERE key = 'x'").fetchone()[0] == 0


def test_a_full_disk_gives_one_clear_line_and_keeps_what_was_saved(project):
    ids = add_pairs(project, 3)
    project.set_label(ids[0], "ann", "a")
    pages = project.conn.execute("PRAGMA page_count").fetchone()[0]
    project.conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL
    note = "x" * 200_000  # needs new pages
    with pytest.raises(ProjectError, match="disk is full, so this change was not saved") as caught:
        project.set_label(ids[1], "ann", "b", note=note)
    assert "rollback" not in str(caught.value)
    assert not project.conn.in_transaction
    assert [tuple(r) for r in project.conn.execute("SELECT comparison_id, choice FROM labels")] == [(ids[0], "a")]
    project.conn.execute(f"PRAGMA max_page_count = {pages * 100}")  # space again: writes resume
    project.set_label(ids[1], "ann", "b")


def test_import_onto_a_full_disk_names_the_real_error(tmp_path):
    from rmstudio.core.data.importer import import_files

    data = tmp_path / "d.jsonl"
    data.write_text("".join(f'{{"prompt": "p{i}", "chosen": "{"c" * 3000}{i}", "rejected": "r{i}"}}\n'
                            for i in range(300)))
    with Project.create(tmp_path / "p.rmstudio") as project:
        pages = project.conn.execute("PRAGMA page_count").fetchone()[0]
        project.conn.execute(f"PRAGMA max_page_count = {pages + 20}")
        with pytest.raises(ProjectError, match="disk is full") as caught:
            import_files(project, [data])
        assert "cannot rollback" not in str(caught.value)
        assert project.counts()["comparisons"] == 0


def test_new_on_a_failing_disk_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    from rmstudio.core.store import connection as project_module

    def full(conn, path):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(project_module, "_migrate", full)
    with pytest.raises(ProjectError, match="cannot create .*nothing was created"):
        Project.create(tmp_path / "new.rmstudio")
    assert list(tmp_path.iterdir()) == []


def test_network_and_sync_folders_are_detected(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\nserver:/export /mnt/team nfs4 rw 0 0\n")
    assert network_folder_kind(Path("/mnt/team/labels/p.rmstudio"), str(mounts)) == "network folder (nfs4)"
    assert network_folder_kind(Path("/home/me/p.rmstudio"), str(mounts)) is None
    assert network_folder_kind(Path("/home/me/Dropbox/work/p.rmstudio"), str(mounts)).startswith("sync")


def test_a_project_on_a_network_folder_opens_without_wal_and_says_why(tmp_path, monkeypatch):
    from rmstudio.core.store import connection as project_module

    monkeypatch.setattr(project_module, "network_folder_kind", lambda path: "network folder (nfs)")
    with Project.create(tmp_path / "p.rmstudio") as project:
        assert project.journal_mode == "delete"
        assert "network folder" in project.warning and "one program" in project.warning
