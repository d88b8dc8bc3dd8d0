"""Property tests: no input, however broken, escapes as anything but a FormatError."""

from __future__ import annotations

import gzip

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rmstudio.core.errors import FormatError
from rmstudio.core.data.formats import Limits, iter_records, parse_row
from rmstudio.core.data.records import PairRecord, PromptRecord, RankingRecord

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
RECORD_TYPES = (PairRecord, PromptRecord, RankingRecord)
KNOWN_KEYS = ["prompt", "chosen", "rejected", "response_a", "response_b", "choice", "annotator",
              "strength", "note", "created_at", "responses", "completions", "scores", "ratings",
              "ranks", "ranking", "messages", "score", "rank", "text", "role", "content"]
SMALL = Limits(max_field_chars=500, max_ranking_responses=6, max_line_bytes=4096)

# Bytes that are often near-valid: fragments of real rows mixed with noise.
FRAGMENTS = [b'{"prompt": "p", "chosen": "a b", "rejected": "a c"}\n', b'{"prompt": "q"}\n',
             b"prompt,chosen,rejected\n", b'"x","y z","y w"\n', b"[", b"]", b"{", b"}", b",", b"\n",
             b'"', b"\xff", b"\x00", b"\r\n", b'[{"role": "user", "content": "hi"}]', b"null", b"1e999"]
VALID_FILES = [
    b'{"prompt": "p", "chosen": "a b", "rejected": "a c"}\n\n{"prompt": "q", "responses": ["x", "y"]}\n',
    b'[{"prompt": "p", "response_a": "x", "response_b": "y", "choice": "tie"}, {"messages": [{"role": "user", "content": "u"}]}]',
    b'prompt,chosen,rejected\n"multi\nline",a,b\nq,"[{""role"": ""assistant"", ""content"": ""c""}]",d\n',
]
# A valid file with a few bytes overwritten somewhere: the hardest inputs are nearly right.
mutated_valid = st.tuples(st.sampled_from(VALID_FILES), st.integers(0, 200), st.binary(max_size=3)).map(
    lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + len(t[2]):]
)
file_bytes = st.one_of(
    st.binary(max_size=300),
    mutated_valid,
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=8)), max_size=20).map(b"".join),
)

texts = st.text(max_size=30)
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "bot"]),
                                           "content": st.one_of(texts, st.none())}), max_size=4)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
values = st.recursive(
    st.one_of(scalars, messages),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KNOWN_KEYS), inner, max_size=3)),
    max_leaves=10,
)
LAYOUTS = [("prompt", "chosen", "rejected"), ("chosen", "rejected"), ("prompt", "response_a", "response_b"),
           ("prompt", "response_a", "response_b", "choice", "strength"), ("prompt", "responses"),
           ("prompt", "responses", "scores"), ("prompt",), ("messages",)]
layout_value = st.one_of(texts, messages, st.lists(texts, max_size=4),
                         st.lists(st.one_of(st.integers(), st.floats()), max_size=4),
                         st.sampled_from(["a", "B", "both bad", "x", "2", ""]), st.integers(0, 3))
# Rows shaped like a real layout reach the deep checks; free-form rows probe detection.
rows = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(KNOWN_KEYS), texts), values, max_size=6),
    st.sampled_from(LAYOUTS).flatmap(lambda keys: st.fixed_dictionaries({k: layout_value for k in keys})),
)


def _consume(path) -> list:
    try:
        records = list(iter_records(path, SMALL))
    except FormatError as exc:
        assert exc.path == str(path)
        event("FormatError")
        return []
    event(f"{len(records)} records" if len(records) < 2 else "2+ records")
    assert all(isinstance(r, RECORD_TYPES) for r in records)
    return records


@SETTINGS
@given(data=file_bytes, name=st.sampled_from(["d.jsonl", "d.json", "d.csv", "d.ndjson"]), gz=st.booleans())
def test_arbitrary_files_yield_records_or_format_errors(tmp_path, data, name, gz):
    path = tmp_path / (name + ".gz" if gz else name)
    path.write_bytes(gzip.compress(data) if gz else data)
    _consume(path)


@SETTINGS
@given(data=file_bytes, cut=st.integers(min_value=0, max_value=400))
def test_mangled_gzip_yields_records_or_format_errors(tmp_path, data, cut):
    path = tmp_path / "d.jsonl.gz"
    compressed = gzip.compress(data)
    path.write_bytes(compressed[:cut] + compressed[cut + 1:])  # drop one byte anywhere
    _consume(path)


@SETTINGS
@given(row=rows)
def test_arbitrary_rows_parse_or_raise_format_error(row):
    try:
        record = parse_row(row, 3, "rows.jsonl", SMALL)
    except FormatError as exc:
        assert (exc.path, exc.line) == ("rows.jsonl", 3)
        event("FormatError")
        return
    event(type(record).__name__)
    assert isinstance(record, RECORD_TYPES) and record.line == 3
    assert record.prompt.text.strip()


turn_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@SETTINGS
@given(turns=st.lists(st.tuples(turn_text, turn_text), min_size=1, max_size=4),
       question=turn_text, response_a=turn_text, response_b=turn_text)
def test_implicit_prompt_split_rebuilds_both_originals(turns, question, response_a, response_b):
    dialogue = "".join(f"\n\nHuman: {h}\n\nAssistant: {a}" for h, a in turns)
    prompt = dialogue + f"\n\nHuman: {question}\n\nAssistant:"
    chosen, rejected = prompt + " " + response_a, prompt + " " + response_b
    if chosen == rejected:
        return
    record = parse_row({"chosen": chosen, "rejected": rejected}, 1, "hh.jsonl")
    assert record.prompt.text + record.response_a.text == chosen
    assert record.prompt.text + record.response_b.text == rejected
    assert record.prompt.text.endswith("Assistant:")
    assert len(record.prompt.text) >= len(prompt)  # never cuts inside the shared prompt
