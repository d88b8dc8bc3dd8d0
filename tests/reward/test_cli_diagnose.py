"""`rmstudio diagnose`: the core's figures on a project or a file, JSON out, one line for bad input."""

from __future__ import annotations

import json

import pytest
from builders import synthetic_project
from conftest import write_jsonl
import reward_folders

from rmstudio.cli import main
from rmstudio.core.reward.diagnostics import diagnose, project_pairs
from rmstudio.core.reward.scoring import load_reward_model
from rmstudio.core.store.project import Project


instant_dir = reward_folders.instant_dir  # the shared fixture (reward_folders.py)


def test_diagnose_a_project_writes_the_cores_figures(instant_dir, tmp_path, capsys):
    path = synthetic_project(tmp_path, n=20)
    out = tmp_path / "diag.json"
    assert main(["diagnose", str(instant_dir), str(path), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    with Project.open(path) as project:
        expected = diagnose(load_reward_model(instant_dir, device="cpu"), project_pairs(project))
    written = json.loads(out.read_text())
    assert written["accuracy"] == pytest.approx(expected.accuracy)
    disputed = [r["comparison_id"] for r in written["disagreements"]]
    assert disputed == [r.comparison_id for r in expected.disagreements]
    assert len(written["rows"]) == 20 and written["length_unit"] == "characters"
    assert f"accuracy {expected.accuracy:.4f}" in printed and "annotator source:syn" in printed
    assert f"{len(expected.disagreements)} disagreements" in printed


def test_diagnose_a_file_and_bad_input_is_one_line(instant_dir, tmp_path, capsys):
    data = write_jsonl(tmp_path / "held.jsonl", [{"prompt": "q?", "chosen": "Paris", "rejected": "dog"},
                                                 {"prompt": "r?", "chosen": "capital", "rejected": "fox"}])
    assert main(["diagnose", str(instant_dir), str(data), "--device", "cpu"]) == 0
    assert "2 pairs with a preference" in capsys.readouterr().out

    for argv, expected in (
            ([str(instant_dir), str(tmp_path / "nothing.jsonl")], "no such project or file"),
            ([str(instant_dir), str(data), "--run", "1"], "a run's validation split needs its project"),
            ([str(tmp_path / "no-model"), str(data)], "no such model folder")):
        assert main(["diagnose", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err
