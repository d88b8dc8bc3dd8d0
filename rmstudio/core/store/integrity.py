"""Is this file a healthy rmstudio project? Answered without changing a byte of it.

``Project.open`` calls ``check_project_file`` before its read-write connection exists, so a file
it refuses stays exactly as it was: the check reads through a read-only SQLite connection
(``mode=ro``), which cannot switch the file to WAL, migrate it or roll a journal into it. The
header is read by SQLite too, never with a plain ``open()`` (see ``file_guard`` for why).

``quick_check`` reads every page once (O(N), no index cross-check), so it is bounded in time:
after ``budget_s`` the check stops and the file is accepted as "partially checked"; corruption
met later is caught by ``DamagedProject`` on the first query that meets it.
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from rmstudio.core.errors import ProjectError

QUICK_CHECK_BUDGET_S = 3.0

# SQLite's primary result codes that mean "the file itself is bad" (sqlite3.h).
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26
CORRUPTION_WORDS = ("malformed", "not a database", "corrupt")


class DamagedProject(ProjectError):
    """The project file is damaged; nothing was (or will be) written to it."""

    def __init__(self, path: Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"{path} is damaged ({reason}); nothing was written to it. "
            f"Restore a backup: `rmstudio restore {path}` or File → Restore backup…")


@dataclass(frozen=True)
class FileCheck:
    path: Path
    fresh: bool  # an empty new database (no tables yet)
    schema_version: int
    complete: bool  # quick_check ran to the end within its time budget
    seconds: float


def read_only_uri(path: Path, immutable: bool = False) -> str:
    uri = "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro"
    return uri + "&immutable=1" if immutable else uri


def _one_line(rows: list[str]) -> str:
    """quick_check's report as one short line (it lists one problem per line)."""
    problems = [line.strip() for row in rows for line in row.splitlines()
                if line.strip() and not line.startswith("***")]
    return "integrity check: " + "; ".join(problems[:2])


def is_corruption(exc: BaseException) -> bool:
    """Whether an sqlite3 error says the file is damaged (not busy, full or misused)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and (code & 0xFF) in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return True
    return isinstance(exc, sqlite3.DatabaseError) and any(w in str(exc).lower() for w in CORRUPTION_WORDS)


def as_damage(exc: BaseException, path: Path) -> DamagedProject | None:
    """``exc`` as a ``DamagedProject`` when it reports damage (None otherwise): for code that
    reads a project whose bounded check did not reach the damaged page."""
    if isinstance(exc, DamagedProject):
        return exc
    if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc):
        return DamagedProject(path, str(exc))
    return None


def check_project_file(path: Path, newest_schema: int, budget_s: float = QUICK_CHECK_BUDGET_S) -> FileCheck:
    """Raise ``ProjectError`` (``DamagedProject`` for damage) unless ``path`` is a project this
    rmstudio can open; the file is never modified."""
    path = Path(path)
    started = time.monotonic()
    size = os.stat(path).st_size
    if size == 0:
        raise DamagedProject(path, "the file is empty (0 bytes)")
    # A WAL project that nobody has open has no -wal/-shm; a plain read-only connection would
    # create both beside it, so it is read as immutable then (nothing to lock, nothing to
    # replay). With them present, the normal read-only connection reads their content too.
    idle = not any(os.path.exists(str(path) + side) for side in ("-wal", "-shm"))
    try:
        return _check(path, newest_schema, budget_s, started, immutable=idle)
    except DamagedProject:
        if not idle:
            raise
        # Immutable reads take no lock: a program that opened the file meanwhile and is
        # checkpointing could make a good page look torn. Damage is damage if seen twice.
        time.sleep(0.2)
        return _check(path, newest_schema, budget_s, time.monotonic(), immutable=idle)


def _check(path: Path, newest_schema: int, budget_s: float, started: float, immutable: bool) -> FileCheck:
    try:
        conn = sqlite3.connect(read_only_uri(path, immutable), uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise ProjectError(f"cannot open {path}: {exc}") from exc
    try:
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc).lower() or "file is encrypted" in str(exc).lower():
                raise ProjectError(f"{path} is not an rmstudio project (not an SQLite database)") from None
            raise DamagedProject(path, str(exc)) from None
        if tables and "schema_migrations" not in tables:
            raise ProjectError(f"{path} is an SQLite database but not an rmstudio project")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > newest_schema:
            raise ProjectError(
                f"{path} was written by a newer rmstudio (schema {version}, this one knows "
                f"{newest_schema}); update rmstudio to open it")
        complete = _quick_check(conn, path, started + budget_s)
    except sqlite3.DatabaseError as exc:
        raise DamagedProject(path, str(exc)) from None
    finally:
        conn.close()
    return FileCheck(path, fresh=not tables, schema_version=version, complete=complete,
                     seconds=time.monotonic() - started)


def _quick_check(conn: sqlite3.Connection, path: Path, deadline: float) -> bool:
    conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 20_000)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc).lower():
            return False  # out of time on a big file: what was read was fine
        raise
    finally:
        conn.set_progress_handler(None, 0)
    if rows != ["ok"]:
        raise DamagedProject(path, _one_line(rows))
    return True


def check_copy(path: Path) -> None:
    """A full ``integrity_check`` of a backup or a restore candidate (not bounded: it is small
    next to what a bad restore would cost)."""
    conn = sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check(5)")]
        if "schema_migrations" not in {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}:
            raise ProjectError(f"{path} is not an rmstudio project")
    except sqlite3.DatabaseError as exc:
        raise DamagedProject(path, str(exc)) from None
    finally:
        conn.close()
    if rows != ["ok"]:
        raise DamagedProject(path, _one_line(rows))
