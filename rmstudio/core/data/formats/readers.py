"""Turn a data file into numbered row dicts, whatever its container format.

Rows are streamed (JSONL, CSV, Parquet) so a multi-gigabyte file never sits in memory at
once, and every way a file can be broken or hostile (bad UTF-8, bad JSON, truncated gzip,
gzip bombs, absurdly long lines) ends as a ``FormatError`` that names the file and line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rmstudio.core.errors import FormatError, LimitError

Row = dict
_GIB = 1024**3
_MIB = 1024**2


@dataclass(frozen=True)
class Limits:
    """Safety limits for reading one file; exceeding any raises ``LimitError``."""

    max_bytes: int = 2 * _GIB
    """Decompressed bytes read per file (guards against gzip bombs)."""
    max_line_bytes: int = 32 * _MIB
    """One JSONL line or one CSV row."""
    max_json_bytes: int = 512 * _MIB
    """Whole-document .json files, which must be loaded at once."""
    max_field_chars: int = 2_000_000
    """Characters in one text field (a prompt or a response)."""
    max_rows: int = 5_000_000
    """Rows per file."""
    max_ranking_responses: int = 64
    """Responses in one ranking row."""


DEFAULT_LIMITS = Limits()

SUPPORTED_EXTENSIONS = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")


def iter_rows(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> Iterator[tuple[int, Row]]:
    """Yield ``(line, row)`` for each record in ``path``, chosen by its extension.

    ``line`` is 1-based: the file line for JSONL and CSV, the element index + 1 for a JSON
    array and for Parquet.
    """
    path = os.fspath(path)
    kind, gzipped = _detect_kind(path)
    _check_is_readable_file(path)
    position = _Position()
    if kind == "parquet":
        rows = _parquet_rows(path, limits, position)
    else:
        rows = _stream_rows(path, kind, gzipped, limits, position)
    for count, (line, row) in enumerate(rows, start=1):
        if count > limits.max_rows:
            raise LimitError(path, f"more than max_rows={limits.max_rows} rows", line=line)
        yield line, row


@dataclass
class _Position:
    """The line being read, so a failure deep in a stream can say where it happened."""

    line: int | None = None


class _StreamProblem(Exception):
    """Raised inside the byte stream; ``iter_rows`` readers turn it into a FormatError."""

    def __init__(self, reason: str, is_limit: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.is_limit = is_limit


def _detect_kind(path: str) -> tuple[str, bool]:
    name = os.path.basename(path).lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[: -len(".gz")]
    for ext in SUPPORTED_EXTENSIONS:
        if name.endswith(ext):
            kind = "jsonl" if ext == ".ndjson" else ext[1:]
            if kind == "parquet" and gzipped:
                raise FormatError(
                    path,
                    "gzip-compressed Parquet is not supported; decompress it first "
                    "(Parquet already compresses its columns)",
                )
            return kind, gzipped
    supported = ", ".join(SUPPORTED_EXTENSIONS)
    raise FormatError(
        path, f"unknown file type; supported extensions are {supported} (optionally with .gz, "
        "except .parquet)"
    )


def _check_is_readable_file(path: str) -> None:
    if os.path.isdir(path):
        raise FormatError(path, "is a directory, not a data file")
    if not os.path.exists(path):
        raise FormatError(path, "file not found")
    if not os.access(path, os.R_OK):
        raise FormatError(path, "cannot read file: permission denied")


class _CountingReader(io.RawIOBase):
    """Counts decompressed bytes as they stream so a gzip bomb stops at ``max_bytes``.

    Decompression errors surface here (on read, not on open), so they are translated too.
    """

    def __init__(self, source: io.BufferedIOBase, max_bytes: int):
        self._source = source
        self._max_bytes = max_bytes
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            n = self._source.readinto(buffer)
        except EOFError:
            raise _StreamProblem("compressed file is truncated") from None
        except (OSError, zlib.error) as exc:
            raise _StreamProblem(f"cannot read file: {exc}") from None
        self.total += n or 0
        if self.total > self._max_bytes:
            raise _StreamProblem(
                f"file is larger than max_bytes={self._max_bytes} bytes (decompressed)",
                is_limit=True,
            )
        return n

    def close(self) -> None:
        self._source.close()
        super().close()


def _open_bytes(path: str, gzipped: bool, limits: Limits) -> io.BufferedReader:
    try:
        source = gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise FormatError(path, f"cannot open file: {exc.strerror or exc}") from None
    return io.BufferedReader(_CountingReader(source, limits.max_bytes), buffer_size=1 << 16)


_READERS: dict[str, Callable] = {}


def _stream_rows(path, kind, gzipped, limits, position) -> Iterator[tuple[int, Row]]:
    stream = _open_bytes(path, gzipped, limits)
    try:
        yield from _READERS[kind](stream, path, limits, position)
    except _StreamProblem as problem:
        error = LimitError if problem.is_limit else FormatError
        raise error(path, problem.reason, line=position.line) from None
    finally:
        stream.close()


def describe_json_type(value) -> str:
    """JSON's name for a value's type, as users see it in their file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _loads(text: str, path: str, line: int | None, where: str = "") -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"invalid JSON{where}: {exc}", line=line) from None
    except (ValueError, RecursionError) as exc:  # huge integer literals, absurd nesting
        raise FormatError(path, f"invalid JSON{where}: {exc}", line=line) from None


def _jsonl_rows(stream, path, limits, position) -> Iterator[tuple[int, Row]]:
    line = 0
    while True:
        line += 1
        position.line = line
        # Bounded readline: a 10 GB single-line file must not be read into memory.
        raw = stream.readline(limits.max_line_bytes + 1)
        if not raw:
            return
        content = raw[:-1] if raw.endswith(b"\n") else raw
        if len(content) > limits.max_line_bytes:
            raise LimitError(
                path, f"line is longer than max_line_bytes={limits.max_line_bytes}", line=line
            )
        if line == 1 and content.startswith(b"\xef\xbb\xbf"):
            content = content[3:]  # a UTF-8 byte order mark, as some editors write
        if not content.strip():
            continue
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(path, f"invalid UTF-8: {exc}", line=line) from None
        value = _loads(text, path, line)
        if not isinstance(value, dict):
            raise FormatError(path, f"expected a JSON object, got {describe_json_type(value)}", line=line)
        yield line, value


def _json_rows(stream, path, limits, position) -> Iterator[tuple[int, Row]]:
    data = stream.read(limits.max_json_bytes + 1)
    if len(data) > limits.max_json_bytes:
        raise LimitError(
            path,
            f"JSON document is larger than max_json_bytes={limits.max_json_bytes}; "
            "convert it to JSONL to stream it",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"invalid UTF-8: {exc}") from None
    if not text.strip():
        raise FormatError(path, "file is empty; expected a JSON array of objects")
    value = _loads(text, path, None)
    if isinstance(value, dict):
        yield 1, value
        return
    if not isinstance(value, list):
        raise FormatError(
            path, f"expected a JSON array of objects or one object, got {describe_json_type(value)}"
        )
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise FormatError(
                path, f"expected a JSON object, got {describe_json_type(item)}", line=index + 1
            )
        yield index + 1, item


def _csv_rows(stream, path, limits, position) -> Iterator[tuple[int, Row]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    physical = {"line": 0}

    def bounded_lines() -> Iterator[str]:
        # One physical line at a time with a bound, so a newline-free file cannot blow up memory.
        while True:
            chunk = text.readline(limits.max_line_bytes + 1)
            if not chunk:
                return
            physical["line"] += 1
            position.line = physical["line"]
            if len(chunk.rstrip("\r\n")) > limits.max_line_bytes:
                raise LimitError(
                    path, f"row is longer than max_line_bytes={limits.max_line_bytes}",
                    line=physical["line"],
                )
            yield chunk

    # field_size_limit is process-wide state in the csv module; restore it when done.
    previous_limit = csv.field_size_limit(limits.max_line_bytes)
    try:
        # strict: a stray or unclosed quote is an error, not silently merged rows.
        reader = csv.reader(bounded_lines(), strict=True)
        header = None
        while True:
            start = physical["line"] + 1  # a quoted field may span lines; report the first
            try:
                fields = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError as exc:
                raise FormatError(path, f"invalid UTF-8: {exc}", line=position.line) from None
            except csv.Error as exc:
                if "field larger than field limit" in str(exc):
                    raise LimitError(
                        path, f"field is longer than max_line_bytes={limits.max_line_bytes}",
                        line=start,
                    ) from None
                raise FormatError(path, f"invalid CSV: {exc}", line=start) from None
            if not fields:
                continue  # blank line
            if header is None:
                header = _check_header(fields, path, start)
                continue
            if len(fields) != len(header):
                raise FormatError(
                    path, f"row has {len(fields)} fields but the header has {len(header)}",
                    line=start,
                )
            yield start, dict(zip(header, fields))
        if header is None:
            raise FormatError(path, "CSV file is empty; a header row is required")
    finally:
        csv.field_size_limit(previous_limit)


def _check_header(fields: list[str], path: str, line: int) -> list[str]:
    names = [name.strip() for name in fields]
    seen: set[str] = set()
    duplicates = sorted({name for name in names if name in seen or seen.add(name)})  # linear
    if duplicates:
        shown = ", ".join(_printable(name) for name in duplicates[:20])
        more = f" and {len(duplicates) - 20} more" if len(duplicates) > 20 else ""
        raise FormatError(path, f"header has duplicate columns: {shown}{more}", line=line)
    return names


def _printable(text: str) -> str:
    """`text` as is when plain, else as a repr, so a message stays on one line."""
    return text if text.isprintable() and text else repr(text)


def _parquet_rows(path, limits, position) -> Iterator[tuple[int, Row]]:
    # Imported here: pyarrow is heavy and only Parquet files need it.
    import pyarrow
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        metadata = parquet.metadata
        uncompressed = sum(
            metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)
        )
        if uncompressed > limits.max_bytes:
            raise LimitError(
                path, f"file is larger than max_bytes={limits.max_bytes} bytes (decompressed)"
            )
        if metadata.num_rows > limits.max_rows:
            raise LimitError(path, f"more than max_rows={limits.max_rows} rows")
        index = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                index += 1
                position.line = index
                yield index, row
    except (pyarrow.ArrowException, OSError, ValueError, OverflowError) as exc:
        # OverflowError: a date or duration beyond what Python's datetime can hold.
        reason = " ".join(str(exc).split())  # Arrow messages can span lines
        raise FormatError(path, f"cannot read Parquet file: {reason}", line=position.line) from None


_READERS.update(jsonl=_jsonl_rows, json=_json_rows, csv=_csv_rows)
