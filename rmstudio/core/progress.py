"""The progress sink every long job takes: the core reports, the caller decides how to show it.

The CLI wraps it in a tqdm bar, the GUI worker turns it into Qt signals; the job itself only
calls ``log`` and polls ``should_stop`` between units of work.
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
