"""Rolling backups through SQLite's backup API, thinning, and check-then-rename restore."""

import errno
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from rmstudio.core.store import backups
from rmstudio.core.store.backups import (STAMP, backup_dir, backup_if_changed, list_backups, restore_backup,
                                   thin_backups)
from rmstudio.core.errors import ProjectError
from rmstudio.core.store.file_guard import ProjectFileInUse
from rmstudio.core.store.integrity import DamagedProject
from rmstudio.core.store.project import Project
from rmstudio.core.store.schema import SCHEMA_VERSION
from builders import add_pairs

ROOT = Path(__file__).resolve().parents[2]


def _labels(path: Path) -> list[tuple]:
    with Project.open(path) as project:
        return [tuple(r) for r in project.conn.execute(
            "SELECT comparison_id, choice FROM labels ORDER BY comparison_id")]


def test_backup_is_a_checked_plain_copy_and_restore_brings_it_back(tmp_path):
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        ids = add_pairs(project, 5)
        project.set_label(ids[0], "ann", "a")
        made = project.backup()
        assert made.path.parent == backup_dir(path) and made.reason == "manual"
        project.set_label(ids[1], "ann", "b")  # after the backup
        with pytest.raises(ProjectFileInUse, match="close the project first"):
            restore_backup(path, made.path, SCHEMA_VERSION)  # never under an open connection
    assert [b.path for b in list_backups(path)] == [made.path]
    assert not list(backup_dir(path).glob("*.partial"))
    kept = restore_backup(path, made.path, SCHEMA_VERSION)
    assert _labels(path) == [(ids[0], "a")]
    assert _labels(kept) == [(ids[0], "a"), (ids[1], "b")]  # the replaced file is kept, whole


def test_restore_moves_the_old_wal_away_with_the_old_file(tmp_path):
    """A -wal left by a crash belongs to the file it was written for: SQLite must never replay
    it into the restored one."""
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        ids = add_pairs(project, 3)
        made = project.backup()
    code = (f"from rmstudio.core.store.project import Project; import os; p = Project.open({str(path)!r}); "
            f"p.set_label({ids[2]}, 'ann', 'tie'); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert Path(str(path) + "-wal").stat().st_size > 0  # the crash left its label in the WAL
    kept = restore_backup(path, made.path, SCHEMA_VERSION)
    assert _labels(path) == []
    assert Path(str(kept) + "-wal").exists()
    assert _labels(kept) == [(ids[2], "tie")]  # the moved WAL still belongs to the kept file


def test_a_damaged_backup_is_never_restored(tmp_path):
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        add_pairs(project, 30)
        made = project.backup()
    before = path.read_bytes()
    with open(made.path, "r+b") as fh:
        fh.seek(made.size - 2 * 4096)
        fh.write(os.urandom(4096))
    with pytest.raises(DamagedProject):
        restore_backup(path, made.path, SCHEMA_VERSION)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["p.rmstudio"]


def test_a_backup_onto_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        add_pairs(project, 3)

        def full(conn, dest):
            Path(dest).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(backups, "_copy_through_sqlite", full)
        with pytest.raises(ProjectError, match="backup of p.rmstudio failed: no space left on device"):
            project.backup()
        assert list(backup_dir(path).iterdir()) == []
        assert project.counts()["comparisons"] == 3


def _fake_backup(path: Path, source: Path, taken: datetime) -> Path:
    folder = backup_dir(path)
    folder.mkdir(exist_ok=True)
    target = folder / f"{taken.strftime(STAMP)}_periodic.rmstudio"
    target.write_bytes(source.read_bytes())
    return target


def test_thinning_keeps_recent_then_one_a_day_then_one_a_week(tmp_path):
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        seed = project.backup().path
    seed.unlink()
    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    made = {}
    for hours in range(0, 24 * 70, 6):  # every 6 hours for 70 days
        made[hours] = _fake_backup(path, path, now - timedelta(hours=hours))
    deleted = set(thin_backups(path, now))
    kept = [b for b in list_backups(path)]
    kept_hours = sorted(h for h, p in made.items() if p not in deleted)
    assert kept_hours[:10] == [0, 6, 12, 18, 24, 30, 36, 42, 48, 54]  # the 10 most recent
    days = {(now - timedelta(hours=h)).date() for h in kept_hours if h < 24 * 7}
    assert len(days) == 7 + 1  # one per day of the last week (the 7-day edge touches 8 dates)
    older = [h for h in kept_hours if h >= 24 * 7]
    weeks = {(now - timedelta(hours=h)).isocalendar()[:2] for h in older}
    assert len(older) == len(weeks) and len(weeks) <= 8  # one per week, for eight weeks
    assert max(kept_hours) < 24 * 7 * 8
    assert len(kept) == len(kept_hours)


def test_the_rolling_backup_waits_for_a_change_and_for_its_interval(tmp_path):
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        ids = add_pairs(project, 3)
        first = backup_if_changed(project.conn, path, min_minutes=15)
        assert first is not None  # no backup yet: make one
        assert backup_if_changed(project.conn, path, min_minutes=15) is None  # too soon
        # Pretend the newest backup is an hour old.
        old = datetime.now(timezone.utc) - timedelta(hours=1)
        aged = first.path.with_name(f"{old.strftime(STAMP)}_periodic.rmstudio")
        first.path.rename(aged)
        os.utime(path, (old.timestamp() - 60, old.timestamp() - 60))
        wal = Path(str(path) + "-wal")
        os.utime(wal, (old.timestamp() - 60, old.timestamp() - 60))
        assert backup_if_changed(project.conn, path, min_minutes=15) is None  # nothing changed
        project.set_label(ids[0], "ann", "a")
        again = backup_if_changed(project.conn, path, min_minutes=15)
        assert again is not None and again.reason == "periodic"
    conn = sqlite3.connect(again.path)
    assert conn.execute("SELECT count(*) FROM labels").fetchone()[0] == 1


def test_cli_backup_list_and_restore_latest_after_damage(tmp_path):
    path = tmp_path / "p.rmstudio"
    with Project.create(path) as project:
        ids = add_pairs(project, 30)
        project.set_label(ids[0], "ann", "b")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "rmstudio", *args], capture_output=True,
                              text=True, cwd=ROOT)

    made = cli("backup", str(path))
    assert made.returncode == 0 and "backup written" in made.stdout
    listed = cli("restore", str(path))
    assert listed.returncode == 0 and "manual" in listed.stdout
    with open(path, "r+b") as fh:  # then the file is damaged
        fh.seek(path.stat().st_size - 2 * 4096)
        fh.write(os.urandom(4096))
    refused = cli("stats", str(path))
    assert refused.returncode == 1 and "rmstudio restore" in refused.stderr
    restored = cli("restore", str(path), "--latest")
    assert restored.returncode == 0, restored.stderr
    assert "kept as" in restored.stdout
    assert _labels(path) == [(ids[0], "b")]
    assert cli("stats", str(path)).returncode == 0


def test_restoring_from_a_file_that_is_no_backup_says_so_and_changes_nothing(tmp_path):
    path = tmp_path / "p.rmstudio"
    Project.create(path).close()
    before = path.read_bytes()
    junk = tmp_path / "notes.rmstudio"
    junk.write_text("not a database")
    run = subprocess.run([sys.executable, "-m", "rmstudio", "restore", str(path), str(junk)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1
    assert run.stderr == ("rmstudio: error: notes.rmstudio cannot be restored: it is damaged "
                          "(file is not a database); p.rmstudio was not changed\n")
    assert path.read_bytes() == before
