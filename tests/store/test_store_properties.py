"""Property-based tests: export then import gives the data back; bad input never half-writes."""

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmstudio.core.errors import FormatError
from rmstudio.core.data.exporter import export_project
from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
text = st.text(min_size=1, max_size=40)
prompt_text = text.filter(lambda s: s.strip() != "")


@st.composite
def explicit_rows(draw):
    prompts = draw(st.lists(prompt_text, min_size=1, max_size=8, unique=True))
    rows = []
    for prompt in prompts:
        chosen = draw(text)
        rejected = draw(text.filter(lambda s, c=chosen: s != c))
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows


def messages(role, content=text):
    return st.lists(st.fixed_dictionaries({"role": st.just(role), "content": content}), min_size=1, max_size=3)


@st.composite
def conversational_rows(draw):
    rows, seen = [], set()
    for _ in range(draw(st.integers(1, 5))):
        prompt = draw(messages("user", prompt_text))
        key = json.dumps(prompt, sort_keys=True)  # hypothesis may order a message's keys either way
        if key in seen:
            continue
        seen.add(key)
        chosen = draw(messages("assistant"))
        rejected = draw(messages("assistant").filter(lambda m, c=chosen: m != c))
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return rows


def round_trip(rows, schema, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / f"in{suffix}"
        if suffix == ".jsonl":
            source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), source)
        with Project.create(tmp / "p") as project:
            import_files(project, [source])
            out = tmp / f"out{suffix}"
            export_project(project, out, schema=schema)
        if suffix == ".jsonl":
            return [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
        import pyarrow.parquet as pq

        return pq.read_table(out).to_pylist()


@SETTINGS
@given(explicit_rows(), st.sampled_from([".jsonl", ".parquet"]))
def test_explicit_round_trip_gives_the_rows_back(rows, suffix):
    assert round_trip(rows, "explicit", suffix) == rows


@SETTINGS
@given(conversational_rows())
def test_conversational_round_trip_gives_the_rows_back(rows):
    assert round_trip(rows, "conversational", ".jsonl") == rows


@SETTINGS
@given(explicit_rows(), st.binary(min_size=1, max_size=200), st.sampled_from([".jsonl", ".csv", ".json"]))
def test_a_corrupt_file_changes_nothing(rows, garbage, suffix):
    """A good import, then a file of good rows plus garbage: either it imports, or it fails with
    a FormatError and the project is exactly as it was."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        good = tmp / "good.jsonl"
        good.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        bad = tmp / f"bad{suffix}"
        bad.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows[:2]) + garbage)
        with Project.create(tmp / "p") as project:
            import_files(project, [good])
            before = dump(project)
            try:
                import_files(project, [bad])
            except FormatError as error:
                assert str(bad) in str(error)
                assert dump(project) == before


def dump(project):
    tables = ["prompts", "responses", "comparisons", "labels", "annotators", "imports", "rankings"]
    return {t: [tuple(r) for r in project.conn.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in tables}
