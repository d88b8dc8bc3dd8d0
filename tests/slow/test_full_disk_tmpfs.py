"""A really full disk: a small tmpfs filled to the last byte, then every write rmstudio makes.

Run with `RMSTUDIO_SLOW=1 pytest tests/slow/test_full_disk_tmpfs.py -q` as root (it mounts a
tmpfs; skipped with the reason where mounting is not allowed, e.g. an unprivileged container).
On the full disk, set_label, import, export, backup and `rmstudio new` must each fail with one
line that says the disk is full (a RmstudioError in the API, "rmstudio: error: ..." and no
traceback from the CLI); the files that were there before (the project, an earlier export, an
earlier backup) must come out byte-identical and pass integrity_check, and no new file may be
left under a final name (nor a temporary one). Once space is freed the project works again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("RMSTUDIO_SLOW"),
                                reason="long run: set RMSTUDIO_SLOW=1")

REPO = Path(__file__).resolve().parents[2]
TMPFS_SIZE = "4m"
FULL = re.compile(r"disk is full|no space left on device", re.IGNORECASE)


@pytest.fixture
def small_disk():
    """A fresh 4 MiB tmpfs, unmounted afterwards; skips where it cannot be mounted."""
    mount_point = Path(tempfile.mkdtemp(prefix="rmstudio-full-"))
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                               str(mount_point)], capture_output=True, text=True)
    except OSError as exc:
        done = subprocess.CompletedProcess([], 1, "", str(exc))
    if done.returncode != 0:
        mount_point.rmdir()
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): "
                    + (done.stderr.strip() or f"mount exited {done.returncode}"))
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
        mount_point.rmdir()


def fill(folder: Path) -> Path:
    """Write a filler file until not one more byte fits; returns it."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != 28:  # ENOSPC
                        raise
                    break
        os.fsync(fd)
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bavail == 0
    return filler


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def pairs(path: Path, n: int, tag: str) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"prompt": f"{tag} prompt {i} " + "words " * 30,
                                 "chosen": f"good answer {i} " + "fine " * 20,
                                 "rejected": f"bad answer {i} " + "poor " * 20}) + "\n")
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rmstudio.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def assert_one_full_line(exc_or_proc, what: str) -> str:
    if isinstance(exc_or_proc, subprocess.CompletedProcess):
        err = exc_or_proc.stderr
        assert exc_or_proc.returncode == 1, f"{what}: exit {exc_or_proc.returncode}, stderr {err!r}"
        assert "Traceback" not in err, f"{what}: traceback\n{err}"
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rmstudio: error:"), f"{what}: {err!r}"
        text = lines[0]
    else:
        text = str(exc_or_proc)
        assert "\n" not in text, f"{what}: {text!r}"
    assert FULL.search(text), f"{what} does not say the disk is full: {text!r}"
    print(f"\n  {what}: {text}", end="")
    return text


def test_really_full_disk(small_disk, tmp_path):
    from rmstudio.core.errors import RmstudioError
    from rmstudio.core.data.exporter import export_project
    from rmstudio.core.data.importer import import_files
    from rmstudio.core.store.project import Project

    disk = small_disk
    path = disk / "team.rmstudio"
    earlier_export = disk / "earlier.jsonl"
    with Project.create(path) as project:
        import_files(project, [pairs(tmp_path / "first.jsonl", 300, "first")])
        ids = [r[0] for r in project.conn.execute("SELECT id FROM comparisons ORDER BY id")]
        for cid in ids[:50]:
            project.set_label(cid, "alice", "a")
        export_project(project, earlier_export)
        earlier_backup = project.backup("manual").path
    before = {p: sha(p) for p in (path, earlier_export, earlier_backup)}
    assert not Path(str(path) + "-wal").exists()
    labels_before = 50

    bigger = pairs(tmp_path / "second.jsonl", 500, "second")
    project = Project.open(path)
    try:
        project.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # an empty -wal: nothing to reuse
        listing = set(os.listdir(disk)) | {"filler.bin"}
        backups_listing = set(os.listdir(earlier_backup.parent))
        filler = fill(disk)

        # set_label: nothing saved, the project keeps its earlier labels.
        with pytest.raises(RmstudioError) as caught:
            project.set_label(ids[60], "alice", "b")
        assert_one_full_line(caught.value, "set_label")
        assert project.label(ids[60], "alice") is None

        # import (API, then the CLI in a second process with the project still open here)
        with pytest.raises(RmstudioError) as caught:
            import_files(project, [bigger])
        assert_one_full_line(caught.value, "import_files")
        assert_one_full_line(cli("import", str(path), str(bigger)), "rmstudio import")

        # export: to a new name, over the earlier export, and from the CLI
        fresh = disk / "fresh.jsonl"
        with pytest.raises(RmstudioError) as caught:
            export_project(project, fresh)
        assert_one_full_line(caught.value, "export_project (new file)")
        with pytest.raises(RmstudioError) as caught:
            export_project(project, earlier_export)
        assert_one_full_line(caught.value, "export_project (over an earlier export)")
        assert_one_full_line(cli("export", str(path), str(fresh)), "rmstudio export")

        # backup
        with pytest.raises(RmstudioError) as caught:
            project.backup("manual")
        assert_one_full_line(caught.value, "project.backup")
        assert_one_full_line(cli("backup", str(path)), "rmstudio backup")

        # a new project
        with pytest.raises(RmstudioError) as caught:
            Project.create(disk / "other.rmstudio")
        assert_one_full_line(caught.value, "Project.create")
        assert_one_full_line(cli("new", str(disk / "other")), "rmstudio new")

        # Nothing new under any name, final or temporary (the -wal may be there: it is SQLite's).
        assert set(os.listdir(disk)) - {"team.rmstudio-wal"} == listing - {"team.rmstudio-wal"}
        assert set(os.listdir(earlier_backup.parent)) == backups_listing
        assert project.counts()["labels"] == labels_before + 300  # 300 from the file's source
    finally:
        project.close()

    # On the still-full disk, with every connection closed: the files are as they were.
    for p, digest in before.items():
        assert sha(p) == digest, f"{p.name} changed"
    assert integrity(path) == "ok"
    assert integrity(earlier_backup) == "ok"
    sqlite_side = {"team.rmstudio-wal", "team.rmstudio-shm"}
    assert set(os.listdir(disk)) - sqlite_side == listing - sqlite_side

    # Space back: the project opens, takes a label and an import again.
    filler.unlink()
    with Project.open(path) as project:
        project.set_label(ids[60], "alice", "b")
        report = import_files(project, [bigger])
        assert report.counts["comparisons_added"] == 500
        assert project.counts()["labels"] == labels_before + 300 + 1 + 500
    assert integrity(path) == "ok"
