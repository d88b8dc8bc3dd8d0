"""An empty import file is an error naming the file, and the project is left as it was."""

from __future__ import annotations

import gzip

import pytest

from rmstudio.core.data.importer import import_files
from rmstudio.core.errors import FormatError


def _imports(project) -> int:
    return project.conn.execute("SELECT count(*) FROM imports").fetchone()[0]


@pytest.mark.parametrize("name, content", [
    ("empty.jsonl", b""), ("blank.jsonl", b"\n\n   \n"), ("empty.csv", b""),
    ("empty.json", b"[]"), ("empty.jsonl.gz", gzip.compress(b"\n\n")),
])
def test_an_empty_file_is_an_error_and_records_nothing(project, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    before = project.counts()
    with pytest.raises(FormatError) as info:
        import_files(project, [path])
    message = str(info.value)
    assert str(path) in message and len(message.splitlines()) == 1
    assert project.counts() == before and _imports(project) == 0
    # an empty CSV is refused earlier, for its missing header row
    assert message.endswith("no rows found") or name == "empty.csv"


def test_an_empty_file_among_good_ones_undoes_the_whole_import(project, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(FormatError, match="empty.jsonl: no rows found"):
        import_files(project, [good, empty])
    assert project.counts()["comparisons"] == 0 and _imports(project) == 0
