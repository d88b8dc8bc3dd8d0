"""One rmstudio project = one SQLite file. This module opens, migrates and writes it.

Writes are short ``BEGIN IMMEDIATE`` transactions (one per label), so a label is on disk the
moment ``set_label`` returns. A ``Project`` belongs to the thread that opened it: workers open
their own (SQLite connections must not cross threads).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import ProjectError
from .records import CHOICES, Message, Text
from .schema import MIGRATIONS, SCHEMA_VERSION

SUFFIX = ".rmstudio"
BUSY_TIMEOUT_MS = 5000


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


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
        return cls._connect(path, new=True)

    @classmethod
    def open(cls, path: str | Path) -> Project:
        path = Path(path)
        if not path.exists() and path.suffix == "" and path.with_suffix(SUFFIX).exists():
            path = path.with_suffix(SUFFIX)
        if not path.exists():
            raise ProjectError(f"{path} does not exist (create it with `rmstudio new {path}`)")
        if path.is_dir():
            raise ProjectError(f"{path} is a folder, not an rmstudio project file")
        with open(path, "rb") as head:
            magic = head.read(16)
        if magic and magic != b"SQLite format 3\x00":
            raise ProjectError(f"{path} is not an rmstudio project (not an SQLite database)")
        return cls._connect(path, new=False)

    @classmethod
    def _connect(cls, path: Path, new: bool) -> Project:
        try:
            # Autocommit mode: every write goes through an explicit BEGIN IMMEDIATE below.
            conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # WAL lets the GUI read while a worker writes. It needs shared memory, so it fails
            # on some network folders: keep the default journal there rather than refuse.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            # FULL: a label survives power loss once set_label returns (WAL makes this cheap).
            conn.execute("PRAGMA synchronous = FULL")
            if not new:
                _check_is_project(conn, path)
            _migrate(conn, path)
        except sqlite3.DatabaseError as exc:
            raise ProjectError(f"cannot open {path}: {exc}") from exc
        project = cls(path, conn)
        project.journal_mode = mode
        return project

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it."""
        if self.conn.in_transaction:  # nested: the outer transaction decides
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

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
        annotator has not labeled or skipped either. ``order`` is 'import' or 'random'."""
        column = {"import": "id", "random": "queue_key"}.get(order)
        if column is None:
            raise ProjectError(f"unknown queue order {order!r}; use 'import' or 'random'")
        row = self.conn.execute("SELECT id FROM annotators WHERE name = ?", (annotator,)).fetchone()
        annotator_id = row[0] if row else -1
        found = self.conn.execute(
            f"""SELECT c.id FROM comparisons c
                WHERE c.label_count = 0 AND NOT EXISTS (
                    SELECT 1 FROM labels l WHERE l.comparison_id = c.id AND l.annotator_id = ?)
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


def _check_is_project(conn: sqlite3.Connection, path: Path) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "schema_migrations" not in tables:
        raise ProjectError(f"{path} is an SQLite database but not an rmstudio project")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"{path} was written by a newer rmstudio (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); update rmstudio to open it"
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    applied = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    pending = [(name, step) for name, step in MIGRATIONS if name not in applied]
    if pending and applied:
        # An existing project is about to change shape: keep a copy to go back to.
        backup = path.with_name(f"{path.name}.before-{pending[0][0]}.bak")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy2(path, backup)
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
