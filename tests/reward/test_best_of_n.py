"""Best-of-n for one prompt: the core loop on fakes, a tiny causal LM as the generator, and
`rmstudio score --best-of N`."""

from __future__ import annotations

import json

import pytest
import reward_folders
from tiny_models import save_tiny_model, tiny_model_and_tokenizer

import rmstudio
from rmstudio.cli_score import main
from rmstudio.core.reward.best_of_n import best_of_n_responses, lm_generator, rank_responses

PROMPT = "What is the capital of France?"


class Sink:
    def __init__(self, stop_after: int | None = None):
        self.reports, self.stop_after = [], stop_after

    def log(self, step, metrics):
        self.reports.append((step, dict(metrics)))

    def should_stop(self):
        done = max((s for s, _ in self.reports), default=0)
        return self.stop_after is not None and done >= self.stop_after


def fake_generator(prompt, k):
    return f"answer {k} " + "!" * (k * 7 % 5)  # rewards (the number of '!') not in sample order


def count_scorer(prompt, responses):
    return [float(r.count("!")) for r in responses]


def test_responses_come_back_sorted_by_score_with_progress():
    sink = Sink()
    ranked = best_of_n_responses(fake_generator, count_scorer, PROMPT, 5, sink=sink)
    assert [r.reward for r in ranked] == sorted((float(k * 7 % 5) for k in range(5)), reverse=True)
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    assert sorted(r.index for r in ranked) == [0, 1, 2, 3, 4]
    assert all(r.text == fake_generator(PROMPT, r.index) for r in ranked)
    done = [m["done"] for _, m in sink.reports if "done" in m]
    assert done == [0, 1, 2, 3, 4, 5] and sink.reports[-1][1]["stage"] == "score"


def test_a_stop_ranks_what_was_generated():
    calls = []
    ranked = best_of_n_responses(lambda p, k: calls.append(k) or f"r{k}!" * k, count_scorer, PROMPT, 8,
                                 sink=Sink(stop_after=3))
    assert calls == [0, 1, 2] and [r.index for r in ranked] == [2, 1, 0]


def test_equal_rewards_keep_the_order_they_were_made_in():
    assert [r.index for r in rank_responses(["a", "b", "c"], [1.0, 2.0, 1.0])] == [1, 0, 2]


@pytest.mark.parametrize("n", [0, 17, 2.5, True])
def test_n_outside_1_to_16_is_refused(n):
    with pytest.raises(ValueError, match="from 1 to 16"):
        best_of_n_responses(fake_generator, count_scorer, PROMPT, n)


def test_a_tiny_lm_generates_reproducible_responses_per_index():
    model, tokenizer = tiny_model_and_tokenizer()
    generate = lm_generator(model, tokenizer, seed=3, max_new_tokens=8)
    first = [generate(PROMPT, k) for k in range(3)]
    again = lm_generator(model, tokenizer, seed=3, max_new_tokens=8)
    assert [again(PROMPT, k) for k in (2, 0, 1)] == [first[2], first[0], first[1]]
    assert len(set(first)) > 1  # each index samples its own response
    assert generate("another prompt", 0) != first[0]  # a second prompt is not read from the first's cache


instant_dir = reward_folders.instant_dir  # the shared fixture (reward_folders.py)


def test_cli_best_of_prints_n_ranked_lines(instant_dir, tmp_path, capsys):
    policy = save_tiny_model(tmp_path / "policy")
    assert main(["score", str(instant_dir), "--prompt", PROMPT, "--best-of", "4", "--policy", str(policy),
                 "--max-new-tokens", "8", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    ranks, rewards, texts = zip(*(line.split("\t") for line in lines))
    assert ranks == ("#1", "#2", "#3", "#4")
    rewards = [float(r) for r in rewards]
    assert rewards == sorted(rewards, reverse=True)
    model = rmstudio.load_reward_model(instant_dir, device="cpu")
    expected = model.score(PROMPT, [json.loads(t) for t in texts])
    assert rewards == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--best-of", "17", "--prompt", PROMPT], "--best-of must be from 1 to 16, got 17"),
    (["--best-of", "2"], "--best-of N needs --prompt"),
    (["--best-of", "2", "--prompt", PROMPT, "--max-new-tokens", "0"], "--max-new-tokens must be"),
    (["--best-of", "2", "--prompt", PROMPT, "--policy", "/no/such/folder"], "/no/such/folder"),
    (["--prompt", PROMPT, "--response", "x", "--policy", "embedded"], "give --best-of too"),
])
def test_cli_best_of_bad_input_is_one_line(argv, message, instant_dir, capsys):
    assert main(["score", str(instant_dir), *argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
