import sqlite3

import pytest

from rmstudio.core.errors import ProjectError
from rmstudio.core.store.project import Project
from rmstudio.core.data.records import PairRecord, Text
from rmstudio.core.store.schema import SCHEMA_VERSION
from rmstudio.core.store.inserts import ProjectWriter
from builders import add_pairs





def test_new_project_has_schema_pragmas_and_refuses_to_overwrite(tmp_path):
    with Project.create(tmp_path / "p") as project:
        assert project.path.name == "p.rmstudio"
        assert project.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert project.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert project.journal_mode == "wal"
        assert project.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path / "p.rmstudio")


def test_open_rejects_non_projects_with_clear_messages(tmp_path):
    with pytest.raises(ProjectError, match="does not exist"):
        Project.open(tmp_path / "missing.rmstudio")
    text = tmp_path / "notes.rmstudio"
    text.write_text("hello, not a database")
    with pytest.raises(ProjectError, match="not an SQLite database"):
        Project.open(text)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(ProjectError, match="not an rmstudio project"):
        Project.open(other)


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "future.rmstudio"
    Project.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ProjectError, match="newer rmstudio"):
        Project.open(path)
    assert path.read_bytes() == before


def test_migration_of_an_older_file_keeps_a_backup(tmp_path, monkeypatch):
    from rmstudio.core.store import connection as project_module

    path = tmp_path / "old.rmstudio"
    Project.create(path).close()
    extra = ("0002_test_column", lambda conn: conn.execute("ALTER TABLE prompts ADD COLUMN extra TEXT"))
    monkeypatch.setattr(project_module, "MIGRATIONS", project_module.MIGRATIONS + [extra])
    monkeypatch.setattr(project_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Project.open(path) as project:
        columns = {r[1] for r in project.conn.execute("PRAGMA table_info(prompts)")}
        assert "extra" in columns
        assert project.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    from rmstudio.core.store.backups import list_backups

    [backup] = list_backups(path)
    assert backup.reason == "before-0002_test_column"
    copy = sqlite3.connect(backup.path)  # the copy is the file as it was before the migration
    assert "extra" not in {r[1] for r in copy.execute("PRAGMA table_info(prompts)")}
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_set_label_commits_at_once_and_is_seen_by_another_connection(project):
    [cid] = add_pairs(project, 1)
    project.set_label(cid, "ann", "a", strength=2, note="clearer")
    other = sqlite3.connect(project.path)
    row = other.execute("SELECT choice, strength, note FROM labels").fetchone()
    assert row == ("a", 2, "clearer")
    assert project.conn.execute("SELECT label_count FROM comparisons").fetchone()[0] == 1


def test_one_label_per_annotator_and_comparison(project):
    [cid] = add_pairs(project, 1)
    project.set_label(cid, "ann", "a")
    project.set_label(cid, "ann", "b")
    project.set_label(cid, "other", "tie")
    assert project.conn.execute("SELECT count(*) FROM labels").fetchone()[0] == 2
    assert project.label(cid, "ann").choice == "b"
    with pytest.raises(sqlite3.IntegrityError):
        aid = project.annotator_id("ann")
        project.conn.execute(
            "INSERT INTO labels (comparison_id, annotator_id, choice, created_at) VALUES (?, ?, 'a', 'now')",
            (cid, aid))


def test_bad_label_input_is_refused_and_nothing_is_written(project):
    [cid] = add_pairs(project, 1)
    with pytest.raises(ProjectError, match="not one of"):
        project.set_label(cid, "ann", "maybe")
    with pytest.raises(ProjectError, match="strength"):
        project.set_label(cid, "ann", "a", strength=3)
    with pytest.raises(ProjectError, match="no comparison 999"):
        project.set_label(999, "ann", "a")
    assert project.conn.execute("SELECT count(*) FROM labels").fetchone()[0] == 0
    assert project.conn.execute("SELECT count(*) FROM label_events").fetchone()[0] == 0


def test_undo_restores_previous_states_in_order(project):
    c1, c2 = add_pairs(project, 2)
    project.set_label(c1, "ann", "a")
    project.set_label(c2, "ann", "tie")
    project.set_label(c2, "ann", "b", note="changed my mind")
    assert project.undo_last("ann") == c2
    assert project.label(c2, "ann").choice == "tie"
    assert project.undo_last("ann") == c2
    assert project.label(c2, "ann") is None
    assert project.undo_last("ann") == c1
    assert project.label(c1, "ann") is None
    assert project.undo_last("ann") is None
    assert project.conn.execute("SELECT sum(label_count) FROM comparisons").fetchone()[0] == 0
    # the history keeps every label that was given
    assert project.conn.execute("SELECT count(*) FROM label_events").fetchone()[0] == 3


def test_undo_is_per_annotator(project):
    [cid] = add_pairs(project, 1)
    project.set_label(cid, "ann", "a")
    project.set_label(cid, "bob", "b")
    assert project.undo_last("ann") == cid
    assert project.label(cid, "bob").choice == "b"


def test_next_unlabeled_follows_order_and_skips(project):
    ids = add_pairs(project, 5)
    assert project.next_unlabeled("ann") == ids[0]
    project.set_label(ids[0], "ann", "a")
    project.set_label(ids[1], "ann", "skip")
    assert project.next_unlabeled("ann") == ids[2]
    # a skip by ann does not take the item away from bob; ann's label does
    assert project.next_unlabeled("bob") == ids[1]
    random_first = project.next_unlabeled("carol", order="random")
    assert random_first in ids[1:]
    for cid in ids:
        project.set_label(cid, "ann", "tie")
    assert project.next_unlabeled("ann") is None
    with pytest.raises(ProjectError, match="queue order"):
        project.next_unlabeled("ann", order="sideways")


def test_delete_label_keeps_history(project):
    [cid] = add_pairs(project, 1)
    project.set_label(cid, "ann", "a")
    assert project.delete_label(cid, "ann")
    assert project.label(cid, "ann") is None
    assert project.undo_last("ann") == cid
    assert project.label(cid, "ann").choice == "a"


def test_comparison_round_trips_text_and_messages(project):
    from rmstudio.core.data.records import Message

    writer = ProjectWriter(project)
    prompt = Text("Hi", (Message("user", "Hi"),))
    with project.write():
        pid, ph, _ = writer.prompt(prompt)
        a = writer.response(pid, Text(" one"), "m")[:2]
        b = writer.response(pid, Text(" two"), "m")[:2]
        cid = writer.comparison(pid, ph, a, b)[0]
    comparison = project.comparison(cid)
    assert comparison.prompt == prompt
    assert (comparison.response_a.text, comparison.response_b.text) == (" one", " two")
    assert isinstance(PairRecord(prompt, comparison.response_a, comparison.response_b), PairRecord)


def test_failed_write_transaction_leaves_nothing(project):
    with pytest.raises(RuntimeError):
        with project.write():
            ProjectWriter(project).prompt(Text("kept?"))
            raise RuntimeError("boom")
    assert project.counts()["prompts"] == 0


def test_sqlite_utils_view_shares_the_connection(project):
    [cid] = add_pairs(project, 1)
    project.set_label(cid, "ann", "tie")
    assert project.db["labels"].count == 1
    assert [row["choice"] for row in project.db["labels"].rows] == ["tie"]
