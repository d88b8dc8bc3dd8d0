"""Prefix rewards (one forward pass, the head at every position) and leave-one-word-out."""

from __future__ import annotations

import numpy as np
import pytest

import rmstudio
from rmstudio.core.reward.explain import occlusion, prefix_rewards, without_word, word_spans
import reward_folders

PROMPT = "What is the capital of France?"
RESPONSE = " Paris is the capital of France, and it lies on the Seine."


finetuned_dir, instant_dir = reward_folders.finetuned_dir, reward_folders.instant_dir  # shared fixtures


@pytest.mark.parametrize("which", ["finetuned_dir", "instant_dir"])
def test_prefix_rewards_end_at_the_full_reward(which, request):
    rm = rmstudio.load_reward_model(request.getfixturevalue(which), device="cpu")
    result = prefix_rewards(rm, PROMPT, RESPONSE)
    full = rm.score(PROMPT, RESPONSE)
    assert result.rewards[-1] == pytest.approx(full, abs=1e-4)
    assert len(result.tokens) == len(result.rewards) == len(result.contributions)
    assert np.std(result.rewards) > 1e-5  # the values move along the text
    # Contributions are consecutive differences: they sum to the full reward minus the start.
    assert sum(result.contributions) == pytest.approx(full - result.start, abs=1e-4)
    assert not result.truncated


def test_finetuned_prefix_has_one_value_per_response_token_and_each_is_that_prefix(finetuned_dir):
    rm = rmstudio.load_reward_model(finetuned_dir, device="cpu")
    tokenizer = rm.scorer.hf[1]
    result = prefix_rewards(rm, PROMPT, RESPONSE)
    ids = tokenizer(PROMPT + RESPONSE, add_special_tokens=False, return_offsets_mapping=True)
    n_response = sum(1 for _, end in ids["offset_mapping"] if end > len(PROMPT))
    assert len(result.tokens) == n_response
    assert "".join(result.tokens).endswith(RESPONSE)  # the tokens spell out the response
    # The value after token k is the reward of the text up to k, scored on its own.
    ends = [end for _, end in ids["offset_mapping"] if end > len(PROMPT)]
    for k in (0, len(ends) // 2):
        prefix = (PROMPT + RESPONSE)[:ends[k]]
        alone = rm.score(prefix[:len(PROMPT)], prefix[len(PROMPT):])
        assert result.rewards[k] == pytest.approx(alone, abs=1e-4)


def test_instant_prefix_lists_the_response_tokens_then_the_end_token(instant_dir):
    rm = rmstudio.load_reward_model(instant_dir, device="cpu")
    tokenizer = rm.scorer.instant.extractor.tokenizer
    result = prefix_rewards(rm, PROMPT, RESPONSE)
    n = len(tokenizer(RESPONSE, add_special_tokens=False)["input_ids"])
    assert len(result.tokens) == n + 1 and result.tokens[-1] == tokenizer.eos_token
    assert "".join(result.tokens[:-1]) == RESPONSE


def test_a_normalized_model_explains_in_its_own_scale(finetuned_dir):
    rm = rmstudio.load_reward_model(finetuned_dir, device="cpu", normalized=True)
    last = prefix_rewards(rm, PROMPT, RESPONSE).rewards[-1]
    assert last == pytest.approx(rm.score(PROMPT, RESPONSE), abs=1e-4)


def test_a_truncated_finetuned_text_says_so_and_still_ends_at_the_reward(finetuned_dir):
    rm = rmstudio.load_reward_model(finetuned_dir, device="cpu")
    rm.scorer.hf = (*rm.scorer.hf[:2], 12)  # max_length 12 tokens
    long = RESPONSE * 3
    result = prefix_rewards(rm, PROMPT, long)
    assert result.truncated
    assert result.rewards[-1] == pytest.approx(rm.score(PROMPT, long), abs=1e-4)
    assert len(result.tokens) < 12


def test_without_word_leaves_no_double_space():
    text = "Paris is  lovely"
    spans = word_spans(text)
    assert [text[a:b] for a, b in spans] == ["Paris", "is", "lovely"]
    assert [without_word(text, s) for s in spans] == ["is  lovely", "Paris lovely", "Paris is"]


@pytest.mark.parametrize("which", ["finetuned_dir", "instant_dir"])
def test_occlusion_gives_one_value_per_word(which, request):
    rm = rmstudio.load_reward_model(request.getfixturevalue(which), device="cpu")

    class Sink:
        logged = []

        def log(self, step, metrics):
            self.logged.append((step, metrics["total"]))

        def should_stop(self):
            return False

    sink = Sink()
    result = occlusion(rm, PROMPT, RESPONSE, sink=sink, batch=4)
    assert result.words == RESPONSE.split() and len(result.contributions) == len(result.words)
    assert result.reward == pytest.approx(rm.score(PROMPT, RESPONSE), abs=1e-6)
    second = without_word(RESPONSE, result.spans[1])
    assert result.contributions[1] == pytest.approx(result.reward - rm.score(PROMPT, second), abs=1e-5)
    assert sink.logged[-1] == (len(result.words), len(result.words)) and len(sink.logged) == 3  # 12 words / 4


def test_occlusion_stops_when_asked(finetuned_dir):
    rm = rmstudio.load_reward_model(finetuned_dir, device="cpu")

    class StopAfterOne:
        calls = 0

        def log(self, step, metrics):
            pass

        def should_stop(self):
            self.calls += 1
            return self.calls > 1

    result = occlusion(rm, PROMPT, RESPONSE, sink=StopAfterOne(), batch=4)
    assert result.stopped and len(result.contributions) == 4


def test_instant_prefix_values_are_the_head_on_each_prefix_read_in_full(instant_dir):
    """Token k's value is the head on the features of response tokens 0..k, read after the
    prompt in one plain forward pass (no end token: that is the prefix as read so far)."""
    import torch

    rm = rmstudio.load_reward_model(instant_dir, device="cpu")
    instant = rm.scorer.instant
    ex = instant.extractor
    result = prefix_rewards(rm, PROMPT, RESPONSE)
    p = ex.tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    r = ex.tokenizer(RESPONSE, add_special_tokens=False)["input_ids"]
    for k in (0, 3, len(r) - 1):
        with torch.no_grad():
            ids = torch.tensor([p + r[:k + 1]])
            states = ex.decoder(input_ids=ids, output_hidden_states=True).hidden_states
            parts = []
            for layer in ex.spec.layers:
                h = states[layer][0, len(p):]
                parts += [h.mean(0), h[-1]]
            features = torch.cat(parts).numpy().astype("<f2").astype(np.float32)
            expected = float(instant.head(torch.as_tensor(features[None]))[0])
        assert result.rewards[k] == pytest.approx(expected, abs=5e-3)  # float16 rounding of features
    assert np.ptp(result.rewards) > 0.05  # so 5e-3 is a real check
