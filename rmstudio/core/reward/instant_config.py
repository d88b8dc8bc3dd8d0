"""Settings of the instant reward head (no torch import: the GUI reads this at start-up)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InstantConfig:
    head: str = "linear"
    """'linear' (logistic regression on feature differences) or 'mlp' (one hidden layer)."""

    l2_grid: tuple[float, ...] = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    """L2 strengths tried; the best on the validation split wins (the first when there is none)."""

    ridge_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    """L2 strengths tried by the regression objective (ridge regression on ratings)."""

    hidden: int = 64
    """Hidden units of the MLP head."""

    max_iter: int = 200
    """L-BFGS iterations per fit."""

    center_coefficient: float = 0.0
    """Reward centering: pulls the mean reward to zero (TRL's center_rewards_coefficient)."""

    seed: int = 0

    def __post_init__(self) -> None:
        if self.head not in ("linear", "mlp"):
            raise ValueError(f"head must be 'linear' or 'mlp', got {self.head!r}")
        for name in ("l2_grid", "ridge_grid"):
            grid = getattr(self, name)
            if not grid or any(v < 0 for v in grid):
                raise ValueError(f"{name} must hold one or more non-negative numbers")
        if self.hidden < 1 or self.max_iter < 1:
            raise ValueError("hidden and max_iter must be at least 1")
