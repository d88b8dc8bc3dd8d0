"""Import preference data files into a project, all or nothing.

An import writes in short chunks (each its own transaction of at most ~50 ms, with a pause
between them), so labels given meanwhile are never held up for long. It is still all or nothing
for the user: until its last chunk is in, the import is 'running' and its comparisons are not
offered for labeling; a bad line, a cancel or a crash removes every row it added (a crash at
the next open, through ``recover_unfinished_imports``), so a project never holds half a file.
Only comparisons somebody labeled while the import ran are kept. Labels that come with the data
(chosen/rejected, rankings) are credited to an annotator named after the source file.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import FormatError, ProjectError, RmstudioError
from .formats import Limits, iter_records
from .progress import NullSink, ProgressSink
from .project import Project, utc_now
from .records import PairRecord, PromptRecord, RankingRecord
from .writer import ProjectWriter, flip_if

PROGRESS_EVERY = 500


class _RecordProblem(ValueError):
    """A record that parsed but cannot be stored; re-raised with its file and line."""


class ImportCancelled(RmstudioError):
    """The user cancelled; nothing of this import was kept."""


@dataclass
class ImportReport:
    files: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        c = self.counts
        parts = [
            f"{c['comparisons_added']} comparisons",
            f"{c['labels_added']} labels",
            f"{c['prompts_added']} prompts",
        ]
        if c["rankings_added"]:
            parts.append(f"{c['rankings_added']} rankings")
        text = "added " + ", ".join(parts)
        if c["duplicates_skipped"]:
            text += f"; skipped {c['duplicates_skipped']} duplicates"
        if c["identical_pairs_skipped"]:
            text += f"; skipped {c['identical_pairs_skipped']} pairs whose two responses are identical"
        if c["label_conflicts_kept"]:
            text += (f"; kept {c['label_conflicts_kept']} stored labels that the file "
                     "contradicts")
        return text


def source_annotator_name(path: Path) -> str:
    """'hh-rlhf.jsonl.gz' -> 'source:hh-rlhf': who the labels in a file come from."""
    name = path.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json", ".csv", ".parquet"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return f"source:{name or path.name}"


def import_files(
    project: Project,
    paths: list[str | Path],
    limits: Limits = Limits(),
    sink: ProgressSink = NullSink(),
) -> ImportReport:
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise FormatError(str(path), "no such file" if not path.exists() else "not a file")
    report = ImportReport(files=[str(p) for p in paths])
    chunks = _Chunks(project)
    import_ids: list[int] = []
    summaries: list[tuple[str, int]] = []
    done = 0
    try:
        for path in paths:
            file_counts: Counter = Counter()
            import_id = _start_import(project, path)
            import_ids.append(import_id)
            chunks.import_ids = import_ids
            writer = ProjectWriter(project, import_id)
            annotator = _Annotators(project, source_annotator_name(path), import_id)
            records = iter_records(path, limits)
            parsed: deque = deque()
            parse_error: BaseException | None = None
            ahead = 64  # records parsed (outside the write lock) per chunk; adapts below
            while True:
                # Parse outside the write lock: that is the pause in which labels get in.
                while parse_error is None and len(parsed) < ahead:
                    try:
                        record = next(records, None)
                    except Exception as exc:  # noqa: BLE001 - raised after the good rows before it
                        parse_error = exc
                        break
                    if record is None:
                        break
                    parsed.append(record)
                if not parsed:
                    break
                with chunks.chunk():
                    writer.forget()  # ids seen in earlier chunks may have been removed since
                    written = 0
                    while parsed and not chunks.over_budget():
                        record = parsed.popleft()
                        try:
                            _add_record(project, writer, record, annotator, file_counts)
                        except _RecordProblem as problem:
                            raise FormatError(str(path), str(problem), line=record.line) from None
                        done += 1
                        written += 1
                        if done % PROGRESS_EVERY == 0:
                            sink.log(done, {"records": done})
                            if sink.should_stop():
                                raise ImportCancelled("import cancelled; the project is unchanged")
                ahead = min(CHUNK_RECORDS, ahead * 2) if not parsed else max(16, written)
            if parse_error is not None:
                raise parse_error
            summaries.append((json.dumps(dict(file_counts)), import_id))
            report.counts.update(file_counts)
        with project.write():  # the moment the whole import becomes visible, all at once
            project.conn.executemany(
                "UPDATE imports SET summary = ?, status = 'done' WHERE id = ?", summaries)
    except BaseException:
        try:
            _discard_imports(project, import_ids)
        except Exception:  # noqa: BLE001 - the first error is the one to report;
            pass  # what is left is removed by recover_unfinished_imports at the next open
        raise
    finally:
        _forget_live(project, import_ids)
    sink.log(done, {"records": done})
    return report


# -- chunked writing -----------------------------------------------------------------------

CHUNK_RECORDS = 5000  # a chunk commits after this many records...
CHUNK_SECONDS = 0.05  # ...or after this long holding the write lock, whichever comes first
# The least pause between two chunks of one import. SQLite's busy handler retries a waiting
# writer 0, 1, 3, 8, 18, 33, 53, 78 and 103 ms after it first met the lock (then every 100 ms):
# a pause of 30 ms after a chunk of <= 50 ms always contains one of those retries, so a label
# written during an import waits at most ~80 ms. Parsing the next records fills the pause.
GAP_SECONDS = 0.03
# A running import whose process is on another machine is taken for dead after this long
# without a chunk (on this machine its process id says whether it still runs).
STALE_AFTER_S = 600.0

_live_lock = threading.Lock()
_live: set[tuple[str, int]] = set()  # (project file, import id) of imports running in this process


class _Chunks:
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


def _project_key(project: Project) -> str:
    return str(Path(project.path).resolve())


def _start_import(project: Project, path: Path) -> int:
    digest = _sha256(path)
    with project.write():
        import_id = project.conn.execute(
            """INSERT INTO imports (path, sha256, imported_at, summary, status, owner, heartbeat)
               VALUES (?, ?, ?, '{}', 'running', ?, ?)""",
            (str(path.resolve()), digest, utc_now(), f"{socket.gethostname()} {os.getpid()}",
             time.time()),
        ).lastrowid
        with _live_lock:  # before the row is visible to anyone else
            _live.add((_project_key(project), import_id))
    return import_id


def _forget_live(project: Project, import_ids: list[int]) -> None:
    key = _project_key(project)
    with _live_lock:
        for import_id in import_ids:
            _live.discard((key, import_id))


# -- removing an unfinished import ---------------------------------------------------------

def recover_unfinished_imports(project: Project) -> list[dict]:
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
        "SELECT id, path, owner, heartbeat FROM imports WHERE status = 'running' ORDER BY id"
    ).fetchall()
    removed = []
    for row in rows:
        if not _is_abandoned(project, row["id"], row["owner"], row["heartbeat"]):
            continue
        kept = _discard_imports(project, [row["id"]])
        removed.append({"id": row["id"], "path": row["path"], "kept_comparisons": kept})
    return removed


def _is_abandoned(project: Project, import_id: int, owner: str | None,
                  heartbeat: float | None) -> bool:
    with _live_lock:
        if (_project_key(project), import_id) in _live:
            return False
    if heartbeat is None or time.time() - heartbeat > STALE_AFTER_S:
        return True
    host, _, pid = (owner or "").rpartition(" ")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's import, still recent: it may well be running
    if int(pid) == os.getpid():
        return True  # this process, but not running: left over by an import that failed
    return not _process_alive(int(pid))


def _process_alive(pid: int) -> bool:
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


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


def _discard_imports(project: Project, import_ids: list[int]) -> int:
    """Delete what these imports added, in short chunks like the import itself. Returns how many
    of their comparisons were kept because somebody labeled them meanwhile."""
    if not import_ids:
        return 0
    chunks = _Chunks(project)
    conn = project.conn
    for import_id in import_ids:
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


class _Annotators:
    """Annotator ids by name, created on first use; unnamed labels belong to the source file."""

    def __init__(self, project: Project, source: str, import_id: int | None = None):
        self.conn = project.conn
        self.source = source
        self.import_id = import_id
        self.ids: dict[str, int] = {}

    def __call__(self, name: str | None) -> int:
        key = name or self.source
        if key not in self.ids:
            row = self.conn.execute("SELECT id FROM annotators WHERE name = ?", (key,)).fetchone()
            self.ids[key] = row[0] if row else self.conn.execute(
                "INSERT INTO annotators (name, kind, import_id, created_at) VALUES (?, ?, ?, ?)",
                (key, "source" if name is None else "human", self.import_id, utc_now())).lastrowid
        return self.ids[key]


def _add_record(project, writer, record, annotator, counts: Counter) -> None:
    if isinstance(record, PairRecord):
        _add_pair(writer, record, annotator, counts)
    elif isinstance(record, RankingRecord):
        _add_ranking(project, writer, record, annotator, counts)
    elif isinstance(record, PromptRecord):
        _, _, added = writer.prompt(record.prompt)
        counts["prompts_added" if added else "duplicates_skipped"] += 1


def _add_pair(writer: ProjectWriter, record: PairRecord, annotator, counts: Counter) -> None:
    prompt_id, prompt_hash, prompt_added = writer.prompt(record.prompt)
    origin = f"import:{writer.import_id}"
    a_id, a_hash, _ = writer.response(prompt_id, record.response_a, origin)
    b_id, b_hash, _ = writer.response(prompt_id, record.response_b, origin)
    if a_id == b_id:  # nothing to prefer; common in scraped data, so skip and count it
        counts["identical_pairs_skipped"] += 1
        counts["prompts_added"] += prompt_added
        return
    comparison_id, added, flipped = writer.comparison(prompt_id, prompt_hash, (a_id, a_hash), (b_id, b_hash))
    counts["prompts_added"] += prompt_added
    counts["comparisons_added"] += added
    outcome = "unlabeled"
    if record.choice is not None:
        outcome = writer.label(comparison_id, annotator(record.annotator),
                               flip_if(record.choice, flipped), record.strength, record.note,
                               record.created_at)
        counts["labels_added"] += outcome == "added"
        counts["label_conflicts_kept"] += outcome == "conflict"
    if not added and outcome != "added":
        counts["duplicates_skipped"] += 1


def _add_ranking(project: Project, writer: ProjectWriter, record: RankingRecord, annotator,
                 counts: Counter) -> None:
    prompt_id, prompt_hash, prompt_added = writer.prompt(record.prompt)
    counts["prompts_added"] += prompt_added
    origin = f"import:{writer.import_id}"
    ids = [writer.response(prompt_id, text, origin)[:2] for text in record.responses]
    if len({i for i, _ in ids}) != len(ids):
        raise _RecordProblem("the ranking lists the same response twice")
    annotator_id = annotator(record.annotator)
    exists = project.conn.execute(
        "SELECT id FROM rankings WHERE prompt_id = ? AND annotator_id = ?", (prompt_id, annotator_id)
    ).fetchone()
    if exists:
        counts["duplicates_skipped"] += 1
        return
    ranking_id = project.conn.execute(
        """INSERT INTO rankings (prompt_id, annotator_id, created_at, scale, import_id)
           VALUES (?, ?, ?, ?, ?)""",
        (prompt_id, annotator_id, writer.now, record.scale, writer.import_id),
    ).lastrowid
    project.conn.executemany(
        "INSERT INTO ranking_entries (ranking_id, response_id, score) VALUES (?, ?, ?)",
        [(ranking_id, rid, score) for (rid, _), score in zip(ids, record.scores)],
    )
    counts["rankings_added"] += 1
    # A ranking implies a preference for every pair in it: store them so they train at once.
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            comparison_id, added, flipped = writer.comparison(prompt_id, prompt_hash, ids[i], ids[j])
            counts["comparisons_added"] += added
            si, sj = record.scores[i], record.scores[j]
            choice = "a" if si > sj else "b" if sj > si else "tie"
            outcome = writer.label(comparison_id, annotator_id, flip_if(choice, flipped), None, None, None)
            counts["labels_added"] += outcome == "added"
            counts["label_conflicts_kept"] += outcome == "conflict"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
