"""Imports written in short chunks, and removed again when they do not finish.

An import commits in short transactions (at most ~50 ms each, with a pause between them) so a
label written meanwhile never waits long. Until its last chunk is in, an import is 'running'
(its comparisons stay out of the label queue); a bad line or a cancel removes every row it
added before ``import_files`` returns, and an import whose process died is removed the next
time the project opens (``recover_unfinished_imports``). Only comparisons somebody labeled
while the import ran are kept, with what they need.

This module takes the project as an argument and never imports ``project.py``, which calls
``recover_unfinished_imports`` when it opens a file.
"""

from __future__ import annotations

import hashlib
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rmstudio.core.errors import ProjectError
from rmstudio.core.processes import owner_alive, process_owner
from rmstudio.core.timefmt import utc_now

if TYPE_CHECKING:
    from rmstudio.core.store.project import Project

# -- chunked writing -----------------------------------------------------------------------

CHUNK_RECORDS = 5000  # a chunk commits after this many records...
CHUNK_SECONDS = 0.05  # ...or after this long holding the write lock, whichever comes first
# The least pause between two chunks of one import. A waiting writer retries the write lock
# every ~1 ms (Project._begin_immediate), so a pause of 10 ms after a chunk of <= 50 ms lets
# every label that waited get in: a label waits at most ~60 ms. Parsing the next records fills
# the pause.
GAP_SECONDS = 0.01
# A running import whose process is on another machine is taken for dead after this long
# without a chunk (on this machine its process id says whether it still runs).
STALE_AFTER_S = 600.0

_live_lock = threading.Lock()
_live: set[tuple[str, int]] = set()  # (project file, import id) of imports running in this process


class Chunks:
    """Short write transactions with a pause between them, so other writers get in."""

    def __init__(self, project: Project):
        self.project = project
        self.import_ids: list[int] = []  # checked (and their heartbeat set) at each chunk
        self.last_commit = -1e9
        self.started = 0.0

    def over_budget(self) -> bool:
        return time.perf_counter() - self.started > CHUNK_SECONDS

    @contextmanager
    def chunk(self):
        conn = self.project.conn
        if not conn.in_transaction:  # inside a caller's transaction there is nothing to pause
            pause = GAP_SECONDS - (time.perf_counter() - self.last_commit)
            if pause > 0:
                time.sleep(pause)
        with self.project.write():
            self.started = time.perf_counter()
            if self.import_ids:
                alive = conn.execute(
                    f"UPDATE imports SET heartbeat = ? WHERE status = 'running' AND id IN "
                    f"({','.join('?' * len(self.import_ids))})",
                    (time.time(), *self.import_ids)).rowcount
                if alive != len(self.import_ids):
                    raise ProjectError("this import was discarded while it ran (another rmstudio "
                                       "took it for an interrupted one); import the files again")
            yield conn
        self.last_commit = time.perf_counter()


def _project_key(project) -> str:
    return str(Path(project.path).resolve())


def start_import(project, path: Path) -> int:
    digest = file_sha256(path)
    with project.write():
        import_id = project.conn.execute(
            """INSERT INTO imports (path, sha256, imported_at, summary, status, owner, heartbeat)
               VALUES (?, ?, ?, '{}', 'running', ?, ?)""",
            (str(path.resolve()), digest, utc_now(), process_owner(), time.time()),
        ).lastrowid
        with _live_lock:  # before the row is visible to anyone else
            _live.add((_project_key(project), import_id))
    return import_id


def forget_live(project, import_ids: list[int]) -> None:
    key = _project_key(project)
    with _live_lock:
        for import_id in import_ids:
            _live.discard((key, import_id))


# -- removing an unfinished import ---------------------------------------------------------

def recover_unfinished_imports(project) -> list[dict]:
    """Remove what imports that never finished (their process was killed, or lost power) left
    in the project. Imports still running, in this process or another, are left alone. Safe to
    call at every open: with nothing pending it is one small query.

    Returns one dict per import removed: its ``id``, ``path`` and ``kept_comparisons``, the
    number of its comparisons kept because somebody labeled them while the import ran.
    """
    columns = {r[1] for r in project.conn.execute("PRAGMA table_info(imports)")}
    if "status" not in columns:  # not migrated yet: nothing can be pending
        return []
    rows = project.conn.execute(
        "SELECT id, path, owner, heartbeat FROM imports WHERE status = 'running' ORDER BY id DESC"
    ).fetchall()
    removed = []
    for row in rows:
        if not _is_abandoned(project, row["id"], row["owner"], row["heartbeat"]):
            continue
        kept = discard_imports(project, [row["id"]])
        removed.append({"id": row["id"], "path": row["path"], "kept_comparisons": kept})
    return removed


def _is_abandoned(project, import_id: int, owner: str | None, heartbeat: float | None) -> bool:
    with _live_lock:
        if (_project_key(project), import_id) in _live:
            return False
    if heartbeat is None or time.time() - heartbeat > STALE_AFTER_S:
        return True
    if owner == process_owner():
        return True  # this process, but not running: left over by an import that failed
    alive = owner_alive(owner)
    return alive is False  # None: another machine's import, still recent: it may be running


# Each step finds the rows an import added (by import_id, through an index) and deletes the ones
# nothing else has come to need meanwhile: a label a person gave keeps its comparison, and a
# kept comparison (or another import's rows) keep the prompt and responses they point to.
# Children go before parents, so ON DELETE CASCADE never takes a row that has to stay.
_DISCARD_STEPS = (
    ("SELECT id FROM labels WHERE import_id = ?",
     """DELETE FROM labels WHERE id = ? AND NOT EXISTS (
            SELECT 1 FROM label_events e
            WHERE e.comparison_id = labels.comparison_id AND e.annotator_id = labels.annotator_id)"""),
    ("SELECT id FROM rankings WHERE import_id = ?", "DELETE FROM rankings WHERE id = ?"),
    ("SELECT id FROM comparisons WHERE import_id = ?",
     """DELETE FROM comparisons WHERE id = ?
            AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.comparison_id = comparisons.id)
            AND NOT EXISTS (SELECT 1 FROM label_events e WHERE e.comparison_id = comparisons.id)"""),
    ("SELECT id FROM responses WHERE import_id = ?",
     """DELETE FROM responses WHERE id = ?
            AND NOT EXISTS (SELECT 1 FROM comparisons c WHERE c.response_a_id = responses.id)
            AND NOT EXISTS (SELECT 1 FROM comparisons c WHERE c.response_b_id = responses.id)
            AND NOT EXISTS (SELECT 1 FROM ranking_entries r WHERE r.response_id = responses.id)"""),
    ("SELECT id FROM prompts WHERE import_id = ?",
     """DELETE FROM prompts WHERE id = ?
            AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.prompt_id = prompts.id)
            AND NOT EXISTS (SELECT 1 FROM comparisons c WHERE c.prompt_id = prompts.id)
            AND NOT EXISTS (SELECT 1 FROM rankings r WHERE r.prompt_id = prompts.id)"""),
    ("SELECT id FROM annotators WHERE import_id = ?",
     """DELETE FROM annotators WHERE id = ?
            AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.annotator_id = annotators.id)
            AND NOT EXISTS (SELECT 1 FROM label_events e WHERE e.annotator_id = annotators.id)
            AND NOT EXISTS (SELECT 1 FROM rankings r WHERE r.annotator_id = annotators.id)"""),
)


def discard_imports(project, import_ids: list[int]) -> int:
    """Delete what these imports added, in short chunks like the import itself. Returns how many
    of their comparisons were kept because somebody labeled them meanwhile."""
    if not import_ids:
        return 0
    chunks = Chunks(project)
    conn = project.conn
    # Newest first: a later file's rows can point at an earlier file's (a prompt both hold),
    # and an earlier import's rows are only free to go once the later ones are gone.
    for import_id in sorted(import_ids, reverse=True):
        for select, delete in _DISCARD_STEPS:
            after = 0
            while True:
                with chunks.chunk():
                    ids = [r[0] for r in conn.execute(
                        f"{select} AND id > ? ORDER BY id LIMIT {CHUNK_RECORDS}",
                        (import_id, after))]
                    for row_id in ids:
                        conn.execute(delete, (row_id,))
                        after = row_id
                        if chunks.over_budget():
                            break
                if not ids or after == ids[-1] and len(ids) < CHUNK_RECORDS:
                    break
    with chunks.chunk():
        kept = conn.execute(
            f"SELECT count(*) FROM comparisons WHERE import_id IN ({','.join('?' * len(import_ids))})",
            import_ids).fetchone()[0]
        # What stays (labeled comparisons and what they need) no longer belongs to an import.
        conn.executemany("DELETE FROM imports WHERE id = ?", [(i,) for i in import_ids])
    return kept


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
