import gzip
import json

import pytest
from conftest import HH_FILE, write_jsonl

from rmstudio.core.errors import FormatError
from rmstudio.core.data.exporter import ExportError, export_project
from rmstudio.core.data.formats import Limits
from rmstudio.core.data.importer import ImportCancelled, import_files
from rmstudio.core.store.project import Project


def read_jsonl(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_hh_import_yields_2312_comparisons_that_rebuild_the_originals(project):
    report = import_files(project, [HH_FILE])
    assert report.counts["comparisons_added"] == 2312
    assert project.counts()["comparisons"] == 2312
    assert project.counts()["labels"] == 2312
    originals = read_jsonl(HH_FILE)
    rows = project.conn.execute(
        """SELECT p.text || ra.text, p.text || rb.text, l.choice FROM comparisons c
           JOIN prompts p ON p.id = c.prompt_id JOIN responses ra ON ra.id = c.response_a_id
           JOIN responses rb ON rb.id = c.response_b_id JOIN labels l ON l.comparison_id = c.id
           ORDER BY c.id""").fetchall()
    assert len(rows) == len(originals)
    for (text_a, text_b, choice), original in zip(rows, originals):
        chosen, rejected = (text_a, text_b) if choice == "a" else (text_b, text_a)
        assert (chosen, rejected) == (original["chosen"], original["rejected"])
    annotators = [a["name"] for a in project.annotators()]
    assert annotators == ["source:hh-rlhf-harmless-base-test"]


def test_reimport_skips_duplicates(project):
    import_files(project, [HH_FILE])
    again = import_files(project, [HH_FILE])
    assert again.counts["comparisons_added"] == 0
    assert again.counts["labels_added"] == 0
    assert again.counts["duplicates_skipped"] == 2312
    assert project.counts()["comparisons"] == 2312


def test_a_bad_line_rolls_back_the_whole_import(project, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [{"prompt": "p0", "chosen": "x", "rejected": "y"}])
    rows = [{"prompt": f"p{i}", "chosen": "c", "rejected": "r"} for i in range(1, 50)]
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    with open(bad, "a") as fh:
        fh.write('{"prompt": "late", "chosen": null, "rejected": "r"}\n')
    with pytest.raises(FormatError) as info:
        import_files(project, [good, bad])
    assert info.value.line == 50 and info.value.field == "chosen"
    assert "bad.jsonl" in str(info.value)
    assert project.counts()["comparisons"] == 0 and project.counts()["prompts"] == 0
    assert project.conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 0


def test_missing_file_is_reported_before_anything_is_written(project, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [{"prompt": "p", "chosen": "x", "rejected": "y"}])
    with pytest.raises(FormatError, match="no such file"):
        import_files(project, [good, tmp_path / "nope.jsonl"])
    assert project.counts()["comparisons"] == 0


def test_cancel_keeps_nothing(project, tmp_path):
    rows = [{"prompt": f"p{i}", "chosen": "c", "rejected": "r"} for i in range(1200)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)

    class StopAtOnce:
        def log(self, step, metrics):
            pass

        def should_stop(self):
            return True

    with pytest.raises(ImportCancelled):
        import_files(project, [path], sink=StopAtOnce())
    assert project.counts()["comparisons"] == 0


def test_every_format_lands_in_the_store(project, tmp_path):
    rows = [
        {"prompt": "explicit?", "chosen": "yes", "rejected": "no"},
        {"chosen": "\n\nHuman: hi\n\nAssistant: hello!", "rejected": "\n\nHuman: hi\n\nAssistant: go away"},
        {"prompt": [{"role": "user", "content": "conv?"}],
         "chosen": [{"role": "assistant", "content": "sure"}],
         "rejected": [{"role": "assistant", "content": "nope"}]},
        {"prompt": "to label", "response_a": "first", "response_b": "second"},
        {"prompt": "only a prompt"},
        {"prompt": "rank these", "responses": ["best", "middle", "worst"]},
    ]
    report = import_files(project, [write_jsonl(tmp_path / "mixed.jsonl", rows)])
    counts = project.counts()
    # 3 labeled pairs + 1 unlabeled pair + 3 pairs implied by the ranking
    assert counts["comparisons"] == 7
    assert counts["labels"] == 6
    assert counts["prompts"] == 6
    assert counts["rankings"] == 1
    assert report.counts["rankings_added"] == 1
    unlabeled = project.next_unlabeled("me")
    assert project.comparison(unlabeled).prompt.text == "to label"
    ranking_labels = project.conn.execute(
        """SELECT ra.text, rb.text, l.choice FROM labels l JOIN comparisons c ON c.id = l.comparison_id
           JOIN prompts p ON p.id = c.prompt_id JOIN responses ra ON ra.id = c.response_a_id
           JOIN responses rb ON rb.id = c.response_b_id WHERE p.text = 'rank these'""").fetchall()
    preferred = {(a if ch == "a" else b, b if ch == "a" else a) for a, b, ch in ranking_labels}
    assert preferred == {("best", "middle"), ("best", "worst"), ("middle", "worst")}


def test_swapped_pair_from_another_annotator_keeps_real_preference(project, tmp_path):
    first = write_jsonl(tmp_path / "one.jsonl", [
        {"prompt": "q", "response_a": "x", "response_b": "y", "choice": "a", "annotator": "ann"}])
    second = write_jsonl(tmp_path / "two.jsonl", [
        {"prompt": "q", "response_a": "y", "response_b": "x", "choice": "b", "annotator": "bob"}])
    import_files(project, [first, second])
    assert project.counts()["comparisons"] == 1
    [cid] = [r[0] for r in project.conn.execute("SELECT id FROM comparisons")]
    # bob preferred x too; stored relative to the stored order x=A, y=B
    assert project.label(cid, "ann").choice == "a"
    assert project.label(cid, "bob").choice == "a"


def test_import_never_overwrites_a_stored_label(project, tmp_path):
    first = write_jsonl(tmp_path / "one.jsonl", [
        {"prompt": "q", "response_a": "x", "response_b": "y", "choice": "a", "annotator": "ann"}])
    import_files(project, [first])
    contradicting = write_jsonl(tmp_path / "two.jsonl", [
        {"prompt": "q", "response_a": "x", "response_b": "y", "choice": "b", "annotator": "ann"}])
    report = import_files(project, [contradicting])
    assert report.counts["label_conflicts_kept"] == 1
    [cid] = [r[0] for r in project.conn.execute("SELECT id FROM comparisons")]
    assert project.label(cid, "ann").choice == "a"


def test_limits_stop_hostile_files_cleanly(project, tmp_path):
    path = write_jsonl(tmp_path / "huge.jsonl", [{"prompt": "p", "chosen": "c" * 5000, "rejected": "r"}])
    with pytest.raises(FormatError, match="huge.jsonl"):
        import_files(project, [path], limits=Limits(max_line_bytes=1000))
    assert project.counts()["prompts"] == 0


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".json", ".parquet"])
def test_explicit_export_round_trips(project, tmp_path, suffix):
    import_files(project, [HH_FILE])
    out = tmp_path / f"out{suffix}"
    report = export_project(project, out)
    assert report.rows == 2312
    with Project.create(tmp_path / "copy") as copy:
        import_files(copy, [out])
        again = tmp_path / f"again{suffix}"
        export_project(copy, again)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(out).to_pylist() == pq.read_table(again).to_pylist()
    elif suffix == ".json":
        assert json.loads(out.read_text()) == json.loads(again.read_text())
    else:
        assert read_jsonl(out) == read_jsonl(again)
    rows = read_jsonl(out) if "jsonl" in suffix else None
    if rows:
        originals = read_jsonl(HH_FILE)
        assert rows[0]["prompt"] + rows[0]["chosen"] == originals[0]["chosen"]


def test_conversational_export_is_message_lists_and_round_trips(project, tmp_path):
    import_files(project, [HH_FILE])
    out = tmp_path / "conv.jsonl"
    export_project(project, out, schema="conversational")
    rows = read_jsonl(out)
    assert len(rows) == 2312
    first = rows[0]
    assert first["prompt"][0]["role"] == "user" and first["prompt"][-1]["role"] == "user"
    assert first["chosen"][0]["role"] == "assistant"
    with Project.create(tmp_path / "copy") as copy:
        import_files(copy, [out])
        again = tmp_path / "again.jsonl"
        export_project(copy, again, schema="conversational")
    assert read_jsonl(again) == rows


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_label_export_round_trips_every_label(project, tmp_path, suffix):
    rows = [{"prompt": f"q{i}", "response_a": f"x{i}", "response_b": f"y{i}"} for i in range(6)]
    import_files(project, [write_jsonl(tmp_path / "pairs.jsonl", rows)])
    ids = [r[0] for r in project.conn.execute("SELECT id FROM comparisons ORDER BY id")]
    choices = ["a", "b", "tie", "both_bad", "skip", "a"]
    for cid, choice in zip(ids, choices):
        project.set_label(cid, "ann", choice, strength=2 if choice == "a" else None,
                          note="why" if choice == "tie" else None)
    project.set_label(ids[0], "bob", "b")
    out = tmp_path / f"labels{suffix}"
    assert export_project(project, out, schema="labels").rows == 7
    with Project.create(tmp_path / "copy") as copy:
        import_files(copy, [out])
        stored = copy.conn.execute(
            """SELECT p.text, a.name, l.choice, l.strength, l.note FROM labels l
               JOIN annotators a ON a.id = l.annotator_id JOIN comparisons c ON c.id = l.comparison_id
               JOIN prompts p ON p.id = c.prompt_id ORDER BY p.text, a.name""").fetchall()
    original = project.conn.execute(
        """SELECT p.text, a.name, l.choice, l.strength, l.note FROM labels l
           JOIN annotators a ON a.id = l.annotator_id JOIN comparisons c ON c.id = l.comparison_id
           JOIN prompts p ON p.id = c.prompt_id ORDER BY p.text, a.name""").fetchall()
    assert [tuple(r) for r in stored] == [tuple(r) for r in original]


def test_majority_decides_and_splits_are_left_out(project, tmp_path):
    rows = [{"prompt": f"q{i}", "response_a": f"x{i}", "response_b": f"y{i}"} for i in range(3)]
    import_files(project, [write_jsonl(tmp_path / "pairs.jsonl", rows)])
    c0, c1, c2 = [r[0] for r in project.conn.execute("SELECT id FROM comparisons ORDER BY id")]
    for name, choice in [("ann", "b"), ("bob", "b"), ("cat", "a")]:
        project.set_label(c0, name, choice)
    project.set_label(c1, "ann", "a")
    project.set_label(c1, "bob", "b")
    project.set_label(c2, "ann", "tie")
    out = tmp_path / "out.jsonl"
    report = export_project(project, out)
    assert read_jsonl(out) == [{"prompt": "q0", "chosen": "y0", "rejected": "x0"}]
    assert sum(report.skipped.values()) == 2
    only_cat = tmp_path / "cat.jsonl"
    export_project(project, only_cat, annotator="cat")
    assert read_jsonl(only_cat) == [{"prompt": "q0", "chosen": "x0", "rejected": "y0"}]


def test_export_errors_are_clear(project, tmp_path):
    with pytest.raises(ExportError, match="extension"):
        export_project(project, tmp_path / "out.txt")
    with pytest.raises(ExportError, match="does not exist"):
        export_project(project, tmp_path / "no" / "out.jsonl")
    with pytest.raises(ExportError, match="CSV"):
        export_project(project, tmp_path / "out.csv", schema="conversational")
