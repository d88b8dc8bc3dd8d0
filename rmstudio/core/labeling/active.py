"""Active learning for the label queue: which unlabeled pair teaches the live model most.

Two orders, both on the instant head (Bradley-Terry on feature differences, so a pair is its
difference vector d and the model's belief is p = sigmoid(r_a - r_b)):

* margin: the smallest predicted |r_a - r_b| first (uncertainty sampling);
* D-optimal: greedily the pair that adds the most Fisher information to the head, i.e. raises
  log det(A) most, A = lam*I + sum p(1-p) d d^T over the labeled pairs and the ones already
  picked (Shen et al., ICML 2025). By the matrix determinant lemma the gain of d is
  log(1 + w d^T A^-1 d) with w = p(1-p), and Sherman-Morrison keeps A^-1 and every candidate's
  quadratic form current in O(n*dim) per pick instead of a determinant per candidate.

The array functions are pure numpy. ``informative_order`` reads the project's feature cache
(responses already embedded by the live model) and returns an order held in memory: the queue
serves it through ``next_for_annotator(front=...)``; nothing is written to the project.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STRATEGIES = ("margin", "doptimal")
DEFAULT_LAM = 1.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))


def margin_order(diffs: np.ndarray, head: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Candidates by smallest predicted |reward difference| first, and why each is there.

    ``diffs`` (n, dim) are feature differences f_a - f_b; ``head`` is the linear head's weight
    over those raw differences (``head_direction``), so r_a - r_b = diffs @ head. The sort is
    stable: equal margins keep the given (default queue) order."""
    margins = np.abs(np.asarray(diffs, dtype=np.float64) @ np.asarray(head, dtype=np.float64))
    order = np.argsort(margins, kind="stable")
    return order, [f"smallest margin: {margins[i]:.2f}" for i in order]


def d_optimal_order(diffs: np.ndarray, probs: np.ndarray, lam: float = DEFAULT_LAM, k: int | None = None,
                    labeled: np.ndarray | None = None,
                    labeled_probs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy D-optimal design: the first ``k`` picks (all when None) and each one's log det gain.

    ``diffs`` (n, dim) are the candidates' difference vectors in the head's parameter space and
    ``probs`` the head's P(a preferred) for each. ``labeled`` / ``labeled_probs`` (optional) are
    the pairs already labeled: their information is in the starting matrix, so a candidate that
    repeats what is known gains little."""
    x = np.asarray(diffs, dtype=np.float64)
    n, dim = x.shape
    k = n if k is None else min(int(k), n)
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-6, 1 - 1e-6)
    weight = p * (1 - p)
    info = lam * np.eye(dim)
    if labeled is not None and len(labeled):
        known = np.asarray(labeled, dtype=np.float64)
        lp = np.clip(np.asarray(labeled_probs, dtype=np.float64), 1e-6, 1 - 1e-6)
        info += (known * (lp * (1 - lp))[:, None]).T @ known
    inverse = np.linalg.inv(info)
    # quad[i] = d_i^T A^-1 d_i, kept current as A grows.
    quad = np.sum((x @ inverse) * x, axis=1)  # one matrix product (BLAS), not n small ones
    taken = np.zeros(n, dtype=bool)
    order, gains = [], []
    for _ in range(k):
        gain = np.log1p(weight * quad)
        gain[taken] = -np.inf
        best = int(np.argmax(gain))
        order.append(best)
        gains.append(float(gain[best]))
        taken[best] = True
        # Sherman-Morrison: A' = A + w d d^T  ->  A'^-1 = A^-1 - w u u^T / (1 + w d^T u), u = A^-1 d.
        u = inverse @ x[best]
        scale = weight[best] / (1.0 + weight[best] * quad[best])
        inverse -= scale * np.outer(u, u)
        quad -= scale * (x @ u) ** 2
    return np.array(order, dtype=np.int64), np.array(gains)


def head_direction(head) -> np.ndarray | None:
    """A linear InstantHead as one weight over raw feature differences (w / feature_std), so that
    r_a - r_b = (f_a - f_b) @ direction; None for an MLP head (not linear in the difference)."""
    import torch

    if not isinstance(head.net, torch.nn.Linear):
        return None
    with torch.no_grad():
        return (head.net.weight[0] / head.feature_std).double().numpy()


def head_view(head, features_a: np.ndarray, features_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(difference vectors in the head's normalised input space, P(a preferred)) for pairs.

    For an MLP head the normalised input difference stands in for the gradient (an
    approximation; the default head is linear, where it is exact)."""
    import torch

    with torch.no_grad():
        fa = torch.as_tensor(features_a, dtype=torch.float32)
        fb = torch.as_tensor(features_b, dtype=torch.float32)
        margins = (head(fa) - head(fb)).double().numpy()
        diffs = ((fa - fb) / head.feature_std).double().numpy()
    return diffs, _sigmoid(margins)


@dataclass
class ActiveOrder:
    """An order for the queue: comparison ids in front, and why each one is where it is."""
    strategy: str
    ids: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)
    candidates: int = 0  # unlabeled comparisons with cached features (the rest follow in default order)


def _pool(project, feature_key: str, limit: int | None):
    """Unlabeled comparisons (default queue order) and their responses' cached features."""
    from rmstudio.core.reward.features import cached_vectors

    rows = project.conn.execute(
        "SELECT id, response_a_id, response_b_id FROM comparisons WHERE label_count = 0 ORDER BY id"
    ).fetchall()
    vectors = cached_vectors(project, feature_key, sorted({r for row in rows for r in row[1:]}))
    rows = [row for row in rows if row[1] in vectors and row[2] in vectors]
    if limit is not None:
        rows = rows[:limit]
    return rows, vectors


def unembedded_comparisons(project, feature_key: str, limit: int) -> list[int]:
    """Up to ``limit`` unlabeled comparisons (default order) missing a cached feature."""
    return [row[0] for row in project.conn.execute(
        """SELECT c.id FROM comparisons c WHERE c.label_count = 0 AND (
               NOT EXISTS (SELECT 1 FROM feature_cache f
                           WHERE f.extractor = ? AND f.response_id = c.response_a_id)
               OR NOT EXISTS (SELECT 1 FROM feature_cache f
                              WHERE f.extractor = ? AND f.response_id = c.response_b_id))
           ORDER BY c.id LIMIT ?""", (feature_key, feature_key, int(limit)))]


def _labeled(project, feature_key: str, vectors: dict):
    from rmstudio.core.reward.features import cached_vectors

    rows = project.conn.execute(
        "SELECT response_a_id, response_b_id FROM comparisons WHERE label_count > 0").fetchall()
    vectors.update(cached_vectors(project, feature_key, [r for row in rows for r in row if r not in vectors]))
    return [row for row in rows if row[0] in vectors and row[1] in vectors]


def informative_order(project, model, strategy: str, limit: int | None = 2000,
                      lam: float = DEFAULT_LAM, k: int = 200) -> ActiveOrder:
    """The most informative unlabeled comparisons first, under ``model``'s current head.

    ``model`` is an InstantRewardModel with a fitted head (or a LiveInstantModel holding one).
    Only comparisons whose two responses are in the feature cache take part (at most ``limit``
    of them, the cost is linear in it); the queue serves the rest in its default order after
    these. D-optimal ranks its first ``k`` picks greedily (each pick changes the next one's
    gain); candidates beyond that follow by smallest margin."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    model = getattr(model, "model", None) or model  # a LiveInstantModel holds the model
    head = getattr(model, "head", None)
    if head is None:
        return ActiveOrder(strategy)
    rows, vectors = _pool(project, model.feature_key, limit)
    if not rows:
        return ActiveOrder(strategy)
    fa = np.stack([vectors[a] for _, a, _ in rows])
    fb = np.stack([vectors[b] for _, _, b in rows])
    diffs, probs = head_view(head, fa, fb)
    margins = np.abs(np.log(probs) - np.log1p(-probs))
    by_margin = np.argsort(margins, kind="stable")
    if strategy == "margin":
        order = by_margin
        reasons = [f"smallest margin: {margins[i]:.2f}" for i in order]
    else:
        known = _labeled(project, model.feature_key, vectors)
        known_diffs, known_probs = (head_view(head, np.stack([vectors[a] for a, _ in known]),
                                              np.stack([vectors[b] for _, b in known]))
                                    if known else (None, None))
        picked, gains = d_optimal_order(diffs, probs, lam, k, known_diffs, known_probs)
        chosen = set(picked.tolist())
        rest = [i for i in by_margin if i not in chosen]
        order = list(picked) + rest
        reasons = ([f"most informative: +{g:.2f} log det" for g in gains]
                   + [f"smallest margin: {margins[i]:.2f}" for i in rest])
    ids = [int(rows[i][0]) for i in order]
    return ActiveOrder(strategy, ids, dict(zip(ids, reasons)), len(rows))
