import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tempfile  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

import tiny_models  # noqa: E402
from rmstudio.core.models.generation import (  # noqa: E402
    GenerationConfig,
    format_prompt,
    generate_responses,
    generate_with_two_models,
)
from rmstudio.core.data.records import Message, Text  # noqa: E402

PROMPTS = [
    (10, Text("What is the capital of France?")),
    (11, Text("Hi")),
    (12, Text("Write a short poem about the sea and the wind, please, with rhymes.")),
    (13, Text("How do I boil an egg?")),
    (14, Text("", messages=(Message("system", "Be brief."), Message("user", "Give me three tips.")))),
]


@pytest.fixture(scope="module")
def tiny():
    return tiny_models.tiny_model_and_tokenizer()


class RecordingSink:
    def __init__(self, stop_after_logs: int | None = None):
        self.logs = []
        self.stop_after_logs = stop_after_logs

    def log(self, step, metrics):
        self.logs.append((step, dict(metrics)))

    def should_stop(self):
        # logs[0] is the start report; each later log marks a finished batch.
        return self.stop_after_logs is not None and len(self.logs) > self.stop_after_logs


def run(model, tokenizer, config, prompts=PROMPTS, sink=None):
    done = {}
    count = generate_responses(
        model, tokenizer, prompts, config, sink, lambda pid, texts: done.__setitem__(pid, texts)
    )
    return count, done


# --- config -----------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("num_responses", 1), ("temperature", 0), ("temperature", 5.5), ("top_p", 0), ("top_p", 1.5),
    ("max_new_tokens", 0), ("max_new_tokens", 5000), ("batch_size", 0), ("seed", -1),
])
def test_config_rejects(field, value):
    with pytest.raises(ValueError, match=field):
        GenerationConfig(**{field: value})


def test_config_defaults():
    config = GenerationConfig()
    assert (config.num_responses, config.temperature, config.top_p) == (2, 0.8, 0.95)
    assert (config.max_new_tokens, config.seed, config.batch_size) == (128, 0, 8)


# --- prompts ----------------------------------------------------------------------------------

def test_format_prompt_uses_chat_template(tiny):
    _, tokenizer = tiny
    text = format_prompt(tokenizer, Text("Hello there"))
    assert text == "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    text = format_prompt(tokenizer, PROMPTS[4][1])
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nGive me")


def test_format_prompt_without_template():
    tokenizer = tiny_models.tiny_tokenizer(chat_template=None)
    assert format_prompt(tokenizer, Text("plain words")) == "plain words"


# --- generation -------------------------------------------------------------------------------

def test_generates_responses_per_prompt(tiny):
    model, tokenizer = tiny
    sink = RecordingSink()
    config = GenerationConfig(num_responses=3, max_new_tokens=8, batch_size=6)
    count, done = run(model, tokenizer, config, sink=sink)
    assert count == len(PROMPTS)
    assert set(done) == {pid for pid, _ in PROMPTS}
    for texts in done.values():
        assert len(texts) == 3
        assert all(isinstance(t, str) and t for t in texts)
        assert len(set(texts)) == 3
    last_step, last = sink.logs[-1]
    assert last_step == len(PROMPTS)
    assert last["total"] == len(PROMPTS)
    assert 0 < last["tokens"] <= len(PROMPTS) * 3 * 8 * 2  # resampling may add a round
    assert last["tokens_per_s"] > 0


def test_seed_reproduces(tiny):
    model, tokenizer = tiny
    config = GenerationConfig(max_new_tokens=8, seed=7)
    _, first = run(model, tokenizer, config)
    _, second = run(model, tokenizer, config)
    _, other = run(model, tokenizer, GenerationConfig(max_new_tokens=8, seed=8))
    assert first == second
    assert first != other


def test_cancel_keeps_finished_prompts(tiny):
    model, tokenizer = tiny
    sink = RecordingSink(stop_after_logs=1)  # stop once the first batch has reported
    config = GenerationConfig(max_new_tokens=8, batch_size=4)  # 2 prompts per batch
    count, done = run(model, tokenizer, config, sink=sink)
    assert count == len(done) == 2
    assert all(len(texts) == 2 for texts in done.values())


def test_identical_pair_is_resampled(tiny, monkeypatch):
    model, tokenizer = tiny
    calls = []
    real_generate = model.generate

    def generate(**kwargs):
        out = real_generate(**kwargs)
        calls.append(out.shape[0])
        if len(calls) == 1:  # make the first round's two responses identical
            out[1::2] = out[0::2]
        return out

    monkeypatch.setattr(model, "generate", generate)
    _, done = run(model, tokenizer, GenerationConfig(max_new_tokens=8, batch_size=2), prompts=PROMPTS[:1])
    assert calls == [2, 2]
    texts = done[PROMPTS[0][0]]
    assert texts[0] != texts[1]


def test_two_models(tiny):
    model_a, tok_a = tiny
    model_b, tok_b = tiny_models.tiny_model_and_tokenizer(seed=1)
    done = {}
    count = generate_with_two_models(
        model_a, tok_a, model_b, tok_b, PROMPTS, GenerationConfig(max_new_tokens=6),
        on_prompt_done=lambda pid, texts: done.__setitem__(pid, texts),
    )
    assert count == len(PROMPTS)
    assert all(len(texts) == 2 and all(texts) for texts in done.values())
    with pytest.raises(ValueError, match="exactly 2"):
        generate_with_two_models(model_a, tok_a, model_b, tok_b, PROMPTS, GenerationConfig(num_responses=3))


# --- the real embedded model ------------------------------------------------------------------

@pytest.mark.embedded
def test_embedded_model_generates_a_pair(monkeypatch):
    from rmstudio.core.models.loading import load_causal_lm

    # Shared across runs: the one-time conversion takes ~20 s, a cached load well under 1 s.
    monkeypatch.setenv("RMSTUDIO_CACHE_DIR", os.path.join(tempfile.gettempdir(), "rmstudio-test-cache"))
    started = time.perf_counter()
    model, tokenizer = load_causal_lm("embedded")
    done = {}
    count = generate_responses(
        model, tokenizer, [(1, Text("Give me one tip for sleeping better."))],
        GenerationConfig(max_new_tokens=24), on_prompt_done=lambda pid, texts: done.__setitem__(pid, texts),
    )
    assert count == 1
    first, second = done[1]
    assert first and second and first != second
    print(f"embedded load + generate: {time.perf_counter() - started:.1f} s: {done[1]}")
