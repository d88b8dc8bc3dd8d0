"""One rmstudio project = one SQLite file. This module opens, migrates and writes it.

Writes are short ``BEGIN IMMEDIATE`` transactions (one per label), so a label is on disk the
moment ``set_label`` returns. A ``Project`` belongs to the thread that opened it: workers open
their own (SQLite connections must not cross threads).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rmstudio.core.store import file_guard
from rmstudio.core.store.durable import fsync_file, fsync_folder
from rmstudio.core.errors import ProjectError
from rmstudio.core.store.filesystems import network_folder_kind
from rmstudio.core.data.import_chunks import recover_unfinished_imports
from rmstudio.core.store.integrity import DamagedProject, FileCheck, check_project_file, is_corruption
from rmstudio.core.data.records import CHOICES, Message, Text
from rmstudio.core.runs.store import mark_interrupted_runs
from rmstudio.core.store.schema import MIGRATIONS, SCHEMA_VERSION
from rmstudio.core.timefmt import utc_now  # noqa: F401 - also imported from here by older modules

SUFFIX = ".rmstudio"
BUSY_TIMEOUT_MS = 5000
# A writer waiting for the write lock retries BEGIN IMMEDIATE this often (jittered). SQLite's own
# busy handler backs off to 25-100 ms sleeps and keeps no queue, so a writer that comes back
# sooner (another labeler, the next import chunk) wins again and again: a labeler waited 4.5 s
# (benchmarks/two_labelers.py). Polling every ~1 ms takes a free lock within ~1 ms.
BUSY_POLL_S = 0.001
# SQLite primary result codes (sqlite3.h) that write errors are sorted by.
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL = 5, 6, 8, 10, 13


def messages_to_json(messages: tuple[Message, ...] | None) -> str | None:
    if messages is None:
        return None
    return json.dumps([{"role": m.role, "content": m.content} for m in messages], ensure_ascii=False)


def messages_from_json(raw: str | None) -> tuple[Message, ...] | None:
    if raw is None:
        return None
    return tuple(Message(m["role"], m["content"]) for m in json.loads(raw))


def row_to_text(text: str, messages: str | None) -> Text:
    return Text(text=text, messages=messages_from_json(messages))


@dataclass(frozen=True)
class Comparison:
    id: int
    prompt_id: int
    prompt: Text
    response_a_id: int
    response_a: Text
    response_b_id: int
    response_b: Text


@dataclass(frozen=True)
class Label:
    comparison_id: int
    annotator: str
    choice: str
    strength: int | None
    note: str | None
    created_at: str


class Project:
    """An open project file. Use ``Project.create`` or ``Project.open``; close when done."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn

    @property
    def db(self):
        """The same connection as a sqlite-utils Database, for scripting and quick queries
        (``project.db["labels"].count``). Imported on first use: it pulls in pandas, which
        would cost the window half a second at start."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path) -> Project:
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
    def open(cls, path: str | Path) -> Project:
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
    def _connect(cls, path: Path, checked: FileCheck | None) -> Project:
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

    def __enter__(self) -> Project:
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

    # -- annotators ----------------------------------------------------------------------

    def annotator_id(self, name: str, kind: str = "human", create: bool = True) -> int:
        name = (name or "").strip()
        if not name:
            raise ProjectError("annotator name is empty")
        row = self.conn.execute("SELECT id FROM annotators WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0]
        if not create:
            raise ProjectError(f"no annotator named {name!r} in {self.path.name}")
        with self.write():
            cur = self.conn.execute(
                "INSERT INTO annotators (name, kind, created_at) VALUES (?, ?, ?)",
                (name, kind, utc_now()),
            )
        return cur.lastrowid

    def annotators(self) -> list[dict]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM annotators ORDER BY id")]

    # -- reading comparisons -------------------------------------------------------------

    def comparison(self, comparison_id: int) -> Comparison:
        row = self.conn.execute(
            """SELECT c.id, c.prompt_id, p.text AS pt, p.messages AS pm,
                      c.response_a_id, ra.text AS at, ra.messages AS am,
                      c.response_b_id, rb.text AS bt, rb.messages AS bm
               FROM comparisons c JOIN prompts p ON p.id = c.prompt_id
               JOIN responses ra ON ra.id = c.response_a_id
               JOIN responses rb ON rb.id = c.response_b_id
               WHERE c.id = ?""",
            (comparison_id,),
        ).fetchone()
        if row is None:
            raise ProjectError(f"no comparison {comparison_id} in {self.path.name}")
        return Comparison(
            id=row["id"], prompt_id=row["prompt_id"], prompt=row_to_text(row["pt"], row["pm"]),
            response_a_id=row["response_a_id"], response_a=row_to_text(row["at"], row["am"]),
            response_b_id=row["response_b_id"], response_b=row_to_text(row["bt"], row["bm"]),
        )

    def next_unlabeled(self, annotator: str, order: str = "import") -> int | None:
        """The next comparison nobody has labeled yet (skips by others do not count), that this
        annotator has not labeled or skipped either. ``order`` is 'import' or 'random'.
        Comparisons of an import still running (see importer.py) wait until it is done."""
        column = {"import": "id", "random": "queue_key"}.get(order)
        if column is None:
            raise ProjectError(f"unknown queue order {order!r}; use 'import' or 'random'")
        row = self.conn.execute("SELECT id FROM annotators WHERE name = ?", (annotator,)).fetchone()
        annotator_id = row[0] if row else -1
        found = self.conn.execute(
            f"""SELECT c.id FROM comparisons c
                WHERE c.label_count = 0 AND NOT EXISTS (
                    SELECT 1 FROM labels l WHERE l.comparison_id = c.id AND l.annotator_id = ?)
                  AND coalesce(c.import_id, 0) NOT IN (
                    SELECT id FROM imports WHERE status = 'running')
                ORDER BY c.label_count, c.{column} LIMIT 1""",
            (annotator_id,),
        ).fetchone()
        return found[0] if found else None

    # -- labels --------------------------------------------------------------------------

    def label(self, comparison_id: int, annotator: str) -> Label | None:
        row = self.conn.execute(
            """SELECT l.*, a.name FROM labels l JOIN annotators a ON a.id = l.annotator_id
               WHERE l.comparison_id = ? AND a.name = ?""",
            (comparison_id, annotator),
        ).fetchone()
        return _label_from_row(row) if row else None

    def set_label(
        self,
        comparison_id: int,
        annotator: str,
        choice: str,
        strength: int | None = None,
        note: str | None = None,
    ) -> Label:
        """Store (or change) one annotator's label and commit it before returning."""
        if choice not in CHOICES:
            raise ProjectError(f"choice {choice!r} is not one of {', '.join(CHOICES)}")
        if strength not in (None, 1, 2):
            raise ProjectError(f"strength {strength!r} must be 1 (better), 2 (much better) or empty")
        if strength is not None and choice not in ("a", "b"):
            strength = None  # "much better" only means something for a preference
        annotator_id = self.annotator_id(annotator)
        now = utc_now()
        with self.write():
            before = self._label_state(comparison_id, annotator_id)
            try:
                self._upsert_label(comparison_id, annotator_id, choice, strength, note or None, now)
            except sqlite3.IntegrityError as exc:
                raise ProjectError(f"no comparison {comparison_id} in {self.path.name}") from exc
            after = {"choice": choice, "strength": strength, "note": note or None, "created_at": now}
            self._record_event(comparison_id, annotator_id, before, after, now)
        return Label(comparison_id, annotator, choice, strength, note or None, now)

    def delete_label(self, comparison_id: int, annotator: str) -> bool:
        annotator_id = self.annotator_id(annotator, create=False)
        with self.write():
            before = self._label_state(comparison_id, annotator_id)
            if before is None:
                return False
            self.conn.execute(
                "DELETE FROM labels WHERE comparison_id = ? AND annotator_id = ?",
                (comparison_id, annotator_id),
            )
            self._record_event(comparison_id, annotator_id, before, None, utc_now())
        return True

    def undo_last(self, annotator: str) -> int | None:
        """Undo this annotator's most recent label change; returns its comparison id."""
        row = self.conn.execute("SELECT id FROM annotators WHERE name = ?", (annotator,)).fetchone()
        if row is None:
            return None
        annotator_id = row[0]
        with self.write():
            event = self.conn.execute(
                """SELECT id, comparison_id, before FROM label_events
                   WHERE annotator_id = ? AND undone = 0 ORDER BY id DESC LIMIT 1""",
                (annotator_id,),
            ).fetchone()
            if event is None:
                return None
            before = json.loads(event["before"]) if event["before"] else None
            if before is None:
                self.conn.execute(
                    "DELETE FROM labels WHERE comparison_id = ? AND annotator_id = ?",
                    (event["comparison_id"], annotator_id),
                )
            else:
                self._upsert_label(event["comparison_id"], annotator_id, before["choice"],
                                   before["strength"], before["note"], before["created_at"])
            self.conn.execute("UPDATE label_events SET undone = 1 WHERE id = ?", (event["id"],))
        return event["comparison_id"]

    def _upsert_label(self, comparison_id, annotator_id, choice, strength, note, created_at) -> None:
        self.conn.execute(
            """INSERT INTO labels (comparison_id, annotator_id, choice, strength, note, created_at)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT (comparison_id, annotator_id) DO UPDATE SET
                 choice = excluded.choice, strength = excluded.strength,
                 note = excluded.note, created_at = excluded.created_at""",
            (comparison_id, annotator_id, choice, strength, note, created_at))

    def _label_state(self, comparison_id: int, annotator_id: int) -> dict | None:
        row = self.conn.execute(
            """SELECT choice, strength, note, created_at FROM labels
               WHERE comparison_id = ? AND annotator_id = ?""",
            (comparison_id, annotator_id),
        ).fetchone()
        return dict(row) if row else None

    def _record_event(self, comparison_id, annotator_id, before, after, at) -> None:
        self.conn.execute(
            """INSERT INTO label_events (comparison_id, annotator_id, before, after, at)
               VALUES (?, ?, ?, ?, ?)""",
            (comparison_id, annotator_id, json.dumps(before) if before else None,
             json.dumps(after) if after else None, at),
        )

    # -- counts --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        one = lambda sql: self.conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "prompts": one("SELECT count(*) FROM prompts"),
            "responses": one("SELECT count(*) FROM responses"),
            "comparisons": one("SELECT count(*) FROM comparisons"),
            "labeled_comparisons": one("SELECT count(*) FROM comparisons WHERE label_count > 0"),
            "labels": one("SELECT count(*) FROM labels"),
            "annotators": one("SELECT count(*) FROM annotators"),
            "rankings": one("SELECT count(*) FROM rankings"),
        }

    # -- settings ------------------------------------------------------------------------

    def setting(self, key: str, default=None):
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value) -> None:
        with self.write():
            self.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )


def _label_from_row(row: sqlite3.Row) -> Label:
    return Label(row["comparison_id"], row["name"], row["choice"], row["strength"], row["note"],
                 row["created_at"])


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


def _recover_after_crash(project: Project) -> dict:
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
