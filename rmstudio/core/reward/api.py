"""The public scoring API: a reward model you call with plain strings, or hand to TRL.

``rmstudio.load_reward_model(folder)`` returns a :class:`RewardModel` for either kind of model
rmstudio saves (instant or fine-tuned). It scores plain strings (``Text`` works too), and it is a
TRL reward function as it is: ``GRPOTrainer(reward_funcs=[rm])`` calls it with ``prompts`` and
``completions`` that are strings or conversations (lists of ``{"role", "content"}`` dicts).

Conversations are flattened exactly as the importer flattens them (``render_messages``), because
that is the text the model was trained on: a lone user turn is its content, a completion is its
assistant turns' contents, anything else is "Role: content" turns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from rmstudio.core.data.formats.parse import render_messages
from rmstudio.core.data.records import Message, Text
from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.reward.scoring import RewardModelError, RewardScorer, load_reward_model

TextLike = str | Text | Sequence[dict]


def as_text(value, field: str = "text", completion: bool = False) -> str:
    """Plain text of a string, a ``Text`` or a conversation; a completion keeps only its
    assistant turns (TRL appends tool results after them, which the model never saw in training)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Text):
        return value.text
    if isinstance(value, dict) and "content" in value:  # one message on its own
        value = [value]
    if isinstance(value, (list, tuple)) and all(isinstance(m, dict) for m in value) and value:
        messages = [Message(str(m.get("role", "user")), _content(m.get("content"), field)) for m in value]
        if completion:
            assistant = [m for m in messages if m.role == "assistant"]
            messages = assistant or messages
        return render_messages(messages)
    raise RewardModelError(f"{field}: expected a string or a list of {{'role', 'content'}} messages, "
                           f"got {type(value).__name__}")


def _content(content, field: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and p.get("type", "text") == "text")
    raise RewardModelError(f"{field}: a message's content must be a string, got {type(content).__name__}")


class RewardModel:
    """A loaded reward model. ``score`` for people, ``__call__`` for TRL.

    ``normalized=True`` returns ``(reward - mean) / std`` with the training rewards' statistics
    the folder stores (an instant model's head, a fine-tuned model's ``config.json``), so rewards
    of different models share a scale; loading refuses it when the folder stores none.
    """

    def __init__(self, scorer: RewardScorer, normalized: bool = False, name: str = "reward_model",
                 batch_size: int = 16):
        self.scorer = scorer
        self.normalized = normalized
        self.batch_size = batch_size
        # TRL names a reward function's logged columns after __name__ (get_callable_name).
        self.__name__ = name
        self.stats = _reward_stats(scorer)
        if normalized and self.stats is None:
            raise RewardModelError(f"{scorer.folder} stores no reward mean/std (config.json → rmstudio."
                                   "reward_mean / reward_std): score it without normalized")

    @property
    def kind(self) -> str:
        return "instant" if self.scorer.instant is not None else "finetuned"

    @property
    def folder(self):
        return self.scorer.folder

    def __repr__(self) -> str:
        return f"RewardModel({str(self.folder)!r}, kind={self.kind!r}, normalized={self.normalized})"

    def score(self, prompt: TextLike, response: TextLike | Sequence[TextLike]) -> float | list[float]:
        """The reward of one response (a float) or of each of a list of responses (a list)."""
        single = isinstance(response, (str, Text)) or (
            isinstance(response, (list, tuple)) and bool(response) and isinstance(response[0], dict))
        responses = [response] if single else list(response)
        p = as_text(prompt, "prompt")
        rewards = self.score_rows([p] * len(responses), [as_text(r, "response", True) for r in responses])
        return rewards[0] if single else rewards

    def score_rows(self, prompts: Sequence[str], responses: Sequence[str],
                   sink: ProgressSink | None = None) -> list[float]:
        """Rewards of (prompt, response) rows, each with its own prompt, in batches.

        Rows that share a prompt are scored together: an instant model then reads that prompt
        once (GRPO sends each prompt with all its completions)."""
        if len(prompts) != len(responses):
            raise RewardModelError(f"{len(prompts)} prompts but {len(responses)} responses")
        sink = sink or NullSink()
        out: list[float | None] = [None] * len(prompts)
        if self.scorer.instant is not None:
            groups: dict[str, list[int]] = {}
            for i, p in enumerate(prompts):
                groups.setdefault(p, []).append(i)
            done = 0
            for p, rows in groups.items():
                for k in range(0, len(rows), self.batch_size):
                    if sink.should_stop():
                        raise InterruptedError("scoring was cancelled")
                    chunk = rows[k:k + self.batch_size]
                    rewards = self.scorer.score(Text(p), [Text(responses[i]) for i in chunk])
                    for i, r in zip(chunk, rewards):
                        out[i] = float(r)
                    done += len(chunk)
                    sink.log(done, {"total": len(prompts)})
        else:
            # score_texts sorts by length within the call; one call per batch keeps progress live.
            for k in range(0, len(prompts), self.batch_size * 4):
                if sink.should_stop():
                    raise InterruptedError("scoring was cancelled")
                rewards = self.scorer.score_texts([Text(p) for p in prompts[k:k + self.batch_size * 4]],
                                                  [Text(r) for r in responses[k:k + self.batch_size * 4]],
                                                  batch=self.batch_size)
                out[k:k + len(rewards)] = [float(r) for r in rewards]
                sink.log(k + len(rewards), {"total": len(prompts)})
        return [self.normalize(r) for r in out]

    def normalize(self, reward: float) -> float:
        if not self.normalized:
            return reward
        mean, std = self.stats
        return (reward - mean) / std

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float]:
        """TRL reward-function form: one reward per (prompt, completion); other keyword
        arguments TRL passes (completion_ids, trainer_state, dataset columns) are ignored."""
        if prompts is None or completions is None:
            raise RewardModelError("a reward function needs prompts= and completions=")
        if len(prompts) != len(completions):
            raise RewardModelError(f"{len(prompts)} prompts but {len(completions)} completions")
        return self.score_rows([as_text(p, "prompt") for p in prompts],
                               [as_text(c, "completion", completion=True) for c in completions])


def _reward_stats(scorer: RewardScorer) -> tuple[float, float] | None:
    if scorer.instant is not None:
        head = scorer.instant.head
        return float(head.reward_mean), float(head.reward_std)
    try:
        stats = json.loads((scorer.folder / "config.json").read_text(encoding="utf-8")).get("rmstudio") or {}
    except (OSError, ValueError):
        return None
    if "reward_mean" not in stats or not stats.get("reward_std"):
        return None
    return float(stats["reward_mean"]), float(stats["reward_std"])


def load(path, device: str | None = None, normalized: bool = False,
         name: str = "reward_model") -> RewardModel:
    """Load an rmstudio reward model folder (instant or fine-tuned) as a :class:`RewardModel`."""
    return RewardModel(load_reward_model(path, device=device), normalized=normalized, name=name)
