"""Honest evaluation of a reward model on held-out pairs.

Accuracy next to two baselines (a coin, and "prefer the longer response"), calibration of
P(chosen) = σ(r_chosen − r_rejected) (reliability bins and ECE), accuracy by margin bucket,
how much the reward just tracks length, accuracy per annotator, and the most confident
mistakes (to send back to the label queue).
"""

from __future__ import annotations

import math

import numpy as np

from rmstudio.core.reward.data import TrainingPair

RELIABILITY_BINS = 10
MARGIN_BUCKETS = (0.0, 0.5, 1.0, 2.0, math.inf)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow


def evaluate_pairs(pairs: list[TrainingPair], r_chosen: np.ndarray, r_rejected: np.ndarray,
                   top_mistakes: int = 20) -> dict:
    r_chosen = np.asarray(r_chosen, dtype=np.float64)
    r_rejected = np.asarray(r_rejected, dtype=np.float64)
    decided = np.array([p.target > 0.5 for p in pairs], dtype=bool)
    if not decided.any():
        return {"pairs": 0}
    pairs_d = [p for p, d in zip(pairs, decided) if d]
    rc, rr = r_chosen[decided], r_rejected[decided]
    diff = rc - rr
    correct = diff > 0
    len_c = np.array([len(p.chosen.text) for p in pairs_d])
    len_r = np.array([len(p.rejected.text) for p in pairs_d])
    longer = np.where(len_c == len_r, 0.5, (len_c > len_r).astype(float))

    prob = _sigmoid(diff)  # P(chosen preferred) as the model sees it
    confidence = np.maximum(prob, 1 - prob)
    bins = []
    ece = 0.0
    edges = np.linspace(0.5, 1.0, RELIABILITY_BINS // 2 + 1)
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence >= low) & ((confidence < high) | (high == 1.0))
        if in_bin.any():
            acc, conf = correct[in_bin].mean(), confidence[in_bin].mean()
            ece += in_bin.mean() * abs(acc - conf)
            bins.append({"low": float(low), "high": float(high), "count": int(in_bin.sum()),
                         "accuracy": float(acc), "confidence": float(conf)})

    by_margin = []
    for low, high in zip(MARGIN_BUCKETS[:-1], MARGIN_BUCKETS[1:]):
        in_bucket = (np.abs(diff) >= low) & (np.abs(diff) < high)
        if in_bucket.any():
            by_margin.append({"low": low, "high": None if high == math.inf else high,
                              "count": int(in_bucket.sum()), "accuracy": float(correct[in_bucket].mean())})

    rewards = np.concatenate([rc, rr])
    lengths = np.concatenate([len_c, len_r]).astype(float)
    length_corr = float(np.corrcoef(rewards, lengths)[0, 1]) if rewards.std() > 0 and lengths.std() > 0 else None

    per_annotator = {}
    for name in sorted({p.annotator for p in pairs_d}):
        mask = np.array([p.annotator == name for p in pairs_d])
        per_annotator[name] = {"pairs": int(mask.sum()), "accuracy": float(correct[mask].mean())}

    wrong = np.where(~correct)[0]
    worst = wrong[np.argsort(diff[wrong])][:top_mistakes]
    mistakes = [{"comparison_id": pairs_d[i].comparison_id, "annotator": pairs_d[i].annotator,
                 "p_chosen": float(prob[i]), "r_chosen": float(rc[i]), "r_rejected": float(rr[i])}
                for i in worst]
    return {
        "pairs": int(len(pairs_d)),
        "accuracy": float(correct.mean()),
        "baseline_random": 0.5,
        "baseline_longer": float(longer.mean()),
        "ece": float(ece),
        "reliability": bins,
        "accuracy_by_margin": by_margin,
        "reward_length_correlation": length_corr,
        "accuracy_per_annotator": per_annotator,
        "confident_mistakes": mistakes,
        "rewards_chosen": [float(x) for x in rc],
        "rewards_rejected": [float(x) for x in rr],
    }


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties sharing their average rank (as Spearman's correlation needs)."""
    ranks = np.empty(len(x))
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x), dtype=float)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def evaluate_ratings(items, predicted, rating_mean: float = 0.0, rating_std: float = 1.0) -> dict:
    """Held-out rated responses (RatedResponse-like) against predicted standardised ratings.

    mse/rmse on the rating's own scale (prediction * rating_std + rating_mean), Pearson and
    Spearman correlation, and the pairs the ratings imply (two responses to one prompt, rated
    differently by one annotator): accuracy there, next to "prefer the longer response".
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    ratings = np.array([it.rating for it in items], dtype=np.float64)
    if len(items) == 0:
        return {"responses": 0}
    on_scale = predicted * rating_std + rating_mean
    out = {"responses": len(items), "mse": float(((on_scale - ratings) ** 2).mean()),
           "rating_mean": rating_mean, "rating_std": rating_std}
    out["rmse"] = math.sqrt(out["mse"])
    spread = len(items) > 1 and predicted.std() > 0 and ratings.std() > 0
    out["pearson"] = float(np.corrcoef(predicted, ratings)[0, 1]) if spread else None
    out["spearman"] = float(np.corrcoef(_ranks(predicted), _ranks(ratings))[0, 1]) if spread else None
    lengths = np.array([len(it.response.text) for it in items], dtype=float)
    out["reward_length_correlation"] = (float(np.corrcoef(predicted, lengths)[0, 1])
                                        if spread and lengths.std() > 0 else None)
    by_group: dict = {}
    for i, it in enumerate(items):
        by_group.setdefault((it.prompt_id, it.annotator), []).append(i)
    correct, longer = [], []
    for members in by_group.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                i, j = members[a], members[b]
                if ratings[i] == ratings[j]:
                    continue
                better, worse = (i, j) if ratings[i] > ratings[j] else (j, i)
                correct.append(predicted[better] > predicted[worse])
                longer.append(0.5 if lengths[better] == lengths[worse] else float(lengths[better] > lengths[worse]))
    out["predicted"] = [float(x) for x in on_scale]  # for a predicted-vs-given plot
    out["ratings"] = [float(x) for x in ratings]
    out["pairs"] = len(correct)
    if correct:
        out["accuracy"] = float(np.mean(correct))
        out["baseline_random"] = 0.5
        out["baseline_longer"] = float(np.mean(longer))
    return out
