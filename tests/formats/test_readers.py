"""iter_rows: every container format, its gzip variant, and every way a file can be broken."""

from __future__ import annotations

import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rmstudio.core.errors import FormatError, LimitError
from rmstudio.core.data.formats import Limits, iter_rows

ROWS = [{"prompt": "p1", "x": 1}, {"prompt": "p2", "x": 2}]


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def jsonl_bytes(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def csv_bytes(rows) -> bytes:
    lines = [",".join(rows[0])] + [",".join(str(v) for v in r.values()) for r in rows]
    return ("\n".join(lines) + "\n").encode()


# --- each format, plain and gzipped --------------------------------------------------------

@pytest.mark.parametrize("name", ["d.jsonl", "d.ndjson", "D.JSONL", "d.jsonl.gz", "d.NDJSON.GZ"])
def test_jsonl_rows_and_line_numbers(tmp_path, name):
    data = b"\n" + jsonl_bytes(ROWS[:1]) + b"   \n" + jsonl_bytes(ROWS[1:])
    path = write(tmp_path / name, data, gz=name.lower().endswith(".gz"))
    assert list(iter_rows(path)) == [(2, ROWS[0]), (4, ROWS[1])]


def test_jsonl_tolerates_crlf_bom_and_missing_final_newline(tmp_path):
    path = write(tmp_path / "d.jsonl", b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}')
    assert list(iter_rows(path)) == [(1, {"a": 1}), (2, {"a": 2})]


@pytest.mark.parametrize("name", ["d.json", "d.json.gz"])
def test_json_array_rows_are_numbered_by_index(tmp_path, name):
    path = write(tmp_path / name, json.dumps(ROWS, indent=2).encode(), gz=name.endswith(".gz"))
    assert list(iter_rows(path)) == [(1, ROWS[0]), (2, ROWS[1])]


def test_json_single_object_is_one_row(tmp_path):
    path = write(tmp_path / "d.json", json.dumps(ROWS[0]).encode())
    assert list(iter_rows(path)) == [(1, ROWS[0])]


@pytest.mark.parametrize("name", ["d.csv", "d.CSV.gz"])
def test_csv_rows_are_strings_keyed_by_header(tmp_path, name):
    path = write(tmp_path / name, csv_bytes(ROWS), gz=name.endswith(".gz"))
    assert list(iter_rows(path)) == [(2, {"prompt": "p1", "x": "1"}), (3, {"prompt": "p2", "x": "2"})]


def test_csv_line_number_is_where_a_multiline_record_starts(tmp_path):
    buffer = tmp_path / "d.csv"
    with open(buffer, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "note"])
        writer.writerow(["line one\nline two\nline three", "n"])
        writer.writerow(["after", "m"])
    rows = list(iter_rows(buffer))
    assert [line for line, _ in rows] == [2, 5]
    assert rows[0][1]["prompt"] == "line one\nline two\nline three"


def test_parquet_rows_keep_nested_lists(tmp_path):
    rows = [{"prompt": "p", "chosen": [{"role": "assistant", "content": "c"}]}] * 3
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)
    assert list(iter_rows(path)) == [(i + 1, rows[0]) for i in range(3)]


# --- files that are not data files ---------------------------------------------------------

def test_unknown_extension_lists_supported_ones(tmp_path):
    path = write(tmp_path / "d.txt", b"hello")
    with pytest.raises(FormatError, match=r"\.jsonl.*\.ndjson.*\.json.*\.csv.*\.parquet") as err:
        list(iter_rows(path))
    assert err.value.path == str(path)


def test_gzipped_parquet_is_refused_clearly(tmp_path):
    path = write(tmp_path / "d.parquet.gz", b"whatever")
    with pytest.raises(FormatError, match="gzip-compressed Parquet"):
        list(iter_rows(path))


def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match="file not found") as err:
        list(iter_rows(tmp_path / "nope.jsonl"))
    assert "nope.jsonl" in str(err.value)


def test_directory(tmp_path):
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(FormatError, match="is a directory"):
        list(iter_rows(tmp_path / "dir.jsonl"))


# --- broken content ------------------------------------------------------------------------

def test_invalid_json_names_line_and_json_error(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"a": 1}\n{"a": 1,,}\n')
    with pytest.raises(FormatError) as err:
        list(iter_rows(path))
    assert err.value.line == 2
    assert "invalid JSON" in str(err.value) and "Expecting property name" in str(err.value)
    assert str(path) in str(err.value) and "line 2" in str(err.value)


def test_non_object_row(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(FormatError, match="line 3: expected a JSON object, got a list"):
        list(iter_rows(path))


def test_json_array_item_that_is_not_an_object(tmp_path):
    path = write(tmp_path / "d.json", b'[{"a": 1}, "text"]')
    with pytest.raises(FormatError, match="line 2: expected a JSON object, got a string"):
        list(iter_rows(path))


@pytest.mark.parametrize("data", [b"42", b"", b"[1,"])
def test_json_document_that_is_not_rows(tmp_path, data):
    with pytest.raises(FormatError):
        list(iter_rows(write(tmp_path / "d.json", data)))


@pytest.mark.parametrize("name", ["d.jsonl", "d.json", "d.csv"])
def test_invalid_utf8(tmp_path, name):
    data = {"d.jsonl": b'{"a": "\xff"}\n', "d.json": b'[{"a": "\xff"}]', "d.csv": b"a\n\xff\n"}[name]
    with pytest.raises(FormatError, match="invalid UTF-8"):
        list(iter_rows(write(tmp_path / name, data)))


def test_deep_nesting_is_a_format_error(tmp_path):
    path = write(tmp_path / "d.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n")
    with pytest.raises(FormatError, match="line 1"):
        list(iter_rows(path))


def test_csv_without_header(tmp_path):
    with pytest.raises(FormatError, match="header row is required"):
        list(iter_rows(write(tmp_path / "d.csv", b"")))


def test_csv_row_with_wrong_field_count(tmp_path):
    path = write(tmp_path / "d.csv", b"prompt,x\np,1\nq,2,3\n")
    with pytest.raises(FormatError, match="line 3: row has 3 fields but the header has 2"):
        list(iter_rows(path))


def test_csv_duplicate_header(tmp_path):
    with pytest.raises(FormatError, match="duplicate columns: prompt"):
        list(iter_rows(write(tmp_path / "d.csv", b"prompt,prompt\na,b\n")))


def test_csv_unterminated_quote(tmp_path):
    with pytest.raises(FormatError, match="invalid CSV"):
        list(iter_rows(write(tmp_path / "d.csv", b'prompt\n"never closed\n', )))


def test_truncated_gzip(tmp_path):
    data = gzip.compress(jsonl_bytes(ROWS * 500))
    path = write(tmp_path / "d.jsonl.gz", data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated") as err:
        list(iter_rows(path))
    assert err.value.line is not None


def test_file_that_is_not_gzip(tmp_path):
    with pytest.raises(FormatError, match="cannot read file"):
        list(iter_rows(write(tmp_path / "d.jsonl.gz", jsonl_bytes(ROWS))))


def test_corrupt_gzip_data(tmp_path):
    data = bytearray(gzip.compress(jsonl_bytes(ROWS * 50)))
    data[20:40] = b"\x00" * 20
    with pytest.raises(FormatError):
        list(iter_rows(write(tmp_path / "d.jsonl.gz", bytes(data))))


def test_corrupt_parquet(tmp_path):
    with pytest.raises(FormatError, match="cannot read Parquet"):
        list(iter_rows(write(tmp_path / "d.parquet", b"PAR1 this is not parquet PAR1")))


# --- limits --------------------------------------------------------------------------------

def test_gzip_bomb_stops_at_max_bytes(tmp_path):
    bomb = write(tmp_path / "bomb.jsonl.gz", b"\n" * 5_000_000, gz=True)
    assert bomb.stat().st_size < 10_000
    with pytest.raises(LimitError, match="max_bytes=100000") as err:
        list(iter_rows(bomb, Limits(max_bytes=100_000)))
    assert err.value.path == str(bomb)


def test_long_jsonl_line(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"a": 1}\n' + b'{"a": "' + b"x" * 500 + b'"}\n')
    with pytest.raises(LimitError, match="line 2.*max_line_bytes=100"):
        list(iter_rows(path, Limits(max_line_bytes=100)))
    assert len(list(iter_rows(path, Limits(max_line_bytes=600)))) == 2


def test_long_csv_row_and_field(tmp_path):
    path = write(tmp_path / "d.csv", b"prompt\n" + b"x" * 500 + b"\n")
    with pytest.raises(LimitError, match="line 2.*max_line_bytes=100"):
        list(iter_rows(path, Limits(max_line_bytes=100)))
    multiline = write(tmp_path / "m.csv", b'prompt\n"' + b"xxxxx\n" * 50 + b'"\n')
    with pytest.raises(LimitError, match="max_line_bytes=100"):
        list(iter_rows(multiline, Limits(max_line_bytes=100)))


def test_csv_field_size_limit_is_restored(tmp_path):
    before = csv.field_size_limit()
    list(iter_rows(write(tmp_path / "d.csv", csv_bytes(ROWS)), Limits(max_line_bytes=1000)))
    assert csv.field_size_limit() == before


def test_json_document_size(tmp_path):
    path = write(tmp_path / "d.json", json.dumps(ROWS * 100).encode())
    with pytest.raises(LimitError, match="max_json_bytes=1000"):
        list(iter_rows(path, Limits(max_json_bytes=1000)))


@pytest.mark.parametrize("name", ["d.jsonl", "d.csv", "d.parquet"])
def test_max_rows(tmp_path, name):
    rows = [{"prompt": f"p{i}"} for i in range(5)]
    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        write(path, csv_bytes(rows) if name.endswith(".csv") else jsonl_bytes(rows))
    with pytest.raises(LimitError, match="max_rows=3"):
        list(iter_rows(path, Limits(max_rows=3)))
    assert len(list(iter_rows(path, Limits(max_rows=5)))) == 5
