"""Active learning on real preferences: labels needed for a given instant-head accuracy.

An annotator is simulated by the HH-RLHF harmless labels (first 2,000 lines = the pool to
label, last 312 = held-out test). Features come from the embedded model once and are cached
in a .npz, so reruns only simulate. Each seed starts from 50 random labels, then adds labels
in batches of 50 in random, smallest-margin or D-optimal order (rmstudio.core.labeling.active),
refitting the instant head after each batch, and records test accuracy against labels.

    python benchmarks/active_learning.py [--pairs 2000] [--test-pairs 312] [--seeds 5]
    python benchmarks/active_learning.py --cached-only   # simulate on what is embedded so far
    python benchmarks/active_learning.py --quick     # synthetic features, seconds

Target (issue #18): an active order reaches random order's accuracy at 1,000 labels with at
least 30% fewer labels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "datasets" / "hh-rlhf-harmless-base-test.jsonl.gz"
TRAIN_LINES = 2000  # the README's fixed split: first 2,000 lines train, the rest test
STRATEGIES = ("random", "margin", "doptimal")
CHUNK = 48  # pairs embedded between saves of the feature cache


def hh_features(path: Path, pool: int, test_pairs: int, cache: Path, embed: bool = True) -> dict:
    """chosen / rejected features (float16) and each pair's line, embedded once and cached.

    Wanted: the first ``test_pairs`` held-out test pairs, then the first ``pool`` pairs of the
    train part. The cache is keyed by line and saved after each chunk, so an interrupted pass
    resumes where it stopped, other sizes reuse what is there, and ``embed=False`` simulates
    on whatever part of the wanted pairs is cached already."""
    found = dict(np.load(cache)) if cache.exists() else {}
    from rmstudio.core.reward.data import pairs_from_file

    data = path if path.exists() else None
    if data is None:
        from rmstudio.core.data.resources import resource
        data = resource("examples", "hh-rlhf-harmless-base-test.jsonl.gz")
    items = pairs_from_file(data)
    train = [p for p in items if -p.comparison_id <= TRAIN_LINES]
    test = [p for p in items if -p.comparison_id > TRAIN_LINES]
    wanted = test[:test_pairs] + train[:pool]
    have = set(found.get("line", np.array([], dtype=int)).tolist())
    todo = [p for p in wanted if -p.comparison_id not in have] if embed else []
    started = time.perf_counter() - float(found.get("seconds", 0.0))
    if todo:
        from rmstudio.core.reward.features import FeatureSpec
        from rmstudio.core.reward.instant_model import InstantRewardModel

        model = InstantRewardModel.from_base("embedded", FeatureSpec())
    for first in range(0, len(todo), CHUNK):
        chunk = todo[first:first + CHUNK]
        vectors = model.extractor.extract([(p.prompt, [p.chosen, p.rejected]) for p in chunk])
        parts = {"chosen": vectors[0::2].astype(np.float16), "rejected": vectors[1::2].astype(np.float16),
                 "line": np.array([-p.comparison_id for p in chunk])}
        found = {k: np.concatenate([found[k], v]) if k in found else v for k, v in parts.items()}
        found["seconds"] = np.array(time.perf_counter() - started)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **found)
        print(f"  features: {len(found['line'])} pairs cached ({float(found['seconds']):.0f} s)", flush=True)
    keep = np.isin(found["line"], [-p.comparison_id for p in wanted])
    return {"chosen": found["chosen"][keep], "rejected": found["rejected"][keep], "line": found["line"][keep],
            "seconds": found.get("seconds", np.array(0.0))}


def synthetic_features(n: int, dim: int = 32, seed: int = 0) -> dict:
    """A quick stand-in: rewards linear in the features plus noise, labels drawn from BT."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=dim) * np.linspace(2.0, 0.1, dim)
    a, b = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    prefers_a = rng.random(n) < 1 / (1 + np.exp(-(a - b) @ truth))
    chosen, rejected = np.where(prefers_a[:, None], a, b), np.where(prefers_a[:, None], b, a)
    line = np.arange(1, n + 1)
    line[int(n * 0.85):] += TRAIN_LINES * 10  # the last 15% are the test part
    return {"chosen": chosen.astype(np.float32), "rejected": rejected.astype(np.float32), "line": line}


def _fit(chosen, rejected, config):
    from rmstudio.core.reward.instant import train_instant

    n = len(chosen)
    targets, margins = np.ones(n, np.float32), np.zeros(n, np.float32)
    return train_instant((chosen, rejected, targets, margins), None, config).head


def _accuracy(head, chosen, rejected) -> float:
    import torch

    with torch.no_grad():
        return float((head(torch.as_tensor(chosen)) > head(torch.as_tensor(rejected))).float().mean())


def _next_batch(strategy, head, pool, labeled, chosen, rejected, batch, rng, lam):
    from rmstudio.core.labeling.active import d_optimal_order, head_view, margin_order

    if strategy == "random":
        return rng.choice(pool, size=min(batch, len(pool)), replace=False)
    # The order never sees which response was chosen: both orders are symmetric in a <-> b.
    diffs, probs = head_view(head, chosen[pool], rejected[pool])
    if strategy == "margin":
        order, _ = margin_order(diffs, head.net.weight[0].detach().double().numpy())
        return pool[order[:batch]]
    known, known_p = head_view(head, chosen[labeled], rejected[labeled])
    order, _ = d_optimal_order(diffs, probs, lam, batch, known, known_p)
    return pool[order]


def simulate(data: dict, strategy: str, seed: int, start: int, batch: int, max_labels: int,
             lam: float) -> dict:
    from rmstudio.core.reward.instant_config import InstantConfig

    config = InstantConfig(seed=seed)
    chosen, rejected = data["chosen"].astype(np.float32), data["rejected"].astype(np.float32)
    test = data["line"] > TRAIN_LINES
    train_idx, test_idx = np.flatnonzero(~test), np.flatnonzero(test)
    rng = np.random.default_rng(seed)
    labeled = rng.choice(train_idx, size=start, replace=False)  # the same start for every strategy
    curve = {}
    while True:
        head = _fit(chosen[labeled], rejected[labeled], config)
        curve[len(labeled)] = _accuracy(head, chosen[test_idx], rejected[test_idx])
        pool = np.setdiff1d(train_idx, labeled)
        if len(labeled) >= min(max_labels, len(train_idx)) or not len(pool):
            return curve
        labeled = np.concatenate([labeled, _next_batch(strategy, head, pool, labeled, chosen, rejected,
                                                       batch, rng, lam)])


def labels_to_reach(curve: dict, target: float) -> int | None:
    """The fewest labels at which the (seed-averaged) curve reaches ``target``."""
    return next((n for n in sorted(curve) if curve[n] >= target - 1e-9), None)


def plot(results: dict, out: Path) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _plot_pyqtgraph(results, out)
    for name, mean in results["mean"].items():
        plt.plot([int(n) for n in mean], list(mean.values()), label=name)
    plt.xlabel("labels")
    plt.ylabel("held-out accuracy")
    plt.legend()
    plt.savefig(out)
    return str(out)


def _plot_pyqtgraph(results: dict, out: Path) -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([])
    widget = pg.PlotWidget(background="w")
    widget.addLegend()
    widget.setLabel("bottom", "labels")
    widget.setLabel("left", "held-out accuracy")
    widget.getAxis("left").enableAutoSIPrefix(False)  # accuracy, not "x0.001"
    colors = {"random": (120, 120, 120), "margin": (31, 119, 180), "doptimal": (214, 39, 40)}
    for name, mean in results["mean"].items():
        widget.plot([int(n) for n in mean], list(mean.values()), name=name,
                    pen=pg.mkPen(colors.get(name), width=2))
    widget.resize(800, 500)
    pyqtgraph.exporters.ImageExporter(widget.plotItem).export(str(out))
    return str(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000, help="pool pairs (from the train part) to embed")
    parser.add_argument("--test-pairs", type=int, default=312, help="held-out test pairs to embed")
    parser.add_argument("--reference", type=int, default=1000,
                        help="compare with random order at this many labels (at most 60%% of the pool)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--start", type=int, default=50, help="random labels to start from")
    parser.add_argument("--batch", type=int, default=50, help="labels added between refits")
    parser.add_argument("--max-labels", type=int, default=1500)
    parser.add_argument("--lam", type=float, default=1.0, help="D-optimal prior information (ridge)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--features", type=Path, default=HERE / "results" / "active_learning_features.npz")
    parser.add_argument("--features-only", action="store_true", help="embed and cache, then stop")
    parser.add_argument("--cached-only", action="store_true",
                        help="simulate on the pairs already cached (no embedding)")
    parser.add_argument("--quick", action="store_true", help="synthetic features: a fast check")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "active_learning.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.quick:
        data = synthetic_features(800)
        args.max_labels, args.start, args.batch = min(args.max_labels, 400), 20, 20
        args.seeds = min(args.seeds, 2)
        args.out = Path(tempfile.gettempdir()) / "active_learning_quick.json"  # a check, not a result
    else:
        data = hh_features(DATA, args.pairs, args.test_pairs, args.features,
                           embed=not args.cached_only)
    if args.features_only:
        return
    strategies = args.strategies.split(",")
    started = time.perf_counter()
    curves = {s: [] for s in strategies}
    for seed in range(args.seeds):
        for s in strategies:
            curves[s].append(simulate(data, s, seed, args.start, args.batch, args.max_labels, args.lam))
        print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", flush=True)
    mean = {s: {n: float(np.mean([c[n] for c in cs])) for n in sorted(cs[0])} for s, cs in curves.items()}
    # Random and active orders coincide once the pool is used up: compare well before that.
    pool = int((data["line"] <= TRAIN_LINES).sum())
    limit = max(args.start, min(args.reference, 0.6 * pool))
    reference_labels = max(n for n in mean[strategies[0]] if n <= limit)
    target = mean.get("random", {}).get(reference_labels)
    print(f"{'labels':>7} " + " ".join(f"{s:>9}" for s in strategies))
    for n in sorted(mean[strategies[0]]):
        print(f"{n:>7} " + " ".join(f"{mean[s][n]:>9.3f}" for s in strategies))
    reached = {}
    if target is not None:
        for s in strategies:
            needed = labels_to_reach(mean[s], target)
            saving = None if needed is None else 1 - needed / reference_labels
            reached[s] = {"labels": needed, "saving": saving}
            print(f"{s}: reaches random@{reference_labels} ({target:.3f}) with "
                  f"{needed if needed is not None else 'more than ' + str(max(mean[s]))} labels")
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}",
               "settings": {k: str(v) for k, v in vars(args).items()},
               "pool_pairs": pool, "test_pairs": int(len(data["line"]) - pool),
               "feature_seconds": float(data.get("seconds", 0.0)),
               "simulation_seconds": time.perf_counter() - started,
               "reference_labels": reference_labels, "target_accuracy": target, "reached": reached,
               "mean": {s: {str(n): v for n, v in m.items()} for s, m in mean.items()},
               "curves": {s: [{str(n): v for n, v in c.items()} for c in cs] for s, cs in curves.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"saved {args.out} and {plot(results, args.out.with_suffix('.png'))}")


if __name__ == "__main__":
    main()
