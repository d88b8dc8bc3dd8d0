"""One rmstudio project = one SQLite file: what is stored in it.

``Project`` reads and writes prompts, comparisons, labels, annotators and settings. Opening,
checking, migrating and the write transactions themselves are ``ProjectFile``'s
(connection.py): a label is its own short transaction, on disk the moment ``set_label``
returns. A ``Project`` belongs to the thread that opened it: workers open their own.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from rmstudio.core.data.records import CHOICES, Message, Text
from rmstudio.core.errors import ProjectError
from rmstudio.core.store.connection import SUFFIX, ProjectFile  # noqa: F401 - SUFFIX: the window's file filter
from rmstudio.core.timefmt import utc_now  # noqa: F401 - also imported from here by older modules


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


class Project(ProjectFile):
    """An open project file. Use ``Project.create`` or ``Project.open``; close when done."""

    @property
    def db(self):
        """The same connection as a sqlite-utils Database, for scripting and quick queries
        (``project.db["labels"].count``). Imported on first use: it pulls in pandas, which
        would cost the window half a second at start."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

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

    # -- quick reads for the pages (the GUI asks these; it never runs SQL itself) -----------

    def has_labels(self) -> bool:
        """Whether any label is stored (by anyone); cheaper than ``counts()``."""
        return self.conn.execute("SELECT 1 FROM labels LIMIT 1").fetchone() is not None

    def has_comparisons(self) -> bool:
        """Whether any comparison (pair of responses) is stored; cheaper than ``counts()``."""
        return self.conn.execute("SELECT 1 FROM comparisons LIMIT 1").fetchone() is not None

    def prompt_ids(self) -> list[int]:
        """Every prompt's id, in import order."""
        return [r[0] for r in self.conn.execute("SELECT id FROM prompts ORDER BY id")]

    def prompt_text(self, prompt_id: int) -> str:
        """The prompt's plain text; ProjectError when there is no such prompt."""
        row = self.conn.execute("SELECT text FROM prompts WHERE id = ?", (prompt_id,)).fetchone()
        if row is None:
            raise ProjectError(f"no prompt #{prompt_id} in {self.path.name}")
        return row[0]

    def backup_if_changed(self, min_minutes: float | None = None):
        """The periodic backup through this connection (see ``backups.backup_if_changed``):
        a new backup, or None when nothing changed or the newest is younger than
        ``min_minutes`` (None: the default period)."""
        from rmstudio.core.store.backups import PERIODIC_MINUTES, backup_if_changed

        return backup_if_changed(self.conn, self.path,
                                 PERIODIC_MINUTES if min_minutes is None else min_minutes)


def _label_from_row(row: sqlite3.Row) -> Label:
    return Label(row["comparison_id"], row["name"], row["choice"], row["strength"], row["note"],
                 row["created_at"])
