"""Sample several responses per prompt from a causal LM, in padded batches.

Prompts are sorted by token length and generated a batch at a time (left padding, the prompt
rows repeated ``num_responses`` times by ``num_return_sequences``), so each forward pass
serves many sequences and little of it is spent on padding. Finished prompts are handed to
``on_prompt_done`` at once, so cancelling or crashing keeps everything already generated.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rmstudio.core.models.loading import ModelError
from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.data.records import Text

PromptDone = Callable[[int, list[str]], None]


class ChatTemplateError(ModelError):
    """A model's chat template that cannot be compiled or that fails on a prompt."""


@dataclass
class GenerationConfig:
    num_responses: int = 2
    """Responses sampled per prompt (at least 2: pairs are what gets labelled)."""

    temperature: float = 0.8
    """Softmax temperature; above 0 and at most 5. Lower gives safer, more alike responses."""

    top_p: float = 0.95
    """Nucleus sampling: keep the smallest set of tokens whose probability reaches top_p (0 < p <= 1)."""

    max_new_tokens: int = 128
    """Most tokens generated per response (1 to 4096); a response may stop earlier at EOS."""

    seed: int = 0
    """Seeds the sampler; the same seed, prompts and model give the same responses."""

    batch_size: int = 8
    """Sequences generated together (prompts per batch = batch_size // num_responses, at least 1)."""

    def __post_init__(self) -> None:
        if not isinstance(self.num_responses, int) or self.num_responses < 2:
            raise ValueError(f"num_responses must be an integer of at least 2, got {self.num_responses!r}")
        if not 0 < self.temperature <= 5:
            raise ValueError(f"temperature must be above 0 and at most 5, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be above 0 and at most 1, got {self.top_p!r}")
        if not isinstance(self.max_new_tokens, int) or not 1 <= self.max_new_tokens <= 4096:
            raise ValueError(f"max_new_tokens must be an integer from 1 to 4096, got {self.max_new_tokens!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer of at least 1, got {self.batch_size!r}")


def format_prompt(tokenizer, prompt: Text) -> str:
    """The prompt as the model expects it: its chat template with the assistant turn opened.

    transformers renders templates in a sandboxed jinja environment, so a template from an
    untrusted model cannot run code. Tokenizers without a template get the raw text.
    """
    if prompt.messages:
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
    else:
        messages = [{"role": "user", "content": prompt.text}]
    if not getattr(tokenizer, "chat_template", None):
        return prompt.text
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as exc:
        # A template is code shipped with the model: a syntax error, or a raise_exception() of
        # its own ("roles must alternate"), surfaces as a jinja2 TemplateError deep inside
        # transformers. Say which model and what is wrong, in one line, not ~50 lines of stack.
        from jinja2 import TemplateError, TemplateSyntaxError

        if not isinstance(exc, TemplateError):
            raise
        name = getattr(tokenizer, "name_or_path", "") or "this model"
        problem = " ".join((getattr(exc, "message", None) or str(exc) or type(exc).__name__).split())
        if isinstance(exc, TemplateSyntaxError) and exc.lineno:
            problem += f" (template line {exc.lineno})"
        raise ChatTemplateError(f"the chat template of model {name} failed: {problem}") from exc


def _derive_seed(*parts: object) -> int:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class _Sampler:
    """One model + tokenizer, turning a batch of prompts into n sampled texts each."""

    def __init__(self, model, tokenizer, config: GenerationConfig):
        self.model, self.tokenizer, self.config = model, tokenizer, config
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = min(self.eos_ids, default=0)
        limit = getattr(model.config, "max_position_embeddings", None)
        # Keep the end of over-long prompts: the question is usually last.
        self.max_prompt_tokens = max(1, limit - config.max_new_tokens) if limit else None
        self._ids: dict[int, list[int]] = {}

    def prompt_ids(self, prompt_id: int, prompt: Text) -> list[int]:
        if prompt_id not in self._ids:
            text = format_prompt(self.tokenizer, prompt)
            bos = self.tokenizer.bos_token
            # A template that already writes BOS must not get a second one from the tokenizer.
            templated = bool(getattr(self.tokenizer, "chat_template", None))
            add_special = not (templated and bos and text.startswith(bos))
            ids = self.tokenizer(text, add_special_tokens=add_special)["input_ids"]
            if self.max_prompt_tokens and len(ids) > self.max_prompt_tokens:
                ids = ids[-self.max_prompt_tokens:]
            self._ids[prompt_id] = ids
        return self._ids[prompt_id]

    def sample(self, batch: Sequence[tuple[int, Text]], n: int, seed: int) -> tuple[list[list[str]], int]:
        """n texts per prompt of ``batch``, and how many tokens were generated for them."""
        import torch

        rows = [self.prompt_ids(pid, prompt) for pid, prompt in batch]
        width = max(len(r) for r in rows)
        input_ids = torch.tensor([[self.pad_id] * (width - len(r)) + r for r in rows])
        attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        device = self.model.device
        torch.manual_seed(seed)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                do_sample=True,
                temperature=self.config.temperature,
                top_p=self.config.top_p,
                max_new_tokens=self.config.max_new_tokens,
                num_return_sequences=n,
                pad_token_id=self.pad_id,
            )
        new = output[:, width:].tolist()  # one GPU sync for the whole batch
        tokens = sum(_count_generated(row, self.eos_ids) for row in new)
        texts = [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return [texts[i * n:(i + 1) * n] for i in range(len(batch))], tokens


def _count_generated(row: list[int], eos_ids: set[int]) -> int:
    for i, token in enumerate(row):
        if token in eos_ids:
            return i + 1
    return len(row)


def _run_batches(
    prompts: Sequence[tuple[int, Text]],
    config: GenerationConfig,
    sink: ProgressSink,
    on_prompt_done: PromptDone | None,
    prompts_per_batch: int,
    length: Callable[[int, Text], int],
    sample: Callable[[Sequence[tuple[int, Text]], int], tuple[list[list[str]], int]],
) -> int:
    """The loop shared by one- and two-model generation: batches, resampling, progress, stop."""
    order = sorted(prompts, key=lambda item: length(*item))
    total, done, tokens = len(order), 0, 0
    started = time.perf_counter()
    sink.log(0, {"total": total, "tokens": 0, "tokens_per_s": 0.0})
    for index, start in enumerate(range(0, total, prompts_per_batch)):
        if sink.should_stop():
            break
        batch = order[start:start + prompts_per_batch]
        texts, used = sample(batch, _derive_seed(config.seed, index))
        tokens += used
        # Identical (or all-empty) responses make a useless pair: resample those prompts once.
        again = [i for i, t in enumerate(texts) if len(set(t)) < len(t)]
        if again:
            retexts, used = sample([batch[i] for i in again], _derive_seed(config.seed, index, "again"))
            tokens += used
            for i, t in zip(again, retexts):
                texts[i] = t
        for (prompt_id, _), responses in zip(batch, texts):
            if on_prompt_done is not None:
                on_prompt_done(prompt_id, responses)
            done += 1
        elapsed = time.perf_counter() - started
        sink.log(done, {"total": total, "tokens": tokens, "tokens_per_s": tokens / max(elapsed, 1e-9)})
    return done


def generate_responses(
    model,
    tokenizer,
    prompts: Sequence[tuple[int, Text]],
    config: GenerationConfig,
    sink: ProgressSink | None = None,
    on_prompt_done: PromptDone | None = None,
) -> int:
    """Sample ``config.num_responses`` responses for each ``(prompt_id, prompt)``.

    Calls ``on_prompt_done(prompt_id, texts)`` as each prompt finishes, stops between batches
    once ``sink.should_stop()``, and returns how many prompts were completed.
    """
    sampler = _Sampler(model, tokenizer, config)
    n = config.num_responses
    return _run_batches(
        prompts, config, sink or NullSink(), on_prompt_done,
        prompts_per_batch=max(1, config.batch_size // n),
        length=lambda pid, prompt: len(sampler.prompt_ids(pid, prompt)),
        sample=lambda batch, seed: sampler.sample(batch, n, seed),
    )


def generate_with_two_models(
    model_a,
    tok_a,
    model_b,
    tok_b,
    prompts: Sequence[tuple[int, Text]],
    config: GenerationConfig,
    sink: ProgressSink | None = None,
    on_prompt_done: PromptDone | None = None,
) -> int:
    """Like ``generate_responses``, but response A comes from model A and B from model B."""
    if config.num_responses != 2:
        raise ValueError(f"two-model generation makes exactly 2 responses, not {config.num_responses}")
    sampler_a = _Sampler(model_a, tok_a, config)
    sampler_b = _Sampler(model_b, tok_b, config)

    def sample(batch, seed):
        texts_a, used_a = sampler_a.sample(batch, 1, seed)
        texts_b, used_b = sampler_b.sample(batch, 1, _derive_seed(seed, "b"))
        return [a + b for a, b in zip(texts_a, texts_b)], used_a + used_b

    return _run_batches(
        prompts, config, sink or NullSink(), on_prompt_done,
        prompts_per_batch=config.batch_size,
        length=lambda pid, prompt: len(sampler_a.prompt_ids(pid, prompt)),
        sample=sample,
    )


def response_sampler(model, tokenizer, config: GenerationConfig | None = None) -> Callable[[Text, int], str]:
    """``sample(prompt, index)``: one response to ``prompt``, seeded by ``config.seed`` and
    ``index`` (the same index always gives the same response, however the calls are grouped).
    For best-of-n, whose progress and cancel are per response; ``num_responses`` is not read."""
    config = config or GenerationConfig()
    sampler = _Sampler(model, tokenizer, config)
    prompt_ids: dict[Text, int] = {}  # the sampler caches token ids per prompt id

    def sample(prompt: Text, index: int) -> str:
        prompt_id = prompt_ids.setdefault(prompt, len(prompt_ids))
        texts, _tokens = sampler.sample([(prompt_id, prompt)], 1, _derive_seed(config.seed, "one", index))
        return texts[0][0]

    return sample
