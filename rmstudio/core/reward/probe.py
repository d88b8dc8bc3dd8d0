"""The score head's start: a linear probe on the frozen model's last-token states
("linear probing, then fine-tuning", Kumar et al. 2022)."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import torch

from rmstudio.core.progress import ProgressSink
from rmstudio.core.reward.finetune_config import FinetuneConfig, FinetuneError
from rmstudio.core.reward.forward import head_name, pair_outputs
from rmstudio.core.reward.ranks import SINGLE

@torch.no_grad()
def _probe_states(model, rows, pad_id: int, bf16: bool, pack: bool, batch_size: int, sink: ProgressSink,
                  on_batch=None, ranks=SINGLE):
    """The frozen model's last-token states (the score head's inputs) of each pair, float32 numpy;
    None when the sink asks to stop. With several processes each rank computes every
    ``world``-th batch and all get all states."""
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
    batches = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    mine = []
    for first in range(0, len(batches), ranks.world):
        if sink.should_stop():
            model.train()
            return None
        if first + ranks.rank < len(batches):
            idx = batches[first + ranks.rank]
            _, _, hc, hr = pair_outputs(model, [rows[i] for i in idx], pad_id, bf16, pack)
            mine.append((idx, hc.float().cpu().numpy(), hr.float().cpu().numpy()))
        if on_batch:
            on_batch(min((first + ranks.world) * batch_size, len(order)))
    model.train()
    h_c = h_r = None
    for part in ranks.gather(mine) if ranks.several else [mine]:
        for idx, hc, hr in part:
            if h_c is None:
                h_c = np.zeros((len(rows), hc.shape[-1]), dtype=np.float32)
                h_r = np.zeros_like(h_c)
            h_c[idx], h_r[idx] = hc, hr
    return h_c, h_r


def fit_probe_head(model, rows, val_rows, pad_id: int, bf16: bool, pack: bool,
                    config: FinetuneConfig, sink: ProgressSink, ranks=SINGLE) -> dict:
    """Set the score head to a logistic regression (ridge regression for ratings) fitted on
    frozen last-token states.

    The L2 strength is chosen by 4-fold cross-validation on the training sample (grouped by
    prompt); the probe is then scored on (up to probe_pairs/2) validation pairs. The probe's feature standardisation is folded into the head's weight; its constant
    offset is dropped, which changes no pairwise comparison. Returns the probe's metrics, or None
    when cancelled (the head is then left as it was).
    """
    from rmstudio.core.reward.instant import l2_by_folds, train_instant, train_instant_regression
    from rmstudio.core.reward.instant_config import InstantConfig

    sample = random.Random(config.seed).sample(rows, min(len(rows), config.probe_pairs))
    val_sample = val_rows[:max(1, config.probe_pairs // 2)] if val_rows else []
    total = len(sample) + len(val_sample)

    def progress(done):
        sink.log(0, {"stage": "probe", "done": done, "total": total, "unit": "pairs",
                     "message": "Probing the frozen model to start the head"})

    states = _probe_states(model, sample, pad_id, bf16, pack, config.batch_size * 2, sink, progress, ranks)
    if states is None:
        return None
    regression = config.objective == "regression"

    def arrays(rows_, states_, target_at):
        target = np.array([r[target_at] for r in rows_], np.float32)
        if regression:  # one response per row: its state and its standardised rating
            return states_[0], target
        return (*states_, target, np.array([r[3] for r in rows_], np.float32))

    train = arrays(sample, states, 4)
    val = None
    if val_sample:
        v_states = _probe_states(model, val_sample, pad_id, bf16, pack, config.batch_size * 2, sink,
                                 lambda done: progress(len(sample) + done), ranks)
        if v_states is None:
            return None
        val = arrays(val_sample, v_states, 2)
    sink.log(0, {"stage": "fit", "message": "Fitting the probe head…"})
    # The L2 strength comes from folds of the training sample, not from validation: picked there,
    # the probe's step-0 validation loss would be the best of six tries, and keep_best would then
    # favour the untrained head over every fine-tuned step measured honestly.
    probe_config = InstantConfig(head="linear", seed=config.seed)
    fit = train_instant_regression if regression else train_instant
    l2, _ = l2_by_folds(train, [r[5] for r in sample], probe_config, fit=fit)
    fitted = fit(train, val, dataclasses.replace(probe_config, l2_grid=(l2,), ridge_grid=(l2,)))
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = getattr(inner, head_name(inner))
    weight = fitted.head.net.weight.detach() / fitted.head.feature_std
    if not isinstance(head, torch.nn.Linear) or head.weight.shape != weight.shape:
        raise FinetuneError(f"head_init='probe' needs a linear score head of shape {tuple(weight.shape)}, "
                            f"found {head}; use head_init='random'")
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight))
        if head.bias is not None:
            head.bias.zero_()
    # The head reads w·h/std; the probe predicted w·(h - mean)/std. For pairs the constant cancels;
    # a regression's targets move by it instead, so the model starts exactly at the probe.
    offset = float(weight.double() @ fitted.head.feature_mean.double()) if regression else 0.0
    return {"l2": fitted.l2, "pairs": len(sample), "val_pairs": len(val_sample), "target_offset": offset,
            "covers_val": len(val_sample) == len(val_rows),
            **{f"train/{k}": v for k, v in fitted.train_metrics.items()},
            **{f"val/{k}": v for k, v in fitted.val_metrics.items()}}
