"""`rmstudio score` / `explain`: the same numbers as the API, and one line for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import write_jsonl
import reward_folders
from reward_folders import hf_rewards

import rmstudio
from rmstudio.cli_score import main

PROMPT = "What is the capital of France?"


finetuned_dir, instant_dir = reward_folders.finetuned_dir, reward_folders.instant_dir  # shared fixtures


@pytest.mark.parametrize("which", ["finetuned_dir", "instant_dir"])
def test_score_one_response_prints_the_reward(which, request, capsys):
    folder = request.getfixturevalue(which)
    assert main(["score", str(folder), "--prompt", PROMPT, "--response", " Paris.", "--device", "cpu"]) == 0
    printed = float(capsys.readouterr().out.strip())
    assert printed == pytest.approx(rmstudio.load_reward_model(folder, device="cpu").score(PROMPT, " Paris."),
                                    abs=1e-5)


def test_score_file_of_pairs_and_responses_adds_rewards_and_accuracy(finetuned_dir, tmp_path, capsys):
    rows = [{"prompt": PROMPT, "chosen": " Paris.", "rejected": " Rome.", "id": 1},
            {"prompt": [{"role": "user", "content": "Boil an egg"}],
             "chosen": [{"role": "assistant", "content": " eight minutes"}], "rejected": " no"},
            {"prompt": PROMPT, "response": " The quick brown fox"}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    assert main(["score", str(finetuned_dir), "--file", str(src), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("id") for r in scored] == [1, None, None]  # the input fields are kept
    expected = hf_rewards(finetuned_dir, PROMPT, [" Paris.", " Rome.", " The quick brown fox"])
    got = [scored[0]["reward_chosen"], scored[0]["reward_rejected"], scored[2]["reward"]]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    egg = hf_rewards(finetuned_dir, "Boil an egg", [" eight minutes", " no"])
    np.testing.assert_allclose([scored[1]["reward_chosen"], scored[1]["reward_rejected"]], egg, atol=1e-4)
    wins = sum(float(r["reward_chosen"] > r["reward_rejected"]) for r in scored[:2])
    assert f"accuracy {wins / 2:.4f} on 2 pairs" in printed and "scored 5 responses in 3 rows" in printed


def test_score_file_without_out_writes_rows_to_stdout(instant_dir, tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": PROMPT, "completion": " Paris."}])
    assert main(["score", str(instant_dir), "--file", str(src), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    [row] = [json.loads(line) for line in captured.out.splitlines()]
    expected = rmstudio.load_reward_model(instant_dir, device="cpu").score(PROMPT, " Paris.")
    assert row["reward"] == pytest.approx(expected, abs=1e-5)
    assert "scored 1 responses" in captured.err and "accuracy" not in captured.err


@pytest.mark.parametrize("method", ["prefix", "occlusion"])
def test_explain_prints_one_line_per_token_or_word(method, finetuned_dir, capsys):
    from rmstudio.core.reward.explain import occlusion, prefix_rewards

    response = " Paris is the capital."
    assert main(["explain", str(finetuned_dir), "--prompt", PROMPT, "--response", response,
                 "--method", method, "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rm = rmstudio.load_reward_model(finetuned_dir, device="cpu")
    assert float(lines[0].split()[1]) == pytest.approx(rm.score(PROMPT, response), abs=1e-5)
    expected = (list(zip(*[prefix_rewards(rm, PROMPT, response).contributions])) if method == "prefix"
                else list(zip(*[occlusion(rm, PROMPT, response).contributions])))
    assert len(lines) - 1 == len(expected) and (method == "prefix" or len(expected) == 4)
    assert [float(line.split()[0]) for line in lines[1:]] == pytest.approx([e[0] for e in expected], abs=1e-5)


def test_explain_json(instant_dir, capsys):
    assert main(["explain", str(instant_dir), "--prompt", PROMPT, "--response", " Paris is lovely",
                 "--method", "occlusion", "--json", "--device", "cpu"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [i["text"] for i in data["items"]] == ["Paris", "is", "lovely"] and data["method"] == "occlusion"


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith("rmstudio: error: ")
    return lines[0]


def test_bad_inputs_are_one_line_and_exit_2(finetuned_dir, tmp_path, capsys):
    model = str(finetuned_dir)
    assert main(["score", str(tmp_path / "nope"), "--prompt", "p", "--response", "r"]) == 2
    assert "nope: no such model folder" in _one_error_line(capsys)

    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n{not json\n")
    assert main(["score", model, "--file", str(bad_json), "--device", "cpu"]) == 2
    assert f"{bad_json}, line 2" in _one_error_line(capsys)

    missing = write_jsonl(tmp_path / "missing.jsonl",
                          [{"prompt": "p", "response": "r"}, {"prompt": "p", "chosen": "c"}])
    assert main(["score", model, "--file", str(missing), "--device", "cpu"]) == 2
    assert f"{missing}, line 2: missing field 'rejected'" in _one_error_line(capsys)

    no_prompt = write_jsonl(tmp_path / "noprompt.jsonl", [{"response": "r"}])
    assert main(["score", model, "--file", str(no_prompt)]) == 2
    assert "line 1: missing field 'prompt'" in _one_error_line(capsys)

    wrong_type = write_jsonl(tmp_path / "type.jsonl", [{"prompt": "p", "response": 7}])
    assert main(["score", model, "--file", str(wrong_type)]) == 2
    assert "line 1, field 'response': expected a string" in _one_error_line(capsys)

    assert main(["score", model, "--file", str(tmp_path / "absent.jsonl")]) == 2
    assert "absent.jsonl: file not found" in _one_error_line(capsys)

    assert main(["score", model, "--prompt", "p"]) == 2
    assert "give --prompt and --response, or --file" in _one_error_line(capsys)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{broken")
    assert main(["explain", str(broken), "--prompt", "p", "--response", "r"]) == 2
    assert f"{broken}: cannot load the reward model" in _one_error_line(capsys)
