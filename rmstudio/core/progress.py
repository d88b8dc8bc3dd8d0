"""The progress sink every long job takes: the core reports, the caller decides how to show it.

The CLI wraps it in a tqdm bar, the GUI worker turns it into Qt signals; the job itself only
calls ``log`` and polls ``should_stop`` between units of work.

What a report may hold besides named numbers (``train/loss``), so that any window or bar can
show any job's progress without knowing the job:

- ``message``: one sentence a person reads ("Computing features: 120 of 400 from cache");
- ``done`` and ``total`` (with ``unit``, "responses", "pairs"): a bar that fills;
- ``total_steps``: the step count of a training loop (``step`` is then the bar's value);
- ``stage``: a short machine word ("features", "train") for code that must tell stages apart.
"""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Report progress: ``step`` counts finished units, ``metrics`` holds named numbers
        (for example ``{"total": 120}`` or ``{"train/loss": 0.61}``)."""

    def should_stop(self) -> bool:
        """True once the user asked to cancel; the job stops at the next safe point."""


class NullSink:
    """A sink that shows nothing and never stops."""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def should_stop(self) -> bool:
        return False
