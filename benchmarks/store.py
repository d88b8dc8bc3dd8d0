"""Store benchmark: label-write latency, import rate and next-unlabeled fetch at 100k comparisons.

Targets (issue #2): p99 label write < 10 ms, import of 100k comparisons < 10 s,
next-unlabeled fetch < 5 ms. Prints a table and writes benchmarks/results/store.json.

    python benchmarks/store.py [--comparisons 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from pathlib import Path

from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project

WORDS = ("the reward model prefers clear helpful answers that explain why and stay kind to the "
         "user while avoiding harm or needless length in every response given").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_dataset(path: Path, n: int, seed: int = 0, tag: str = "") -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            row = {"prompt": f"[{tag}{i}] " + sentence(rng, 40), "chosen": sentence(rng, 25),
                   "rejected": sentence(rng, 25)}
            fh.write(json.dumps(row) + "\n")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=2_000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "store.json"))
    args = parser.parse_args()
    rng = random.Random(1)
    results: dict = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                     "python": platform.python_version(), "comparisons": args.comparisons}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        write_dataset(data, args.comparisons)
        project = Project.create(Path(tmp) / "bench.rmstudio")
        start = time.perf_counter()
        report = import_files(project, [data])
        seconds = time.perf_counter() - start
        assert report.counts["comparisons_added"] == args.comparisons
        results["import_seconds"] = seconds
        results["import_comparisons_per_s"] = args.comparisons / seconds

        ids = [r[0] for r in project.conn.execute("SELECT id FROM comparisons")]
        # Label writes as an annotator makes them: one committed transaction each (fsync included).
        latencies = []
        for cid in rng.sample(ids, args.writes):
            start = time.perf_counter()
            project.set_label(cid, "bench", rng.choice(["a", "b", "tie", "both_bad", "skip"]))
            latencies.append((time.perf_counter() - start) * 1000)
        results["label_write_ms_p50"] = percentile(latencies, 50)
        results["label_write_ms_p99"] = percentile(latencies, 99)

        fetch = {}
        for labeled_share in (0.0, 0.5, 0.99):
            # Label the first share of the queue (in import order) by another annotator.
            project.conn.execute("DELETE FROM labels")
            project.conn.execute("UPDATE comparisons SET label_count = 0")
            n = int(len(ids) * labeled_share)
            other = project.annotator_id("someone-else")
            with project.write():
                project.conn.executemany(
                    "INSERT INTO labels (comparison_id, annotator_id, choice, created_at) VALUES (?, ?, 'a', 'x')",
                    [(cid, other) for cid in ids[:n]])
            for order in ("import", "random"):
                times = []
                for _ in range(200):
                    start = time.perf_counter()
                    project.next_unlabeled("bench", order=order)
                    times.append((time.perf_counter() - start) * 1000)
                fetch[f"{int(labeled_share * 100)}% labeled, {order} order"] = {
                    "p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}
        results["next_unlabeled_fetch"] = fetch
        results["journal_mode"] = project.journal_mode
        project.close()

    print(f"\nrmstudio store benchmark, {args.comparisons:,} comparisons ({results['machine']})")
    print(f"{'measure':<44} {'value':>12} {'target':>10}")
    print(f"{'import':<44} {results['import_seconds']:>10.2f} s {'< 10 s':>10}")
    print(f"{'import rate':<44} {results['import_comparisons_per_s']:>8,.0f} c/s")
    print(f"{'label write p50':<44} {results['label_write_ms_p50']:>9.2f} ms")
    print(f"{'label write p99':<44} {results['label_write_ms_p99']:>9.2f} ms {'< 10 ms':>10}")
    for name, value in fetch.items():
        print(f"{'next unlabeled p99, ' + name:<44} {value['p99_ms']:>9.3f} ms {'< 5 ms':>10}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
