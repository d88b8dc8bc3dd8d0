"""parse_row / iter_records: layout detection, text and message handling, and error detail."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from rmstudio.core.errors import FormatError, LimitError
from rmstudio.core.data.formats import Limits, hh_to_messages, iter_records, parse_row, render_messages
from rmstudio.core.data.records import Message, PairRecord, PromptRecord, RankingRecord, Text

_REPO_EXAMPLE = Path(__file__).resolve().parents[2] / "resources/examples/hh-rlhf-harmless-base-test.jsonl.gz"
HH_EXAMPLE = _REPO_EXAMPLE if _REPO_EXAMPLE.exists() else Path(
    "/work/shared/datasets/hh-rlhf-harmless-base-test.jsonl.gz"
)


DEFAULTS = Limits()


def parse(row, limits=DEFAULTS):
    return parse_row(row, 7, "data.jsonl", limits)


def error_for(row, limits=DEFAULTS, kind=FormatError) -> FormatError:
    with pytest.raises(kind) as err:
        parse(row, limits)
    assert err.value.path == "data.jsonl" and err.value.line == 7
    return err.value


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


# --- the real HH-RLHF file -----------------------------------------------------------------

@pytest.mark.skipif(not HH_EXAMPLE.exists(), reason="HH-RLHF example file not available")
def test_hh_rlhf_file_splits_exactly():
    with gzip.open(HH_EXAMPLE, "rt", encoding="utf-8") as f:
        originals = [json.loads(line) for line in f if line.strip()]
    records = list(iter_records(HH_EXAMPLE))
    assert len(records) == len(originals) == 2312
    for record, original in zip(records, originals):
        assert isinstance(record, PairRecord) and record.choice == "a" and record.annotator is None
        assert record.prompt.text + record.response_a.text == original["chosen"]
        assert record.prompt.text + record.response_b.text == original["rejected"]
        assert record.prompt.text.endswith("Assistant:")
        assert record.prompt.messages is None
    assert [r.line for r in records] == list(range(1, 2313))


# --- chosen / rejected ---------------------------------------------------------------------

def test_explicit_prompt_strings():
    record = parse({"prompt": "Q?", "chosen": "good", "rejected": "bad", "extra": 1})
    assert record == PairRecord(Text("Q?"), Text("good"), Text("bad"), choice="a", line=7)


def test_explicit_prompt_messages():
    record = parse({
        "prompt": [{"role": "system", "content": "Be nice."}, user("Hi")],
        "chosen": [assistant("Hello!")],
        "rejected": [assistant("Go away.")],
    })
    assert record.prompt.text == "System: Be nice.\n\nUser: Hi"
    assert record.prompt.messages == (Message("system", "Be nice."), Message("user", "Hi"))
    assert record.response_a == Text("Hello!", (Message("assistant", "Hello!"),))
    assert record.response_b.text == "Go away."


def test_implicit_prompt_takes_last_shared_assistant_marker():
    prompt = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant:"
    record = parse({"chosen": prompt + " I think so", "rejected": prompt + " I don't"})
    assert record.prompt.text == prompt
    assert (record.response_a.text, record.response_b.text) == (" I think so", " I don't")


def test_implicit_prompt_ignores_markers_past_the_divergence():
    shared = "\n\nHuman: q\n\nAssistant:"
    chosen = shared + " a\n\nHuman: more\n\nAssistant: b"
    record = parse({"chosen": chosen, "rejected": shared + " c"})
    assert record.prompt.text == shared and record.response_a.text == chosen[len(shared):]


def test_implicit_prompt_falls_back_to_whitespace_boundary():
    record = parse({"chosen": "The capital of France is Paris.", "rejected": "The capital of France is Lyon."})
    assert record.prompt.text == "The capital of France is"
    assert (record.response_a.text, record.response_b.text) == (" Paris.", " Lyon.")


def test_implicit_prompt_allows_an_empty_response():
    record = parse({"chosen": "\n\nHuman: q\n\nAssistant:", "rejected": "\n\nHuman: q\n\nAssistant: x"})
    assert record.response_a.text == "" and record.response_b.text == " x"


def test_implicit_identical_is_an_error():
    assert "identical" in str(error_for({"chosen": "same text", "rejected": "same text"}))


def test_implicit_without_any_shared_prompt():
    err = error_for({"chosen": "Yes", "rejected": "No"})
    assert "add a 'prompt' field" in str(err) and err.field == "chosen"


def test_implicit_prompt_messages():
    shared = [user("q"), assistant("a"), user("q2")]
    record = parse({"chosen": shared + [assistant("good")], "rejected": shared + [assistant("bad")]})
    assert record.prompt.messages == tuple(Message(m["role"], m["content"]) for m in shared)
    assert record.prompt.text == "User: q\n\nAssistant: a\n\nUser: q2"
    assert record.response_a.text == "good" and record.response_b.messages == (Message("assistant", "bad"),)


def test_implicit_messages_need_a_response_on_both_sides():
    err = error_for({"chosen": [user("q"), assistant("a")], "rejected": [user("q")]})
    assert err.field == "rejected" and "no messages after the shared prompt" in str(err)


def test_implicit_mixed_text_and_messages():
    error_for({"chosen": "\n\nHuman: q", "rejected": [user("q")]})


def test_chosen_without_rejected():
    assert error_for({"prompt": "p", "chosen": "c"}).field == "rejected"


# --- A/B pairs and labels ------------------------------------------------------------------

def test_unlabeled_pair():
    record = parse({"prompt": "p", "response_a": "x", "response_b": "", "annotator": "ignored"})
    assert record == PairRecord(Text("p"), Text("x"), Text(""), line=7)


@pytest.mark.parametrize("raw, choice", [("a", "a"), ("B", "b"), (" tie ", "tie"), ("both-bad", "both_bad"),
                                         ("Both Bad", "both_bad"), ("skip", "skip")])
def test_labeled_pair_choices(raw, choice):
    record = parse({"prompt": "p", "response_a": "x", "response_b": "y", "choice": raw, "annotator": "ann",
                    "strength": 2, "note": "because", "created_at": "2024-01-01T00:00:00Z"})
    assert (record.choice, record.annotator, record.strength, record.note, record.created_at) == (
        choice, "ann", 2, "because", "2024-01-01T00:00:00Z")


def test_labeled_pair_from_csv_strings():
    record = parse({"prompt": "p", "response_a": "x", "response_b": "y", "choice": "a", "annotator": "",
                    "strength": "1", "note": "", "created_at": ""})
    assert (record.annotator, record.strength, record.note, record.created_at) == (None, 1, None, None)


def test_empty_choice_means_unlabeled():
    assert parse({"prompt": "p", "response_a": "x", "response_b": "y", "choice": ""}).choice is None


@pytest.mark.parametrize("field, value", [("choice", "c"), ("choice", 1), ("strength", 3), ("strength", True),
                                          ("annotator", 5), ("note", ["x"])])
def test_bad_label_fields(field, value):
    row = {"prompt": "p", "response_a": "x", "response_b": "y", "choice": "a", field: value}
    assert error_for(row).field == field


def test_ab_pair_needs_prompt():
    assert error_for({"response_a": "x", "response_b": "y"}).field == "prompt"


# --- rankings ------------------------------------------------------------------------------

def test_ranking_order_is_list_order():
    record = parse({"prompt": "p", "responses": ["best", "mid", "worst"]})
    assert isinstance(record, RankingRecord)
    assert [r.text for r in record.responses] == ["best", "mid", "worst"]
    assert record.scores[0] > record.scores[1] > record.scores[2]


def test_ranking_item_scores_and_ranks():
    scored = parse({"prompt": "p", "completions": [{"text": "a", "score": 0.5}, {"content": "b", "score": 2}]})
    assert scored.scores == (0.5, 2.0) and [r.text for r in scored.responses] == ["a", "b"]
    ranked = parse({"prompt": "p", "responses": [{"response": "a", "rank": 2}, {"completion": "b", "rank": 1}]})
    assert ranked.scores == (-2.0, -1.0)


@pytest.mark.parametrize("key, values, expected", [("scores", [1, 3], (1.0, 3.0)), ("ratings", [5, 4], (5.0, 4.0)),
                                                    ("ranks", [2, 1], (-2.0, -1.0)), ("ranking", [1, 2], (-1.0, -2.0))])
def test_ranking_row_level_scores(key, values, expected):
    assert parse({"prompt": "p", "responses": ["a", "b"], key: values}).scores == expected


@pytest.mark.parametrize("row, scale", [
    ({"responses": ["a", "b"], "ratings": [5, 4]}, "rating"),
    ({"responses": ["a", "b"], "scores": [0.1, 0.3]}, "rating"),
    ({"responses": [{"text": "a", "rating": 7}, {"text": "b", "rating": 2}]}, "rating"),
    ({"responses": [{"text": "a", "rank": 1}, {"text": "b", "rank": 2}]}, "order"),
    ({"responses": ["a", "b"], "ranks": [2, 1]}, "order"),
    ({"responses": ["a", "b"]}, "order"),
])
def test_ranking_scale_says_whether_scores_are_ratings(row, scale):
    """Ratings and scores are kept as a regression target; ranks and list order only order."""
    assert parse({"prompt": "p", **row}).scale == scale


def test_ranking_from_csv_json_cells():
    record = parse({"prompt": "p", "responses": '["a", "b"]', "scores": "[1, 2]"})
    assert record.scores == (1.0, 2.0)


@pytest.mark.parametrize("row, field", [
    ({"prompt": "p", "responses": ["only"]}, "responses"),
    ({"prompt": "p", "responses": "not a list"}, "responses"),
    ({"prompt": "p", "responses": ["a", "b"], "scores": [1]}, "scores"),
    ({"prompt": "p", "responses": ["a", "b"], "scores": [1, math.nan]}, "scores[1]"),
    ({"prompt": "p", "responses": ["a", "b"], "scores": [1, True]}, "scores[1]"),
    ({"prompt": "p", "responses": ["a", "b"], "scores": [1, "2"]}, "scores[1]"),
    ({"prompt": "p", "responses": ["a", "b"], "scores": [1, 2], "ranks": [1, 2]}, "responses"),
    ({"prompt": "p", "responses": [{"text": "a", "score": 1}, {"text": "b"}]}, "responses"),
    ({"prompt": "p", "responses": [{"text": "a", "score": 1}, {"text": "b", "rank": 1}]}, "responses"),
    ({"prompt": "p", "responses": [{"text": "a", "score": math.inf}, {"text": "b", "score": 1}]}, "responses[0].score"),
    ({"prompt": "p", "responses": [{"txt": "a"}, "b"]}, "responses[0]"),
    ({"prompt": "p", "responses": [None, "b"]}, "responses[0]"),
])
def test_bad_rankings(row, field):
    assert error_for(row).field == field


def test_ranking_response_limit():
    row = {"prompt": "p", "responses": [str(i) for i in range(5)]}
    err = error_for(row, Limits(max_ranking_responses=4), kind=LimitError)
    assert "max_ranking_responses=4" in str(err)


# --- prompts -------------------------------------------------------------------------------

def test_prompt_alone():
    assert parse({"prompt": "hello", "id": 3}) == PromptRecord(Text("hello"), line=7)


def test_messages_alone():
    record = parse({"messages": [user("hello")]})
    assert record.prompt == Text("hello", (Message("user", "hello"),))


def test_messages_ending_with_assistant_is_not_a_prompt():
    assert "assistant turn" in str(error_for({"messages": [user("q"), assistant("a")]}))


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt(prompt):
    err = error_for({"prompt": prompt, "chosen": "a", "rejected": "b"})
    assert err.field == "prompt" and "prompt is empty" in str(err)


def test_unrecognised_row_names_keys_and_layouts():
    message = str(error_for({"question": "q", "answer": "a"}))
    assert "'question', 'answer'" in message and "prompt+chosen+rejected" in message


# --- text fields ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, described", [(None, "null"), (3, "a number"), ({"a": 1}, "an object"),
                                              (False, "a boolean")])
def test_non_text_values(value, described):
    err = error_for({"prompt": "p", "chosen": value, "rejected": "b"})
    assert err.field == "chosen"
    assert f"expected text or a list of messages, got {described}" in str(err)
    assert "data.jsonl, line 7, field 'chosen'" in str(err)


@pytest.mark.parametrize("message, field", [
    ({"role": "robot", "content": "x"}, "chosen[1].role"),
    ({"content": "x"}, "chosen[1].role"),
    ({"role": "assistant", "content": None}, "chosen[1].content"),
    ("not a message", "chosen[1]"),
])
def test_bad_messages_name_the_exact_field(message, field):
    assert error_for({"prompt": "p", "chosen": [assistant("ok"), message], "rejected": "b"}).field == field


def test_empty_message_list():
    assert "empty" in str(error_for({"prompt": [], "chosen": "a", "rejected": "b"}))


def test_csv_cells_holding_messages_as_json():
    cell = '  [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "?"}]'
    record = parse({"prompt": cell, "chosen": "a", "rejected": "b"})
    assert record.prompt.messages[1] == Message("assistant", "yo")


@pytest.mark.parametrize("cell", ['[{"a": 1}]', "[{not json", '[{"role": "user"}]', "[1, 2]"])
def test_csv_cells_that_only_look_like_messages_stay_text(cell):
    assert parse({"prompt": cell, "chosen": "a", "rejected": "b"}).prompt == Text(cell)


def test_lone_surrogate_is_rejected():
    assert error_for({"prompt": "p", "chosen": "a\ud800", "rejected": "b"}).field == "chosen"


def test_field_length_limit():
    limits = Limits(max_field_chars=10)
    assert error_for({"prompt": "p", "chosen": "x" * 11, "rejected": "b"}, limits, LimitError).field == "chosen"
    long_messages = [assistant("x" * 6), assistant("y" * 6)]
    assert error_for({"prompt": "p", "chosen": long_messages, "rejected": "b"}, limits, LimitError).field == "chosen"
    assert error_for({"prompt": "p", "response_a": "a", "response_b": "b", "choice": "a", "note": "n" * 11},
                     limits, LimitError).field == "note"


# --- iter_records end to end ---------------------------------------------------------------

def test_iter_records_reports_file_and_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [{"prompt": "p"}, {}, {"prompt": "p", "chosen": "a", "rejected": None}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    records = iter_records(path)
    assert isinstance(next(records), PromptRecord)
    with pytest.raises(FormatError) as err:
        next(records)
    assert (err.value.path, err.value.line) == (str(path), 2) and "keys found: none" in str(err.value)


def test_iter_records_from_csv_with_messages(tmp_path):
    path = tmp_path / "pairs.csv"
    prompt = json.dumps([user("hi")]).replace('"', '""')
    path.write_text(f'prompt,chosen,rejected\n"{prompt}",good,bad\n')
    (record,) = iter_records(path)
    assert record.prompt == Text("hi", (Message("user", "hi"),)) and record.line == 2


# --- rendering -----------------------------------------------------------------------------

def test_render_messages():
    assert render_messages((Message("user", "hi"),)) == "hi"
    assert render_messages((Message("assistant", "a"), Message("assistant", "b"))) == "a\n\nb"
    assert render_messages((Message("system", "s"), Message("user", "u"))) == "System: s\n\nUser: u"
    assert render_messages(()) == ""


def test_hh_to_messages():
    text = "\n\nHuman: hi there\n\nAssistant: hello\n\nHuman: bye\n\nAssistant:"
    assert hh_to_messages(text) == (Message("user", "hi there"), Message("assistant", "hello"),
                                    Message("user", "bye"))
    assert hh_to_messages("\n\nHuman: only") == (Message("user", "only"),)
    assert hh_to_messages("just a question") is None
    assert hh_to_messages("") is None


@pytest.mark.skipif(not HH_EXAMPLE.exists(), reason="HH-RLHF example file not available")
def test_hh_to_messages_rebuilds_real_prompts():
    for record in list(iter_records(HH_EXAMPLE))[:300]:
        messages = hh_to_messages(record.prompt.text)
        assert messages and messages[-1].role == "user"
        rebuilt = "".join(f"\n\n{'Human' if m.role == 'user' else 'Assistant'}: {m.content}" for m in messages)
        assert rebuilt + "\n\nAssistant:" == record.prompt.text
