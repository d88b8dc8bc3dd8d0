"""Opening a project file safely, and its write transactions.

``ProjectFile`` is everything about the file as a file: it is checked read-only before anything
can write to it (a refused file stays byte for byte as it was), opened in WAL (or, on network and
sync folders, the rollback journal), migrated after a backup, and recovered after a crash (an
unfinished import removed, a dead run marked interrupted). Writes are short ``BEGIN IMMEDIATE``
transactions whose SQLite errors come out as one line saying what happened to the change.
``Project`` (project.py) adds what is stored in it: labels, comparisons, settings.

A connection belongs to the thread that opened it: workers open their own.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rmstudio.core.data.import_chunks import recover_unfinished_imports
from rmstudio.core.errors import ProjectError
from rmstudio.core.runs.store import mark_interrupted_runs
from rmstudio.core.store import file_guard
from rmstudio.core.store.durable import fsync_file, fsync_folder
from rmstudio.core.store.filesystems import network_folder_kind
from rmstudio.core.store.integrity import DamagedProject, FileCheck, check_project_file, is_corruption
from rmstudio.core.store.schema import MIGRATIONS, SCHEMA_VERSION
from rmstudio.core.timefmt import utc_now

SUFFIX = ".rmstudio"
BUSY_TIMEOUT_MS = 5000
# A writer waiting for the write lock retries BEGIN IMMEDIATE this often (jittered). SQLite's own
# busy handler backs off to 25-100 ms sleeps and keeps no queue, so a writer that comes back
# sooner (another labeler, the next import chunk) wins again and again: a labeler waited 4.5 s
# (benchmarks/two_labelers.py). Polling every ~1 ms takes a free lock within ~1 ms.
BUSY_POLL_S = 0.001
# SQLite primary result codes (sqlite3.h) that write errors are sorted by.
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL = 5, 6, 8, 10, 13


class ProjectFile:
    """An open, checked project file and its connection. Use ``create`` or ``open``; close
    when done (or use it as a context manager)."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path) -> ProjectFile:
        path = Path(path)
        if path.suffix == "":
            path = path.with_suffix(SUFFIX)
        if path.exists():
            raise ProjectError(f"{path} already exists; open it instead, or choose another name")
        if not path.parent.exists():
            raise ProjectError(f"cannot create {path}: folder {path.parent} does not exist")
        _build_new(path)
        return cls.open(path)

    @classmethod
    def open(cls, path: str | Path) -> ProjectFile:
        """Open a project after checking it (read-only, so a refused file is never changed)."""
        path = Path(path)
        if not path.exists() and path.suffix == "" and path.with_suffix(SUFFIX).exists():
            path = path.with_suffix(SUFFIX)
        if not path.exists():
            raise ProjectError(f"{path} does not exist (create it with `rmstudio new {path}`)")
        if path.is_dir():
            raise ProjectError(f"{path} is a folder, not an rmstudio project file")
        checked = None
        if not file_guard.is_open(path):  # another connection of this process checked it already
            checked = check_project_file(path, SCHEMA_VERSION)
        return cls._connect(path, checked)

    @classmethod
    def _connect(cls, path: Path, checked: FileCheck | None) -> ProjectFile:
        file_guard.register(path)  # from here on, no plain open() of this file in this process
        conn = None
        try:
            # Autocommit mode: every write goes through an explicit BEGIN IMMEDIATE below.
            conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # WAL lets the GUI read while a worker writes. It needs shared memory between the
            # processes that open the file, which network and sync folders do not give: there
            # the rollback journal is used, and the project says why (``warning``).
            shared_folder = network_folder_kind(path)
            wanted = "DELETE" if shared_folder else "WAL"
            mode = conn.execute(f"PRAGMA journal_mode = {wanted}").fetchone()[0]
            # FULL: a label survives power loss once set_label returns (WAL makes this cheap).
            conn.execute("PRAGMA synchronous = FULL")
            _migrate(conn, path)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            file_guard.unregister(path)
            if is_corruption(exc):
                raise DamagedProject(path, str(exc)) from None
            raise ProjectError(f"cannot open {path}: {exc}") from None
        except BaseException:
            if conn is not None:
                conn.close()
            file_guard.unregister(path)
            raise
        project = cls(path, conn)
        project.journal_mode = mode
        project.check = checked
        project.warning = None
        try:
            project.recovered = _recover_after_crash(project)
        except BaseException:
            project.close()
            raise
        if shared_folder:
            project.warning = (f"{path.name} is on a {shared_folder}: WAL is off (it needs shared "
                               "memory), so only one program should use it at a time. Copy it "
                               "to a local disk for labeling with several people.")
        elif mode != "wal":
            project.warning = (f"{path.name}: this folder does not support WAL (journal mode "
                               f"{mode}); only one program should use it at a time.")
        return project

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
            file_guard.unregister(self.path)

    def __enter__(self) -> ProjectFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------

    damaged: str | None = None  # set when SQLite reports damage: no write is tried after it

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it.

        SQLite errors come out as one-line ``ProjectError``s that say what happened to the
        change (disk full, busy, damaged); a damaged file is never written again."""
        if self.conn.in_transaction:  # nested: the outer transaction decides
            yield self.conn
            return
        if self.damaged:
            raise DamagedProject(self.path, self.damaged)
        try:
            self._begin_immediate()
        except sqlite3.Error as exc:
            raise self._store_error(exc) from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            # SQLite may already have rolled back by itself (a full disk does): only roll back
            # what is still open, so its real error is the one the user sees.
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                raise self._store_error(exc) from None
            raise

    def _begin_immediate(self) -> None:
        """BEGIN IMMEDIATE, retried every ~BUSY_POLL_S for up to BUSY_TIMEOUT_MS while another
        connection holds the write lock (the busy handler is off meanwhile: see BUSY_POLL_S).
        Raises the last sqlite3 error when the lock stays taken."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        self.conn.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF  # Python 3.11+
                    busy = code in (SQLITE_BUSY, SQLITE_LOCKED) or (not code and "locked" in str(exc))
                    if not busy or time.monotonic() >= deadline:
                        raise
                time.sleep(BUSY_POLL_S * (0.5 + random.random()))
        finally:
            # Reads, checkpoints and COMMIT keep SQLite's busy handler.
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _store_error(self, exc: sqlite3.Error) -> ProjectError:
        name = self.path.name
        text = str(exc).lower()
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if is_corruption(exc):
            self.damaged = str(exc)
            return DamagedProject(self.path, str(exc))
        if code == SQLITE_FULL or "disk is full" in text:
            return ProjectError(f"{name}: the disk is full, so this change was not saved; what was "
                                "saved before is intact. Free some space and try again.")
        if code in (SQLITE_BUSY, SQLITE_LOCKED) or "locked" in text:
            return ProjectError(f"{name} is busy: another program held its write lock for over "
                                f"{BUSY_TIMEOUT_MS // 1000} s, so this change was not saved; try again.")
        if code == SQLITE_READONLY or "readonly" in text:
            return ProjectError(f"{name} is read-only here, so this change was not saved.")
        if code == SQLITE_IOERR or "i/o error" in text:
            return ProjectError(f"{name}: the disk reported an I/O error, so this change was not "
                                "saved; what was saved before is intact.")
        return ProjectError(f"{name}: {exc}; this change was not saved")

    def backup(self, reason: str = "manual"):
        """A consistent copy in the project's backup folder (see ``backups``)."""
        from rmstudio.core.store.backups import backup_project

        return backup_project(self.conn, self.path, reason)

def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    pending = [(name, step) for name, step in MIGRATIONS if name not in applied]
    if pending and applied:
        # An existing project is about to change shape: keep a copy to go back to (through
        # SQLite's backup API: a plain file copy would drop this connection's locks).
        from rmstudio.core.store.backups import backup_project

        backup_project(conn, path, f"before-{pending[0][0]}")
    for number, (name, step) in enumerate(MIGRATIONS, start=1):
        if name in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                         (name, utc_now()))
            conn.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _recover_after_crash(project: ProjectFile) -> dict:
    """Finish what a killed process left: an import's rows are removed (all or nothing), a
    training run is marked interrupted (resumable). Both leave live work alone and cost one
    small query when nothing is pending."""
    return {"imports": recover_unfinished_imports(project),
            "runs_interrupted": mark_interrupted_runs(project)}


def _build_new(path: Path) -> None:
    """Make a new project under a temporary name and move it into place only when complete, so
    a failure (a full disk) never leaves a half-made file under the name the user chose."""
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")  # no -wal/-shm beside the temp file
            _migrate(conn, tmp)
        finally:
            conn.close()
        fsync_file(tmp)
        try:
            os.link(tmp, path)  # fails if the name was taken meanwhile: never clobber a file
        except FileExistsError:
            raise ProjectError(f"{path} already exists; open it instead, or choose another name") from None
        except OSError:
            if path.exists():
                raise ProjectError(f"{path} already exists; open it instead, or choose another name") from None
            os.replace(tmp, path)  # folders without hard links (some network and FAT disks)
        fsync_folder(path.parent)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ProjectError(f"cannot create {path}: {reason}; nothing was created") from None
    finally:
        for leftover in (tmp, Path(str(tmp) + "-journal")):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass
