"""The pieces of the fine-tune loop around one step: the objective's loss and metrics, validation
over a set of rows (split over several processes when there are several), one rank's share of a
batch, and the rule that says when an earlier checkpoint is clearly better than the last one.
``finetune.py`` holds the loop itself.
"""

from __future__ import annotations

import math

import torch

from rmstudio.core.reward.forward import can_pack, pair_rewards
from rmstudio.core.reward.losses import bradley_terry_loss, bradley_terry_losses, pair_metrics, standard_error
from rmstudio.core.reward.ranks import SINGLE

# ---------------------------------------------------------------- loss


def _loss_and_metrics(rc, rr, target, margin, loss_target, center: float, regression: bool):
    """The objective's loss and the metrics logged for it (TRL's names for pairs)."""
    from rmstudio.core.reward.instant import regression_metrics

    if regression:
        loss = torch.nn.functional.mse_loss(rc.float(), loss_target.float())
        metrics = regression_metrics(rc, target)
        metrics.pop("loss_se")  # _evaluate adds it over the whole validation set
        return loss, {**metrics, "loss": loss.item()}
    loss = bradley_terry_loss(rc, rr, loss_target, margin, center)
    return loss, {"loss": loss.item(), **pair_metrics(rc, rr, target)}


def clearly_better(best: dict, last: dict) -> bool:
    """Whether an earlier validation beats the last one by more than the noise: by more than one
    standard error of the last one's mean loss. On a few hundred pairs that error (0.021-0.029 in
    BT loss on 192 HH pairs) is larger than most step-to-step changes, so 'the lowest loss' alone
    mostly picks noise, and it favours the probe at step 0, whose rewards are calibrated before
    fine-tuning sharpens them. A clear overfit or divergence is still caught."""
    return best["loss"] < last["loss"] - last.get("loss_se", 0.0)



@torch.no_grad()
def _evaluate(model, rows, pad_id: int, batch_size: int, bf16: bool, center: float,
              pack: bool = True, regression: bool = False, should_stop=None,
              ranks=SINGLE) -> dict[str, float] | None:
    """Validation metrics over ``rows``; None when ``should_stop()`` turns true on the way (a
    validation set of thousands of pairs takes minutes on a CPU: a cancel must not wait for it).
    With several processes each rank scores every ``world``-th batch and all get the metrics
    of all rows (``should_stop`` must then be the ranks' shared answer)."""
    if not rows:
        return {}
    model.eval()
    pack = pack and can_pack(model)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
    rc, rr, tg, mg = [], [], [], []
    mine = []  # several processes: (batch start, rewards, targets, margins) of this rank's batches
    for k in range(0, len(order), batch_size * ranks.world):
        if should_stop is not None and should_stop():
            model.train()
            return None
        at = k + ranks.rank * batch_size
        if at >= len(order):
            continue
        batch = [rows[i] for i in order[at:at + batch_size]]
        chosen, rejected = pair_rewards(model, batch, pad_id, bf16, pack)
        if ranks.several:
            mine.append((at, chosen.cpu(), rejected.cpu(), [b[2] for b in batch], [b[3] for b in batch]))
            continue
        rc.append(chosen)
        rr.append(rejected)
        tg += [b[2] for b in batch]
        mg += [b[3] for b in batch]
    model.train()
    if ranks.several:  # every rank's batches, in the order one process scores them
        device = next(model.parameters()).device
        for _, chosen, rejected, t, m in sorted((b for part in ranks.gather(mine) for b in part),
                                                key=lambda b: b[0]):
            rc.append(chosen.to(device))
            rr.append(rejected.to(device))
            tg += t
            mg += m
    rc, rr = torch.cat(rc), torch.cat(rr)
    target, margin = torch.tensor(tg, device=rc.device), torch.tensor(mg, device=rc.device)
    _, metrics = _loss_and_metrics(rc, rr, target, margin, target, center, regression)
    each = ((rc.float() - target) ** 2 if regression else bradley_terry_losses(rc.float(), rr.float(), target, margin))
    metrics["loss_se"] = standard_error(each)
    return metrics



# ---------------------------------------------------------------- several processes

def _rank_step(model, ranks, batch, pad_id, bf16, pack, center, regression):
    """One micro-batch on this rank's contiguous share of ``batch``: (its loss or None when the
    share is empty, the batch's metrics combined over the ranks, its weight). The
    weight is the share's fraction of the pairs, so the ranks' summed gradients are the gradient
    of the whole batch's mean loss, as one process computes it. Metrics are means weighted by
    pairs (exact for means; train/pearson of a regression is a weighted mean of the ranks')."""
    mine = ranks.part(batch)
    loss, metrics = None, {}
    if mine:
        rc, rr = pair_rewards(model, mine, pad_id, bf16, pack)
        target = torch.tensor([b[2] for b in mine], device=rc.device)
        margin = torch.tensor([b[3] for b in mine], device=rc.device)
        loss_target = torch.tensor([b[4] for b in mine], device=rc.device)
        loss, metrics = _loss_and_metrics(rc, rr, target, margin, loss_target, center, regression)
    parts = [p for p in ranks.gather((len(mine), metrics)) if p[0]]
    total = sum(n for n, _ in parts)
    combined = {}
    for key in parts[0][1]:
        # the loss stays NaN when any rank's is (every rank then stops); other metrics skip a NaN
        counted = [(n, m[key]) for n, m in parts if key == "loss" or not math.isnan(m[key])]
        weight = sum(n for n, _ in counted)
        combined[key] = sum(n * v for n, v in counted) / weight if weight else float("nan")
    return loss, combined, len(mine) / total
