"""Best-of-n for one prompt: sample n responses, score them with a reward model, rank them.

What the Score page's best-of-n box and ``rmstudio score --best-of N`` run. The generator and
the scorer are plain callables, so the loop knows nothing of models: ``generator(prompt, k)``
returns the k-th response (``models.generation.response_sampler`` for a causal LM) and
``scorer(prompt, responses)`` their rewards (``RewardModel.score``).

Responses are generated one at a time, not in one batch: with n at most 16 the batching lost
is small next to what the user gains, progress per response ("3 of 8 generated") and a cancel
that stops after the response being written. A cancel keeps what was generated: those
responses are scored and ranked all the same. (``core.policy.best_of_n`` is another thing: the
expected best-of-n reward over many prompts, a baseline for policy optimisation.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rmstudio.core.progress import NullSink, ProgressSink

MAX_N = 16
"""The most responses one best-of-n asks for (the window's and the command line's limit)."""

Generator = Callable[[str, int], str]
Scorer = Callable[[str, Sequence[str]], Sequence[float]]


@dataclass(frozen=True)
class RankedResponse:
    rank: int
    """1 for the highest reward."""
    reward: float
    text: str
    index: int
    """Which sample it was (0 for the first generated): the order before ranking."""


def check_n(n) -> int:
    """``n`` when it is a whole number from 1 to MAX_N; ValueError naming it otherwise."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise ValueError(f"best-of-n needs n from 1 to {MAX_N}, got {n!r}")
    return n


def rank_responses(responses: Sequence[str], rewards: Sequence[float]) -> list[RankedResponse]:
    """The responses by reward, highest first; equal rewards keep the order they were made in."""
    if len(responses) != len(rewards):
        raise ValueError(f"{len(responses)} responses but {len(rewards)} rewards")
    order = sorted(range(len(responses)), key=lambda i: (-float(rewards[i]), i))
    return [RankedResponse(rank, float(rewards[i]), responses[i], i) for rank, i in enumerate(order, 1)]


def best_of_n_responses(generator: Generator, scorer: Scorer, prompt: str, n: int,
                        sink: ProgressSink | None = None) -> list[RankedResponse]:
    """Generate ``n`` responses to ``prompt``, score them and return them ranked, best first.

    Reports ``(k, {"done": k, "total": n, "unit": "responses", "seconds_left": ...})`` after each
    response and ``{"stage": "score"}`` before scoring; stops generating once
    ``sink.should_stop()``, and then ranks the responses made so far (fewer than n, maybe none).
    """
    check_n(n)
    if not prompt.strip():
        raise ValueError("best-of-n needs a prompt")
    sink = sink or NullSink()
    responses: list[str] = []
    started = time.perf_counter()
    sink.log(0, {"done": 0, "total": n, "unit": "responses"})
    for k in range(n):
        if sink.should_stop():
            break
        responses.append(generator(prompt, k))
        elapsed = time.perf_counter() - started
        sink.log(k + 1, {"done": k + 1, "total": n, "unit": "responses",
                         "seconds_left": elapsed / (k + 1) * (n - k - 1)})
    if not responses:
        return []
    sink.log(len(responses), {"stage": "score", "message": f"Scoring {len(responses)} responses"})
    rewards = list(scorer(prompt, list(responses)))
    return rank_responses(responses, rewards)


def lm_generator(model, tokenizer, seed: int = 0, max_new_tokens: int = 128,
                 temperature: float = 0.8, top_p: float = 0.95) -> Generator:
    """A causal LM (from ``models.loading.load_causal_lm``) as a best-of-n generator; the
    prompt goes through the model's chat template as a user turn."""
    from rmstudio.core.data.records import Text
    from rmstudio.core.models.generation import GenerationConfig, response_sampler

    config = GenerationConfig(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    sample = response_sampler(model, tokenizer, config)
    return lambda prompt, k: sample(Text(prompt), k)
