"""Export a project's labels in the shapes TRL, transformers and `datasets` load unchanged.

Schemas:
- ``explicit``: {"prompt", "chosen", "rejected"} as text (TRL's explicit-prompt preference form).
- ``conversational``: the same keys as lists of {"role", "content"} messages.
- ``labels``: one row per label and annotator, nothing aggregated (ties, both-bad, skips,
  strength and notes included); it imports back as the same labels.

For the two TRL forms each comparison contributes one row, oriented by the majority of its
a/b labels; comparisons without a majority (only ties, or votes split evenly) are left out and
counted in the report.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rmstudio.core.store.durable import fsync_folder
from rmstudio.core.errors import RmstudioError
from rmstudio.core.data.formats import hh_to_messages
from rmstudio.core.store.project import Project

SCHEMAS = ("explicit", "conversational", "labels")
FILE_FORMATS = ("jsonl", "json", "parquet", "csv")


class ExportError(RmstudioError):
    pass


@dataclass
class ExportReport:
    path: str
    rows: int = 0
    skipped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        text = f"wrote {self.rows} rows to {self.path}"
        if self.skipped:
            text += " (left out: " + ", ".join(f"{n} {why}" for why, n in self.skipped.items()) + ")"
        return text


def file_format_of(path: Path, explicit: str | None) -> str:
    if explicit:
        if explicit not in FILE_FORMATS:
            raise ExportError(f"unknown format {explicit!r}; use one of {', '.join(FILE_FORMATS)}")
        return explicit
    name = path.name.lower().removesuffix(".gz")
    for fmt, suffixes in {"jsonl": (".jsonl", ".ndjson"), "json": (".json",),
                          "parquet": (".parquet",), "csv": (".csv",)}.items():
        if name.endswith(suffixes):
            return fmt
    raise ExportError(f"cannot tell the format of {path.name} from its extension; "
                      f"name it .jsonl, .json, .parquet or .csv, or pass --format")


def export_project(project: Project, out: str | Path, schema: str = "explicit",
                   file_format: str | None = None, annotator: str | None = None) -> ExportReport:
    out = Path(out)
    if schema not in SCHEMAS:
        raise ExportError(f"unknown schema {schema!r}; use one of {', '.join(SCHEMAS)}")
    fmt = file_format_of(out, file_format)
    if fmt == "csv" and schema == "conversational":
        raise ExportError("CSV cannot hold message lists; export conversational data as .jsonl or .parquet")
    if not out.parent.exists():
        raise ExportError(f"cannot write {out}: folder {out.parent} does not exist")
    report = ExportReport(str(out))
    if schema == "labels":
        rows = list(_label_rows(project, annotator, flatten=fmt in ("parquet", "csv")))
    else:
        rows = list(_preference_rows(project, schema, annotator, report.skipped))
    report.rows = len(rows)
    _write_atomically(out, fmt, rows)
    return report


def _preference_rows(project: Project, schema: str, annotator: str | None,
                     skipped: Counter) -> Iterator[dict]:
    where, params = ("AND a.name = ?", (annotator,)) if annotator else ("", ())
    query = f"""
        SELECT c.id,
               sum(l.choice = 'a') AS votes_a, sum(l.choice = 'b') AS votes_b,
               p.text AS pt, p.messages AS pm, ra.text AS at, ra.messages AS am,
               rb.text AS bt, rb.messages AS bm
        FROM comparisons c
        JOIN labels l ON l.comparison_id = c.id
        JOIN annotators a ON a.id = l.annotator_id
        JOIN prompts p ON p.id = c.prompt_id
        JOIN responses ra ON ra.id = c.response_a_id
        JOIN responses rb ON rb.id = c.response_b_id
        WHERE l.choice <> 'skip' {where}
        GROUP BY c.id ORDER BY c.id"""
    for row in project.conn.execute(query, params):
        if row["votes_a"] == row["votes_b"]:
            skipped["with no a/b majority (ties, both bad or split votes)"] += 1
            continue
        a_wins = row["votes_a"] > row["votes_b"]
        prompt = (row["pt"], row["pm"])
        chosen, rejected = ((row["at"], row["am"]), (row["bt"], row["bm"]))
        if not a_wins:
            chosen, rejected = rejected, chosen
        if schema == "explicit":
            yield {"prompt": prompt[0], "chosen": chosen[0], "rejected": rejected[0]}
        else:
            yield {"prompt": _prompt_messages(*prompt), "chosen": _response_messages(*chosen),
                   "rejected": _response_messages(*rejected)}


def _label_rows(project: Project, annotator: str | None, flatten: bool) -> Iterator[dict]:
    where, params = ("WHERE a.name = ?", (annotator,)) if annotator else ("", ())
    query = f"""
        SELECT p.text AS pt, p.messages AS pm, ra.text AS at, ra.messages AS am,
               rb.text AS bt, rb.messages AS bm, a.name AS annotator,
               l.choice, l.strength, l.note, l.created_at
        FROM labels l
        JOIN annotators a ON a.id = l.annotator_id
        JOIN comparisons c ON c.id = l.comparison_id
        JOIN prompts p ON p.id = c.prompt_id
        JOIN responses ra ON ra.id = c.response_a_id
        JOIN responses rb ON rb.id = c.response_b_id
        {where} ORDER BY l.comparison_id, a.name"""
    for row in project.conn.execute(query, params):
        yield {
            "prompt": _as_given(row["pt"], row["pm"], flatten),
            "response_a": _as_given(row["at"], row["am"], flatten),
            "response_b": _as_given(row["bt"], row["bm"], flatten),
            "choice": row["choice"], "annotator": row["annotator"], "strength": row["strength"],
            "note": row["note"], "created_at": row["created_at"],
        }


def _as_given(text: str, messages: str | None, flatten: bool):
    """Text as stored: plain text, or the message list (JSON-encoded where the file format
    needs one type per column; the importer reads it back as messages)."""
    if messages is None:
        return text
    return messages if flatten else json.loads(messages)


def _prompt_messages(text: str, messages: str | None) -> list[dict]:
    if messages is not None:
        return json.loads(messages)
    parsed = hh_to_messages(text)
    if parsed:
        return [{"role": m.role, "content": m.content} for m in parsed]
    return [{"role": "user", "content": text}]


def _response_messages(text: str, messages: str | None) -> list[dict]:
    if messages is not None:
        return json.loads(messages)
    return [{"role": "assistant", "content": text.strip()}]


def _write_atomically(out: Path, fmt: str, rows: list[dict]) -> None:
    """Write next to the target and rename, so a failed export never leaves half a file.

    On any failure (a full disk included) the temp file is removed and a file already at
    ``out`` keeps its old bytes; an OSError becomes an ExportError naming ``out`` (the temp
    file's random name would mean nothing to the user).
    """
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as exc:  # e.g. a read-only folder: nothing was created, nothing to remove
        raise ExportError(f"cannot write {out}: {_reason(exc)}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp creates the file 0600; an export is an ordinary file the user shares, so give
        # it the mode open() would have given it: 0666 less the umask.
        os.chmod(tmp, 0o666 & ~_umask())
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(rows) if rows else pa.table({})
            pq.write_table(table, tmp)
        else:
            opener = gzip.open if out.name.lower().endswith(".gz") else open
            with opener(tmp, "wt", encoding="utf-8", newline="") as fh:
                _write_text(fh, fmt, rows)
        # The data must be on disk before the rename: otherwise a crash soon after can leave
        # ``out`` renamed but empty, having replaced a good previous export.
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ExportError(f"cannot write {out}: {_reason(exc)}") from exc
        raise
    fsync_folder(out.parent)


def _reason(exc: OSError) -> str:
    """'No space left on device' rather than '[Errno 28] No space left on device: '/x/.y.abc''."""
    return exc.strerror or str(exc) or type(exc).__name__


def _umask() -> int:
    """The process umask, read without changing it where the OS allows: os.umask can only set
    it, and a briefly changed umask applies to files other threads create meanwhile."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:  # Linux 4.7+
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Elsewhere set a strict mask for the instant it takes to read the old one: a file another
    # thread creates meanwhile comes out more private, never more open.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _write_text(fh, fmt: str, rows: list[dict]) -> None:
    if fmt == "jsonl":
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "json":
        json.dump(rows, fh, ensure_ascii=False, indent=1)
    else:
        import csv

        fields = list(rows[0]) if rows else ["prompt", "chosen", "rejected"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
