"""Generated pairs land in the project one committed prompt at a time."""

import json

import pytest
from conftest import write_jsonl
from tiny_models import save_tiny_model

from rmstudio.cli import main
from rmstudio.core.models.collect import generate_pairs, prompts_without_pairs
from rmstudio.core.models.generation import GenerationConfig
from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project
from rmstudio.core.runs.store import list_runs


@pytest.fixture
def prompts_project(tmp_path):
    path = tmp_path / "gen.rmstudio"
    with Project.create(path) as project:
        import_files(project, [write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"Question {i}?"} for i in range(5)])])
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_generated_pairs_become_unlabeled_comparisons(prompts_project, tiny_dir):
    config = GenerationConfig(max_new_tokens=6, batch_size=4, seed=1)
    result = generate_pairs(prompts_project, None, model=str(tiny_dir), config=config)
    assert result["status"] == "finished" and result["prompts_done"] == 5
    with Project.open(prompts_project) as project:
        assert project.counts()["comparisons"] == result["comparisons"] >= 4
        # two distinct responses per prompt make one comparison each
        with_two = project.conn.execute(
            "SELECT count(*) FROM (SELECT prompt_id FROM responses GROUP BY prompt_id HAVING count(*) = 2)"
        ).fetchone()[0]
        assert with_two == result["comparisons"]
        assert len(prompts_without_pairs(project)) == 5 - with_two
        row = project.conn.execute("SELECT model, settings FROM responses LIMIT 1").fetchone()
        assert row["model"] == tiny_dir.name or str(tiny_dir) in row["model"]
        assert json.loads(row["settings"])["seed"] == 1
        assert project.next_unlabeled("me") is not None
        [run] = list_runs(project, "generate")
        assert run["status"] == "finished" and run["config"]["sampling"]["max_new_tokens"] == 6
        assert run["name"] == f"generate with {tiny_dir.name}" or str(tiny_dir) in run["name"]


def test_cancel_keeps_every_finished_prompt(prompts_project, tiny_dir):
    class StopAfterFirstBatch:
        def __init__(self):
            self.logged = 0

        def log(self, step, metrics):
            self.logged = step

        def should_stop(self):
            return self.logged >= 1

    config = GenerationConfig(max_new_tokens=4, batch_size=2)  # one prompt per batch
    result = generate_pairs(prompts_project, None, model=str(tiny_dir), config=config,
                            sink=StopAfterFirstBatch())
    assert result["status"] == "cancelled"
    assert 1 <= result["prompts_done"] < 5
    with Project.open(prompts_project) as project:
        done = project.conn.execute("SELECT count(DISTINCT prompt_id) FROM responses").fetchone()[0]
        assert done == result["prompts_done"]
        assert list_runs(project, "generate")[0]["status"] == "cancelled"


def test_cli_generate_and_bad_model_path(prompts_project, tiny_dir, tmp_path, capsys):
    code = main(["generate", str(prompts_project), "--model", str(tiny_dir), "--max-new-tokens", "4",
                 "--limit", "2"])
    assert code == 0
    assert "2/2 prompts" in capsys.readouterr().out
    assert main(["generate", str(prompts_project), "--model", str(tmp_path / "nowhere.gguf")]) == 1
    err = capsys.readouterr().err
    assert "nowhere.gguf" in err and "Traceback" not in err
    assert main(["generate", str(prompts_project), "--temperature", "0"]) == 2
    assert "temperature" in capsys.readouterr().err
