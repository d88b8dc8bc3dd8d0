"""Plain, immutable records that every data format is parsed into and exported from.

A prompt keeps its exact text (so HH-style dialogues rebuild byte for byte) and, where the
source was a conversation, its messages too. Choices are the label vocabulary of the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHOICES = ("a", "b", "tie", "both_bad", "skip")
ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Text:
    """A prompt or a response.

    ``text`` is the exact flat text (what explicit-prompt exports write).
    ``messages`` is set when the source was conversational (prompt turns, or the assistant
    turn(s) of a response); ``None`` for plain text sources.
    """

    text: str
    messages: tuple[Message, ...] | None = None


@dataclass(frozen=True)
class PairRecord:
    """Two responses to one prompt, with an optional label.

    ``choice`` is None for an unlabeled pair, else one of CHOICES ('a' means response_a is
    better). ``annotator`` is None when the label comes from the source itself (a
    chosen/rejected file): the importer then credits an annotator named after the source.
    """

    prompt: Text
    response_a: Text
    response_b: Text
    choice: str | None = None
    annotator: str | None = None
    strength: int | None = None  # 1 = better, 2 = much better
    note: str | None = None
    created_at: str | None = None
    line: int = 0


@dataclass(frozen=True)
class PromptRecord:
    """A prompt with no responses yet (to be generated)."""

    prompt: Text
    line: int = 0


@dataclass(frozen=True)
class RankingRecord:
    """A prompt with several responses ordered by preference.

    ``scores`` are parallel to ``responses``; higher is better (ranks are converted so that
    rank 1 gets the highest score). Equal scores mean no preference between those two.
    """

    prompt: Text
    responses: tuple[Text, ...]
    scores: tuple[float, ...]
    annotator: str | None = None
    line: int = 0
    scale: str = "order"
    """'rating' when the scores are the source's own ratings or scores (comparable across
    prompts: a regression target); 'order' when only their order means something (ranks)."""
    extra: dict = field(default_factory=dict, compare=False)


Record = PairRecord | PromptRecord | RankingRecord
