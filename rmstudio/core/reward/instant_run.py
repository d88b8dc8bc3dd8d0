"""The instant method inside a reward run: features (cached in the project), the fitted head, its
evaluation and saved model; and the instant teacher a fine-tune distils from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rmstudio.core.reward.data import TrainingPair
from rmstudio.core.reward.evaluate import evaluate_pairs, evaluate_ratings


def pair_arrays(pairs: list[TrainingPair], vectors: dict[int, np.ndarray]) -> tuple:
    return (np.stack([vectors[p.chosen_id] for p in pairs]), np.stack([vectors[p.rejected_id] for p in pairs]),
            np.array([p.target for p in pairs], dtype=np.float32),
            np.array([p.margin for p in pairs], dtype=np.float32))


def instant_features(project, config, items, sink, step: int):
    """The instant model and the features of every response in ``items`` (cached in the
    project), or None when cancelled during the features."""
    from rmstudio.core.reward.instant_model import InstantRewardModel, response_features

    model = InstantRewardModel.from_base(config.base, config.features, device=config.device)
    vectors = response_features(project, model, items, sink)
    if sink.should_stop():
        return None
    sink.log(step, {"stage": "fit", "message": "Fitting the head…"})
    return model, vectors


def fit_instant(project, config, train, val, sink, step: int):
    """Features (cached in the project) and a fitted instant head: (model, vectors, fitted),
    or None when cancelled during the features."""
    from rmstudio.core.reward.instant import train_instant

    found = instant_features(project, config, train + val, sink, step)
    if found is None:
        return None
    model, vectors = found
    fitted = train_instant(pair_arrays(train, vectors), pair_arrays(val, vectors) if val else None,
                           config.instant)
    return model, vectors, fitted


def head_rewards(head, pairs, vectors) -> tuple[np.ndarray, np.ndarray]:
    import torch

    x_c, x_r, _, _ = pair_arrays(pairs, vectors)
    with torch.no_grad():
        return head(torch.as_tensor(x_c)).numpy(), head(torch.as_tensor(x_r)).numpy()


def train_instant_run(project, config, train, val, out_dir: Path, sink) -> dict:
    fit = fit_instant(project, config, train, val, sink, step=1)
    if fit is None:
        return {"status": "cancelled", "model_dir": "", "method": "instant"}
    model, vectors, fitted = fit
    model.head = fitted.head
    metrics = {f"train/{k}": v for k, v in fitted.train_metrics.items()}
    metrics.update({f"val/{k}": v for k, v in fitted.val_metrics.items()})
    sink.log(1, metrics)
    evaluation = evaluate_pairs(val, *head_rewards(fitted.head, val, vectors)) if val else {}
    model_dir = out_dir / "model"
    model.save(model_dir, metrics={**metrics, "l2": fitted.l2}, evaluation=evaluation)
    return {"status": "finished", "method": "instant", "model_dir": str(model_dir), "metrics": metrics,
            "l2": fitted.l2, "l2_tried": fitted.tried, "evaluation": evaluation,
            "train_pairs": len(train), "val_pairs": len(val)}


def train_instant_cv_run(project, config, plan, out_dir: Path, sink) -> dict:
    """An instant run that cross-validates by prompt (``cross_validation.plan_split``): the
    metrics and the evaluation come from out-of-fold scores, the saved head is fitted on every
    pair with the L2 strength that cross-validation by prompt picks."""
    import dataclasses

    from rmstudio.core.reward.cross_validation import cross_validate_instant, describe
    from rmstudio.core.reward.instant import l2_by_folds, train_instant

    pairs = plan.train
    found = instant_features(project, config, pairs, sink, step=1)
    if found is None:
        return {"status": "cancelled", "model_dir": "", "method": "instant"}
    model, vectors = found
    arrays = pair_arrays(pairs, vectors)
    groups = [p.prompt.text for p in pairs]
    summary = cross_validate_instant(arrays, groups, list(plan.fold_of), plan.folds, config.instant)
    oof_c, oof_r = summary.pop("oof_chosen"), summary.pop("oof_rejected")
    l2, _ = l2_by_folds(arrays, groups, config.instant, folds=plan.folds)
    fitted = train_instant(arrays, None, dataclasses.replace(config.instant, l2_grid=(l2,)))
    model.head = fitted.head
    metrics = {f"train/{k}": v for k, v in fitted.train_metrics.items()}
    # val/* are the pooled out-of-fold figures (every pair scored once by a head that never saw
    # its prompt), so pages that read val/accuracy show what the evaluation measured.
    metrics.update({"val/accuracy": summary["pooled_accuracy"], "val/loss": summary["pooled_loss"],
                    "cv/accuracy": summary["accuracy_mean"], "cv/accuracy_std": summary["accuracy_std"],
                    "cv/loss": summary["loss_mean"], "cv/loss_std": summary["loss_std"],
                    "cv/folds": float(plan.folds)})
    sink.log(1, {**metrics, "message": describe(summary).capitalize()})
    evaluation = evaluate_pairs(pairs, oof_c, oof_r)
    evaluation["cross_validation"] = summary
    model_dir = out_dir / "model"
    model.save(model_dir, metrics={**metrics, "l2": l2}, evaluation=evaluation)
    return {"status": "finished", "method": "instant", "model_dir": str(model_dir), "metrics": metrics,
            "l2": l2, "l2_tried": fitted.tried, "evaluation": evaluation, "cross_validation": summary,
            "train_pairs": len(pairs), "val_pairs": 0}


def train_instant_regression_run(project, config, train, val, scale, out_dir: Path, sink) -> dict:
    """Ridge regression on frozen features: the reward predicts the standardised rating."""
    import torch

    from rmstudio.core.reward.instant import train_instant_regression

    found = instant_features(project, config, train + val, sink, step=1)
    if found is None:
        return {"status": "cancelled", "model_dir": "", "method": "instant"}
    model, vectors = found
    mean, std = scale

    def arrays(items):
        return (np.stack([vectors[it.response_id] for it in items]),
                np.array([(it.rating - mean) / std for it in items], dtype=np.float32))

    fitted = train_instant_regression(arrays(train), arrays(val) if val else None, config.instant)
    model.head = fitted.head
    metrics = {f"train/{k}": v for k, v in fitted.train_metrics.items()}
    metrics.update({f"val/{k}": v for k, v in fitted.val_metrics.items()})
    sink.log(1, metrics)
    evaluation = {}
    if val:
        with torch.no_grad():
            predicted = fitted.head(torch.as_tensor(arrays(val)[0])).numpy()
        evaluation = evaluate_ratings(val, predicted, mean, std)
    model_dir = out_dir / "model"
    model.save(model_dir, metrics={**metrics, "l2": fitted.l2, "objective": "regression",
                                   "rating_mean": mean, "rating_std": std}, evaluation=evaluation)
    return {"status": "finished", "method": "instant", "objective": "regression", "model_dir": str(model_dir),
            "metrics": metrics, "l2": fitted.l2, "l2_tried": fitted.tried, "evaluation": evaluation,
            "rating_mean": mean, "rating_std": std, "train_pairs": len(train), "val_pairs": len(val)}


def with_instant_teacher(project, config, train, val, sink) -> list[TrainingPair] | None:
    """The training pairs, each with the instant model's P(chosen preferred) as its teacher.

    The teacher is fitted on the same training split (its L2 picked on validation, as an instant
    run does) from features cached in the project, so it costs one feature pass the first time
    and about a second after an instant run. None when cancelled (computed features stay cached)."""
    import dataclasses
    import gc

    sink.log(0, {"stage": "teacher", "message": "Fitting the instant model to distil from…"})
    fit = fit_instant(project, config, train, val, sink, step=0)
    if fit is None:
        return None
    vectors, fitted = fit[1], fit[2]
    del fit  # drops the backbone: the fine-tune loads its own copy
    gc.collect()
    r_c, r_r = head_rewards(fitted.head, train, vectors)
    probs = 1 / (1 + np.exp(-(r_c - r_r)))
    val_accuracy = fitted.val_metrics.get("accuracy", float("nan"))
    measured = f" (validation accuracy {val_accuracy:.1%})" if val_accuracy == val_accuracy else ""
    sink.log(0, {"stage": "teacher", "teacher/val_accuracy": val_accuracy,
                 "teacher/train_accuracy": fitted.train_metrics["accuracy"],
                 "message": f"Instant teacher fitted{measured}; fine-tuning on its soft targets…"})
    return [dataclasses.replace(pair, teacher=float(p)) for pair, p in zip(train, probs)]
