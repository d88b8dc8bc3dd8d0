"""A run kind: what any long training is to the rest of rmstudio.

A kind is a typed config (a dataclass with a docstring per field, checked in ``__post_init__``)
and one function ``run(project_path, config, recorder) -> dict``. It also declares its plots:
which metrics share an axis, so a window draws curves it has never heard of. Reward training
is one kind (``rmstudio.core.reward.kind:REWARD``); policy optimisation and anything later are
more of the same. The launcher and the child process find a kind by reference,
``"package.module:NAME"``: they import no kind by name, so a new kind changes neither.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rmstudio.core.runs import codec


@dataclass(frozen=True)
class Plot:
    """One plot of a run's live view: these metrics (``train/loss``, ``val/loss``...) on one axis."""

    title: str
    metrics: tuple[str, ...]
    y_label: str = ""
    y_limits: tuple[float, float] | None = None
    """The most the view can be zoomed out to (an accuracy stays within 0..1)."""
    rising: bool = False
    """The curves go up as the run learns (accuracy): the legend sits at the bottom right."""
    names: tuple[str, ...] = ()
    """What the legend calls each metric, in the order of ``metrics`` (default: by split, or the
    metric's own name)."""


@dataclass(frozen=True)
class RunKind:
    name: str
    """Stored as the run's kind in the project ('reward', 'policy', ...)."""

    config_type: type
    """The dataclass of its settings; ``codec`` carries it to a child process and back."""

    run: Callable[..., dict]
    """``run(project_path, config, recorder) -> result``: the work itself. It writes only
    through the recorder and returns a JSON-able result with at least a 'status'."""

    plots: tuple[Plot, ...] = ()
    """The live view: metrics grouped into plots (a metric in no plot is still recorded)."""

    plots_for: Callable[[Any], tuple[Plot, ...]] | None = None
    """The live view of one run, when it depends on the config (a regression has no margin, an
    instant fit no curves at all); ``plots`` otherwise. See ``plots_of``."""

    live_note: Callable[[Any], str] = lambda config: ""
    """What a window shows in place of curves when a run of this config has none."""

    describe: Callable[[Any], str] = repr
    """A short name for a run of this kind, from its config ('lora on embedded')."""

    resume_of: Callable[[Any, Any], int | None] = lambda project_path, config: None
    """The run a config continues (``resume_of(project_path, config)``), or None for a new one."""

    precheck: Callable[[Any, Any], None] = lambda project_path, config: None
    """Raises (one line) before a run is recorded when it cannot start (no labels, say)."""

    module: str = ""
    """Where the kind is defined (filled in from the caller): how another process finds it."""

    def __post_init__(self) -> None:
        if not self.module:  # the module whose code ran RunKind(...): __init__'s caller
            object.__setattr__(self, "module", sys._getframe(2).f_globals.get("__name__", ""))

    def plots_of(self, config: Any) -> tuple[Plot, ...]:
        """The plots a run of ``config`` fills."""
        return tuple(self.plots_for(config)) if self.plots_for is not None else self.plots

    def config_from_json(self, data: Any):
        return codec.decode(self.config_type, data, where=self.name)


def kind_ref(kind: RunKind) -> str:
    """How another process finds ``kind``: its module and the name it is bound to there."""
    for module_name in (kind.module, getattr(kind.run, "__module__", None)):
        module = sys.modules.get(module_name) if module_name else None
        for attr, value in vars(module).items() if module is not None else ():
            if value is kind:
                return f"{module_name}:{attr}"
    raise ValueError(f"run kind {kind.name!r} is not bound to a name in its module; "
                     "define it at module level next to its run function")


def load_kind(ref: str) -> RunKind:
    """The kind named by ``"package.module:NAME"``; ValueError says what is wrong."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"a run kind is named 'package.module:NAME', got {ref!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import run kind module {module_name!r}: {exc}") from None
    kind = getattr(module, attr, None)
    if not isinstance(kind, RunKind):
        raise ValueError(f"{ref} is not a run kind")
    return kind
