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

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from rmstudio.core.errors import FormatError, RmstudioError
from rmstudio.core.data.formats import Limits, iter_records
from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.data import import_chunks
from rmstudio.core.data.import_chunks import Chunks, discard_imports, forget_live, start_import
from rmstudio.core.store.project import Project, utc_now
from rmstudio.core.data.records import PairRecord, PromptRecord, RankingRecord
from rmstudio.core.store.inserts import ProjectWriter, flip_if

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
    chunks = Chunks(project)
    import_ids: list[int] = []
    summaries: list[tuple[str, int]] = []
    done = 0
    try:
        for path in paths:
            file_counts: Counter = Counter()
            import_id = start_import(project, path)
            import_ids.append(import_id)
            chunks.import_ids = import_ids
            writer = ProjectWriter(project, import_id)
            annotator = _Annotators(project, source_annotator_name(path), import_id)
            records = iter_records(path, limits)
            parsed: deque = deque()
            parse_error: BaseException | None = None
            ahead = 64  # records parsed (outside the write lock) per chunk; adapts below
            rows_read = 0
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
                    rows_read += 1
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
                ahead = min(import_chunks.CHUNK_RECORDS, ahead * 2) if not parsed else max(16, written)
            if parse_error is not None:
                raise parse_error
            if not rows_read:
                # An empty file (or only blank lines) is almost always the wrong file or a failed
                # download: an error, so nothing is recorded and no "added 0" reads as success.
                raise FormatError(str(path), "no rows found")
            summaries.append((json.dumps(dict(file_counts)), import_id))
            report.counts.update(file_counts)
        with project.write():  # the moment the whole import becomes visible, all at once
            project.conn.executemany(
                "UPDATE imports SET summary = ?, status = 'done' WHERE id = ?", summaries)
    except BaseException:
        try:
            discard_imports(project, import_ids)
        except Exception:  # noqa: BLE001 - the first error is the one to report;
            pass  # what is left is removed by recover_unfinished_imports at the next open
        raise
    finally:
        forget_live(project, import_ids)
    sink.log(done, {"records": done})
    return report


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
