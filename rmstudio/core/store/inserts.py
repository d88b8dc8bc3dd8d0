"""Adds prompts, responses, comparisons and labels to a project, skipping what is already there.

Everything is deduplicated by content: the same prompt text is one prompt, the same response
to the same prompt is one response, and a pair of responses is one comparison whichever side
each response is on. Callers wrap a batch of calls in ``project.write()``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3

from rmstudio.core.store.project import Project, messages_to_json, utc_now
from rmstudio.core.data.records import Text


def content_hash(text: Text) -> str:
    payload = json.dumps([text.text, messages_to_json(text.messages)], ensure_ascii=False)
    return hashlib.blake2b(payload.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def pair_key(prompt_hash: str, hash_a: str, hash_b: str) -> str:
    low, high = sorted((hash_a, hash_b))
    return hashlib.blake2b(f"{prompt_hash}|{low}|{high}".encode(), digest_size=16).hexdigest()


class ProjectWriter:
    """Content-addressed inserts with in-memory id caches (fast bulk imports).

    With an ``import_id`` every row it adds carries it, so an unfinished import can be removed."""

    def __init__(self, project: Project, import_id: int | None = None):
        self.conn: sqlite3.Connection = project.conn
        self.import_id = import_id
        self.now = utc_now()
        self._prompts: dict[str, int] = {}
        self._responses: dict[tuple[int, str], int] = {}
        self._random = random.Random()

    def forget(self) -> None:
        """Drop the id caches: for a writer that commits in chunks, since rows seen in an earlier
        transaction may have been removed by another connection since."""
        self._prompts.clear()
        self._responses.clear()

    def prompt(self, text: Text) -> tuple[int, str, bool]:
        """Returns (prompt id, content hash, whether it was added now)."""
        key = content_hash(text)
        cached = self._prompts.get(key)
        if cached is not None:
            return cached, key, False
        row = self.conn.execute("SELECT id FROM prompts WHERE content_hash = ?", (key,)).fetchone()
        if row:
            self._prompts[key] = row[0]
            return row[0], key, False
        cur = self.conn.execute(
            "INSERT INTO prompts (text, messages, content_hash, import_id, created_at) VALUES (?, ?, ?, ?, ?)",
            (text.text, messages_to_json(text.messages), key, self.import_id, self.now),
        )
        self._prompts[key] = cur.lastrowid
        return cur.lastrowid, key, True

    def response(self, prompt_id: int, text: Text, model: str | None,
                 settings: dict | None = None) -> tuple[int, str, bool]:
        key = content_hash(text)
        cached = self._responses.get((prompt_id, key))
        if cached is not None:
            return cached, key, False
        row = self.conn.execute(
            "SELECT id FROM responses WHERE prompt_id = ? AND content_hash = ?", (prompt_id, key)
        ).fetchone()
        if row:
            self._responses[(prompt_id, key)] = row[0]
            return row[0], key, False
        cur = self.conn.execute(
            """INSERT INTO responses (prompt_id, text, messages, model, settings, content_hash,
                                      import_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (prompt_id, text.text, messages_to_json(text.messages), model,
             json.dumps(settings) if settings else None, key, self.import_id, self.now),
        )
        self._responses[(prompt_id, key)] = cur.lastrowid
        return cur.lastrowid, key, True

    def comparison(self, prompt_id: int, prompt_hash: str, a: tuple[int, str],
                   b: tuple[int, str]) -> tuple[int, bool, bool]:
        """Returns (comparison id, added now, stored with A and B the other way round)."""
        key = pair_key(prompt_hash, a[1], b[1])
        row = self.conn.execute(
            "SELECT id, response_a_id FROM comparisons WHERE pair_key = ?", (key,)
        ).fetchone()
        if row:
            return row[0], False, row[1] != a[0]
        cur = self.conn.execute(
            """INSERT INTO comparisons (prompt_id, response_a_id, response_b_id, pair_key, queue_key,
                                        import_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (prompt_id, a[0], b[0], key, self._random.getrandbits(62), self.import_id, self.now),
        )
        return cur.lastrowid, True, False

    def label(self, comparison_id: int, annotator_id: int, choice: str, strength: int | None,
              note: str | None, created_at: str | None) -> str:
        """Adds a label unless this annotator already has one: 'added', 'duplicate' or 'conflict'
        (a different stored label is kept: an import never overwrites a given label)."""
        row = self.conn.execute(
            "SELECT choice, strength, note FROM labels WHERE comparison_id = ? AND annotator_id = ?",
            (comparison_id, annotator_id),
        ).fetchone()
        if row:
            same = (row[0], row[1], row[2]) == (choice, strength, note)
            return "duplicate" if same else "conflict"
        self.conn.execute(
            """INSERT INTO labels (comparison_id, annotator_id, choice, strength, note, import_id,
                                   created_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (comparison_id, annotator_id, choice, strength, note, self.import_id,
             created_at or self.now),
        )
        return "added"


FLIPPED_CHOICE = {"a": "b", "b": "a"}


def flip_if(choice: str, flipped: bool) -> str:
    """A label refers to the real responses: if the stored A/B order is the other way round,
    'a' and 'b' swap (ties, both-bad and skips mean the same either way)."""
    return FLIPPED_CHOICE.get(choice, choice) if flipped else choice
