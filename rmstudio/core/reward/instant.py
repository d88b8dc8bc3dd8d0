"""The instant reward model: a linear (or small MLP) head on frozen, cached backbone features.

With a linear head, Bradley-Terry is logistic regression on feature differences, so training is
a few L-BFGS steps on a (pairs x features) matrix: about a second, which is what lets it retrain
itself in the background as labels arrive. The L2 strength is picked on the validation split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from rmstudio.core.reward.instant_config import InstantConfig
from rmstudio.core.reward.instant_solver import MAX_PAIRS, fit_linear_newton, one_thread
from rmstudio.core.reward.losses import bradley_terry_loss, bradley_terry_losses, pair_metrics, standard_error


class InstantHead(torch.nn.Module):
    """reward(features) = head((features - mean) / std) * scale + shift, normalised on train."""

    def __init__(self, dim: int, head: str = "linear", hidden: int = 64):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_std", torch.ones(dim))
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))
        if head == "linear":
            self.net = torch.nn.Linear(dim, 1, bias=False)
        else:
            self.net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(),
                                           torch.nn.Linear(hidden, 1, bias=False))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.feature_mean) / self.feature_std).squeeze(-1)


@dataclass
class InstantResult:
    head: InstantHead
    l2: float
    train_metrics: dict
    val_metrics: dict
    tried: list = field(default_factory=list)
    config: dict = field(default_factory=dict)


def _fit(x_c, x_r, target, margin, dim, config, l2) -> InstantHead:
    if config.head == "linear" and not config.center_coefficient and len(x_c) <= MAX_PAIRS:
        # Small projects: an exact Newton solve in milliseconds (instant_solver.py); it needs no
        # seed (torch.manual_seed alone costs ~3 ms a call).
        head = InstantHead(dim, config.head, config.hidden)
        with torch.no_grad():
            head.net.weight.copy_(fit_linear_newton(x_c, x_r, target, margin, l2)[None])
        return head
    torch.manual_seed(config.seed)
    head = InstantHead(dim, config.head, config.hidden)
    params = list(head.net.parameters())
    optimizer = torch.optim.LBFGS(params, lr=1.0, max_iter=config.max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        r_c, r_r = head.net(x_c).squeeze(-1), head.net(x_r).squeeze(-1)
        loss = bradley_terry_loss(r_c, r_r, target, margin, config.center_coefficient)
        loss = loss + l2 * sum((p ** 2).sum() for p in params if p.ndim > 1)
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def train_instant(train: tuple, val: tuple | None, config: InstantConfig | None = None) -> InstantResult:
    """``train``/``val`` = (chosen features, rejected features, target, margin) as numpy arrays."""
    if len(train[0]) <= MAX_PAIRS:  # tiny ops: thread hand-offs would cost more than the work
        with one_thread():
            return _train_instant(train, val, config)
    return _train_instant(train, val, config)


def _train_instant(train: tuple, val: tuple | None, config: InstantConfig | None = None) -> InstantResult:
    config = config or InstantConfig()
    x_c, x_r, target, margin = (torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in train)
    if len(x_c) == 0:
        raise ValueError("no labeled pairs to train on: label some pairs (a, b or tie) first")
    dim = x_c.shape[1]
    stacked = torch.cat([x_c, x_r])
    mean, std = stacked.mean(0), stacked.std(0).clamp(min=1e-6)
    norm = lambda x: (x - mean) / std
    x_cn, x_rn = norm(x_c), norm(x_r)
    if val is not None and len(val[0]):
        v_c, v_r, v_t, v_m = (torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in val)
        v_cn, v_rn = norm(v_c), norm(v_r)
    else:
        v_cn = None
    tried, best = [], None
    for l2 in (config.l2_grid if v_cn is not None else config.l2_grid[len(config.l2_grid) // 2:][:1]):
        head = _fit(x_cn, x_rn, target, margin, dim, config, l2)
        with torch.no_grad():
            score = (bradley_terry_loss(head.net(v_cn).squeeze(-1), head.net(v_rn).squeeze(-1), v_t, v_m).item()
                     if v_cn is not None else 0.0)
        tried.append({"l2": l2, "val_loss": score})
        if best is None or score < best[0]:
            best = (score, l2, head)
    _, l2, head = best
    head.feature_mean.copy_(mean)
    head.feature_std.copy_(std)
    with torch.no_grad():
        r_c, r_r = head(x_c), head(x_r)
        rewards = torch.cat([r_c, r_r])
        head.reward_mean.copy_(rewards.mean())
        head.reward_std.copy_(rewards.std().clamp(min=1e-6))
        train_metrics = {"loss": bradley_terry_loss(r_c, r_r, target, margin).item(),
                         **pair_metrics(r_c, r_r, target)}
        val_metrics = {}
        if v_cn is not None:
            vc, vr = head(v_c), head(v_r)
            each = bradley_terry_losses(vc, vr, v_t, v_m)
            val_metrics = {"loss": each.mean().item(), **pair_metrics(vc, vr, v_t),
                           "loss_se": standard_error(each)}
    return InstantResult(head, l2, train_metrics, val_metrics, tried, asdict(config))


def train_instant_regression(train: tuple, val: tuple | None, config: InstantConfig | None = None) -> InstantResult:
    """The regression objective: ``train``/``val`` = (features, target) numpy arrays, the target
    a standardised rating. Ridge regression in closed form on standardised features,
    w = (XᵀX/n + l2·I)⁻¹ Xᵀy/n, its strength picked from ``config.ridge_grid`` by validation MSE."""
    config = config or InstantConfig()
    x, y = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in train)
    if len(x) < 2:
        raise ValueError("the regression objective needs at least 2 rated responses to train on")
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    xn = (x - mean) / std
    gram, moment = xn.T @ xn / len(x), xn.T @ y / len(x)
    has_val = val is not None and len(val[0]) > 0
    if has_val:
        v_x, v_y = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in val)
        v_xn = (v_x - mean) / std
    grid = config.ridge_grid if has_val else config.ridge_grid[len(config.ridge_grid) // 2:][:1]
    tried, best = [], None
    for l2 in grid:
        w = torch.linalg.solve(gram + l2 * torch.eye(len(gram), dtype=gram.dtype), moment)
        score = ((v_xn @ w - v_y) ** 2).mean().item() if has_val else 0.0
        tried.append({"l2": l2, "val_loss": score})
        if best is None or score < best[0]:
            best = (score, l2, w)
    _, l2, w = best
    head = InstantHead(x.shape[1], "linear")
    with torch.no_grad():
        head.net.weight.copy_(w.float()[None])
        head.feature_mean.copy_(mean.float())
        head.feature_std.copy_(std.float())
        rewards = head(x.float())
        head.reward_mean.copy_(rewards.mean())
        head.reward_std.copy_(rewards.std().clamp(min=1e-6))
        train_metrics = regression_metrics(rewards, y.float())
        val_metrics = regression_metrics(head(v_x.float()), v_y.float()) if has_val else {}
    return InstantResult(head, l2, train_metrics, val_metrics, tried, asdict(config))


def regression_metrics(predicted: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """loss (= mse, on the standardised scale), mse, pearson, mean_reward, and loss_se (the
    standard error of the mean loss)."""
    predicted, target = predicted.detach().double(), target.detach().double()
    each = (predicted - target) ** 2
    mse = each.mean().item()
    pearson = (torch.corrcoef(torch.stack([predicted, target]))[0, 1].item()
               if len(target) > 1 and predicted.std() > 0 and target.std() > 0 else float("nan"))
    return {"loss": mse, "mse": mse, "pearson": pearson, "mean_reward": predicted.mean().item(),
            "loss_se": standard_error(each)}


def l2_by_folds(train: tuple, groups, config: InstantConfig | None = None, folds: int = 4,
                fit=None) -> tuple[float, dict]:
    """The L2 strength with the lowest held-out loss over ``folds`` folds of the training pairs
    themselves, and each strength's pooled held-out loss. ``fit`` is train_instant (the grid
    ``config.l2_grid``) or train_instant_regression (``config.ridge_grid``).

    ``groups`` (one label per pair, such as its prompt) keeps a group in one fold. Choosing the
    strength this way leaves the validation split untouched, so a head fitted with it is scored
    on validation without the optimism of having been picked there.
    """
    config = config or InstantConfig()
    fit = fit or train_instant
    grid = config.ridge_grid if fit is train_instant_regression else config.l2_grid
    index: dict = {}
    group_of = np.array([index.setdefault(g, len(index)) for g in groups])
    fold_of = np.random.default_rng(config.seed).permutation(len(index))[group_of] % folds
    totals = dict.fromkeys(grid, 0.0)
    evaluated = False
    arrays = [np.asarray(a) for a in train]
    for k in range(folds):
        held = fold_of == k
        if held.all() or not held.any():
            continue
        result = fit(tuple(a[~held] for a in arrays), tuple(a[held] for a in arrays), config)
        evaluated = True
        for tried in result.tried:
            totals[tried["l2"]] += tried["val_loss"] * held.sum() / len(held)
    if not evaluated:  # one group only: nothing to hold out, so the grid's middle, as train_instant does
        return grid[len(grid) // 2], {}
    return min(totals, key=totals.get), totals
