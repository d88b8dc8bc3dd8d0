"""The Bradley-Terry loss and the metrics logged under TRL's names.

    loss = -target * log σ(r_chosen - r_rejected - margin) - (1 - target) * log σ(r_rejected - r_chosen)

target = 1 for a preference (the plain BT loss −log σ(Δ − m)), 0.5 for a tie (pulls the
rewards together); margin > 0 for "much better" labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_losses(r_chosen: torch.Tensor, r_rejected: torch.Tensor, target: torch.Tensor | None = None,
                         margin: torch.Tensor | None = None) -> torch.Tensor:
    """The loss of each pair (no mean, no centering)."""
    diff = r_chosen - r_rejected
    shifted = diff - margin if margin is not None else diff
    if target is None:
        return -F.logsigmoid(shifted)
    return -target * F.logsigmoid(shifted) - (1 - target) * F.logsigmoid(-diff)


def standard_error(each: torch.Tensor) -> float:
    """The standard error of the mean of per-example losses: how far apart two validations' mean
    losses must be to differ by more than their noise."""
    return (each.std() / len(each) ** 0.5).item() if len(each) > 1 else 0.0


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, target: torch.Tensor | None = None,
                       margin: torch.Tensor | None = None, center_coefficient: float = 0.0) -> torch.Tensor:
    loss = bradley_terry_losses(r_chosen, r_rejected, target, margin).mean()
    if center_coefficient:
        # Reward centering (Eisenstein et al. 2023), as TRL's center_rewards_coefficient.
        loss = loss + center_coefficient * ((r_chosen + r_rejected) ** 2).mean()
    return loss


def pair_metrics(r_chosen: torch.Tensor, r_rejected: torch.Tensor,
                 target: torch.Tensor | None = None) -> dict[str, float]:
    """accuracy (ties left out), margin, mean_reward: the keys TRL's RewardTrainer logs."""
    diff = (r_chosen - r_rejected).detach().float()
    decided = target is None or target.ndim == 0
    mask = torch.ones_like(diff, dtype=torch.bool) if decided else target.detach() > 0.5
    accuracy = (diff[mask] > 0).float().mean().item() if mask.any() else float("nan")
    return {"accuracy": accuracy, "margin": diff.mean().item(),
            "mean_reward": torch.cat([r_chosen, r_rejected]).detach().float().mean().item()}
