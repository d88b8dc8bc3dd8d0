"""The reward of a GRPO/RLOO run, as TRL calls it: ``f(prompts, completions, **kwargs) -> list[float]``.

``reward_function(spec)`` reads ``PolicyConfig.reward``: a folder holding a reward model
rmstudio made (an instant model or a fine-tuned one, loaded by ``reward.scoring``), or
``package.module:function`` naming any such function. TRL names a function's curve after its
``__name__`` (``rewards/<name>/mean``), so a reward model scores under ``reward_model``.

TRL hands over prompts and completions as strings for plain-text data and as lists of chat
turns for conversational data; both are scored as rmstudio scores a pair (prompt text, response
text: the messages flattened as the importer flattens them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from rmstudio.core.data.formats.parse import render_messages
from rmstudio.core.data.records import Message, Text
from rmstudio.core.errors import RmstudioError


class RewardSpecError(RmstudioError):
    """A reward that names neither a reward model folder nor an importable function."""


def as_text(value) -> Text:
    """A TRL prompt or completion (a string, or a list of ``{"role", "content"}`` turns) as a Text."""
    if isinstance(value, str):
        return Text(value)
    messages = tuple(Message(m["role"], m["content"] if isinstance(m["content"], str) else str(m["content"]))
                     for m in value)
    return Text(render_messages(messages), messages)


class RewardModelReward:
    """A reward model folder as a TRL reward function (loaded on first call, then kept)."""

    __name__ = "reward_model"

    def __init__(self, folder: str | Path, device: str | None = None, batch: int = 32):
        self.folder = Path(folder)
        self.device = device
        self.batch = batch
        self._scorer = None

    @property
    def scorer(self):
        if self._scorer is None:
            from rmstudio.core.reward.scoring import load_reward_model

            self._scorer = load_reward_model(self.folder, device=self.device)
        return self._scorer

    def __call__(self, prompts: list, completions: list, **kwargs) -> list[float]:
        scores = self.scorer.score_texts([as_text(p) for p in prompts], [as_text(c) for c in completions],
                                         batch=self.batch)
        return [float(s) for s in scores]


def reward_function(spec: str, device: str | None = None) -> Callable:
    """The TRL reward function ``spec`` names (see the module docstring); RewardSpecError if none."""
    spec = spec.strip()
    folder = Path(spec).expanduser()
    if folder.is_dir():
        reward = RewardModelReward(folder, device)
        reward.scorer  # noqa: B018 - load now: a broken folder fails before any training
        return reward
    module_name, colon, attr = spec.partition(":")
    if colon and module_name and attr and "/" not in module_name and "\\" not in module_name:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise RewardSpecError(f"reward {spec!r}: cannot import {module_name!r} ({exc})") from None
        function = getattr(module, attr, None)
        if not callable(function):
            raise RewardSpecError(f"reward {spec!r}: {module_name} has no function {attr!r}")
        return function
    raise RewardSpecError(f"reward {spec!r} is neither a reward model folder nor package.module:function")


def check_reward(spec: str) -> None:
    """Refuse a reward that cannot work, cheaply (no model is loaded)."""
    spec = spec.strip()
    folder = Path(spec).expanduser()
    if folder.is_dir():
        from rmstudio.core.reward.instant_model import CONFIG_FILE

        if not ((folder / CONFIG_FILE).is_file() or (folder / "config.json").is_file()):
            raise RewardSpecError(f"reward {spec!r} is a folder but holds no reward model")
        return
    if ":" not in spec:
        raise RewardSpecError(f"reward {spec!r}: no such reward model folder")
    reward_function(spec)


class SampleTap:
    """Wraps a run's reward function and, every ``every`` training steps, reports a few of the
    answers it just scored with their rewards (``{"samples": [...]}`` through the recorder: a
    window shows them as a table; numbers-only recording keeps them out of the project).

    Only TRL's own calls are reported (it passes ``trainer_state``), so the guard's and
    best-of-n's scoring with the same function never shows as training samples."""

    def __init__(self, function: Callable, recorder, trainer, every: int = 5, rows: int = 6):
        self.function, self.recorder, self.trainer = function, recorder, trainer
        self.every, self.rows = max(1, every), rows
        self.__name__ = getattr(function, "__name__", "reward")
        self._last_step = -1

    def __call__(self, prompts: list, completions: list, **kwargs) -> list[float]:
        rewards = self.function(prompts, completions, **kwargs)
        step = self.trainer.state.global_step
        if "trainer_state" in kwargs and step != self._last_step and step % self.every == 0:
            self._last_step = step
            samples = [{"prompt": as_text(p).text[-300:], "completion": as_text(c).text[:600],
                        "reward": float(r)} for p, c, r in list(zip(prompts, completions, rewards))[:self.rows]]
            self.recorder.log(step, {"samples": samples})
        return rewards
