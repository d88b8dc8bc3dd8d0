"""How a reward run validates: a held-out share of the prompts, or k-fold cross-validation by
prompt when that share would hold out too few pairs to measure anything.

Why: on a small project (the demo: 27 trainable pairs from 27 prompts) a 10% share holds out
3 pairs, and an accuracy on 3 pairs is a coin toss (its standard error is ~0.3). An instant run
is cheap once features are cached, so it fits one head per fold instead, each fold's prompts
held out of that head, and every labeled pair gets one out-of-fold score. The mean and spread
over the folds is what is reported; the saved model is then fitted on all the labels.

``plan_split`` is the one place that decides this: the Train page's preview and the run both call
it, so the counts shown are the counts used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rmstudio.core.reward.data import shuffled_prompts, split_by_prompt

MIN_VAL_PAIRS = 30
"""Below this many validation pairs an instant run cross-validates (with ``cross_validation``
'auto'): with 30 pairs an accuracy of 0.7 still has a standard error of ~0.08."""

MAX_PAIRS = 512
"""Above this many pairs cross-validation is not used (its ~150 head fits stop being instant);
the held-out share is then large enough unless it was set very low."""

FOLDS = 5
MODES = ("auto", "off")


@dataclass(frozen=True)
class SplitPlan:
    train: list
    """What the saved model trains on (every item when cross-validating)."""
    val: list
    """The held-out share (empty when cross-validating)."""
    folds: int = 0
    """Folds by prompt (0: no cross-validation)."""
    fold_of: tuple[int, ...] = ()
    """The fold of each item of ``train`` when cross-validating."""

    @property
    def cross_validated(self) -> bool:
        return self.folds > 0


def prompt_folds(items: list, folds: int, seed: int) -> list[int]:
    """The fold of each item: prompts in the seeded order of ``split_by_prompt`` dealt round
    robin, so fold sizes differ by one prompt at most and no prompt is in two folds."""
    fold_of_prompt = {text: i % folds for i, text in enumerate(shuffled_prompts(items, seed))}
    return [fold_of_prompt[item.prompt.text] for item in items]


def plan_split(items: list, val_fraction: float, seed: int, method: str = "instant",
               objective: str = "pairwise", mode: str = "auto") -> SplitPlan:
    """The split a run with these settings uses (see the module docstring for when it
    cross-validates: an instant pairwise run, ``mode`` 'auto', fewer than ``MIN_VAL_PAIRS``
    validation pairs, at most ``MAX_PAIRS`` pairs, and two prompts or more)."""
    if mode not in MODES:
        raise ValueError(f"cross_validation must be one of {', '.join(MODES)}, got {mode!r}")
    train, val = split_by_prompt(items, val_fraction, seed)
    prompts = len({item.prompt.text for item in items})
    if (mode == "auto" and method == "instant" and objective == "pairwise" and len(val) < MIN_VAL_PAIRS
            and len(items) <= MAX_PAIRS and prompts >= 2):
        folds = min(FOLDS, prompts)
        return SplitPlan(list(items), [], folds, tuple(prompt_folds(items, folds, seed)))
    return SplitPlan(train, val)


def small_validation_warning(plan: SplitPlan, unit: str = "pairs") -> str | None:
    """One line when a held-out split is too small to trust (None when it is fine); ``unit`` is
    what the items are ('pairs', or 'rated responses' for the regression objective)."""
    if plan.cross_validated:
        return None
    if not plan.val:
        hint = ", or use an instant run, which cross-validates" if unit == "pairs" else ""
        return (f"no validation {unit}: the results cannot be measured (raise the validation share "
                f"or label more prompts{hint})")
    if len(plan.val) < MIN_VAL_PAIRS:
        measure = (f"the measured accuracy is rough (its standard error is about "
                   f"{0.5 / len(plan.val) ** 0.5:.2f})" if unit == "pairs" else "the measures are rough")
        return f"only {len(plan.val)} validation {unit}: {measure}; raise the validation share or label more"
    return None


def cross_validate_instant(arrays: tuple, groups: list, fold_of: list[int], folds: int, config,
                           l2: float | None = None) -> dict:
    """k-fold cross-validation of the instant head: per fold, the L2 strength is picked by
    ``l2_by_folds`` on that fold's training pairs only (so the held-out fold chooses nothing),
    the head is fitted there and scores the held-out pairs. A given ``l2`` skips that inner
    search (the live model's cheaper estimate: ~6 fits instead of ~150, a little optimistic
    when that strength was itself picked on all the pairs).

    ``arrays`` = (chosen features, rejected features, target, margin); ``groups`` = the prompt
    of each pair. Returns per-fold metrics, their mean and spread, and the out-of-fold rewards
    (``oof_chosen``/``oof_rejected``: one score per pair, from the head that did not see it)."""
    import torch

    from rmstudio.core.reward.instant import l2_by_folds, train_instant
    from rmstudio.core.reward.losses import bradley_terry_losses, pair_metrics

    x_c, x_r, target, margin = (np.asarray(a) for a in arrays)
    fold_of = np.asarray(fold_of)
    oof_c, oof_r, oof_loss = (np.zeros(len(x_c)) for _ in range(3))
    per_fold = []
    for fold in range(folds):
        held = fold_of == fold
        inner_groups = [g for g, h in zip(groups, held) if not h]
        inner = (x_c[~held], x_r[~held], target[~held], margin[~held])
        strength = l2 if l2 is not None else \
            l2_by_folds(inner, inner_groups, config, folds=min(4, len(set(inner_groups))))[0]
        head = train_instant(inner, None, dataclasses.replace(config, l2_grid=(strength,))).head
        with torch.no_grad():
            r_c, r_r = head(torch.as_tensor(x_c[held])), head(torch.as_tensor(x_r[held]))
            held_target = torch.as_tensor(target[held])
            each = bradley_terry_losses(r_c, r_r, held_target, torch.as_tensor(margin[held]))
            accuracy = pair_metrics(r_c, r_r, held_target)["accuracy"]
        oof_c[held], oof_r[held], oof_loss[held] = r_c.numpy(), r_r.numpy(), each.numpy()
        held_prompts = {g for g, h in zip(groups, held) if h}
        per_fold.append({"fold": fold, "pairs": int(held.sum()), "prompts": len(held_prompts), "l2": strength,
                         "accuracy": accuracy, "loss": float(each.mean())})
    accuracies = np.array([f["accuracy"] for f in per_fold], dtype=float)
    losses = np.array([f["loss"] for f in per_fold])
    measured = accuracies[~np.isnan(accuracies)]  # a fold of ties only has no accuracy
    spread = lambda values: float(values.std(ddof=1)) if len(values) > 1 else 0.0  # noqa: E731
    decided = target > 0.5
    pooled_accuracy = float(((oof_c - oof_r)[decided] > 0).mean()) if decided.any() else float("nan")
    return {"folds": folds, "by": "prompt", "per_fold": per_fold,
            "accuracy_mean": float(measured.mean()) if len(measured) else float("nan"),
            "accuracy_std": spread(measured), "loss_mean": float(losses.mean()), "loss_std": spread(losses),
            "pooled_accuracy": pooled_accuracy,
            "pooled_loss": float(oof_loss.mean()), "oof_chosen": oof_c, "oof_rejected": oof_r}


def describe(summary: dict) -> str:
    """'cross-validated accuracy 0.71 ± 0.08 (5 folds by prompt)'."""
    return (f"cross-validated accuracy {summary['accuracy_mean']:.2f} ± {summary['accuracy_std']:.2f} "
            f"({summary['folds']} folds by prompt)")
