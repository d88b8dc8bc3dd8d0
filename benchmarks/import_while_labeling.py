"""Import benchmark: how long a label write waits while a large import runs.

An import of N synthetic rows (default 100k) runs while a labeler in another process (its own
connection, as a second rmstudio window or the GUI's worker would have) writes a label every
~20 ms on comparisons that were there before. Target (issue: "a long import locks labeling
out"): no label write fails, and none waits more than ~100 ms. ``--baseline`` runs the same
import in one transaction, as imports were written before, for comparison.
Prints a table and writes benchmarks/results/import_while_labeling.json.

    python benchmarks/import_while_labeling.py [--rows 100000] [--baseline]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import tempfile
import time
from pathlib import Path

from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project
from store import percentile, write_dataset  # benchmarks/store.py: the same synthetic rows

LABEL_EVERY_S = 0.02
SEED_ROWS = 2_000  # comparisons in the project before the import: the labeler labels these


def labeler(path: str, ids: list[int], ready, stop, out) -> None:
    """Label a random pre-existing comparison every LABEL_EVERY_S until told to stop."""
    rng = random.Random(7)
    latencies, errors = [], []
    with Project.open(path) as project:
        project.annotator_id("bench-labeler")
        ready.set()
        next_at = time.perf_counter()
        while not stop.is_set():
            start = time.perf_counter()
            try:
                project.set_label(rng.choice(ids), "bench-labeler", rng.choice(["a", "b", "tie"]))
                latencies.append((time.perf_counter() - start) * 1000)
            except Exception as exc:  # noqa: BLE001 - counted and shown, that is the point
                errors.append(f"{type(exc).__name__}: {exc}")
            next_at += LABEL_EVERY_S
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at = max(next_at, time.perf_counter() - LABEL_EVERY_S)
    out.put({"latencies_ms": latencies, "errors": errors})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline", action="store_true",
                        help="import in one transaction (the behaviour before chunked imports)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    name = "import_while_labeling" + ("_baseline" if args.baseline else "")
    out_path = Path(args.out or Path(__file__).parent / "results" / f"{name}.json")
    results: dict = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                     "cpus": os.cpu_count(), "python": platform.python_version(),
                     "rows": args.rows, "mode": "one transaction" if args.baseline else "chunked",
                     "label_every_ms": LABEL_EVERY_S * 1000}
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        seed, data = Path(tmp) / "seed.jsonl", Path(tmp) / "pairs.jsonl"
        write_dataset(seed, SEED_ROWS, seed=1, tag="seed")
        write_dataset(data, args.rows, seed=0, tag="")
        path = Path(tmp) / "bench.rmstudio"
        with Project.create(path) as project:
            import_files(project, [seed])
            ids = [r[0] for r in project.conn.execute("SELECT id FROM comparisons")]

        ready, stop, queue = ctx.Event(), ctx.Event(), ctx.Queue()
        worker = ctx.Process(target=labeler, args=(str(path), ids, ready, stop, queue))
        worker.start()
        ready.wait(60)
        time.sleep(0.5)  # a few unhindered writes first
        with Project.open(path) as project:
            start = time.perf_counter()
            if args.baseline:
                with project.write():
                    report = import_files(project, [data])
            else:
                report = import_files(project, [data])
            seconds = time.perf_counter() - start
            time.sleep(0.3)
            stop.set()
            labels = queue.get(timeout=60)
            worker.join(60)
            assert report.counts["comparisons_added"] == args.rows
            results["import_seconds"] = seconds
            results["import_rows_per_s"] = args.rows / seconds
            results["labels_kept"] = project.conn.execute(
                "SELECT count(*) FROM labels l JOIN annotators a ON a.id = l.annotator_id "
                "WHERE a.name = 'bench-labeler'").fetchone()[0]
    lat, errors = labels["latencies_ms"], labels["errors"]
    results.update({
        "label_writes": len(lat), "label_errors": len(errors),
        "label_ms_p50": percentile(lat, 50), "label_ms_p99": percentile(lat, 99),
        "label_ms_max": max(lat) if lat else float("nan"),
        "label_writes_over_100ms": sum(v > 100 for v in lat),
        "first_errors": sorted(set(errors))[:3],
    })

    print(f"\nrmstudio import while labeling, {args.rows:,} rows, {results['mode']} "
          f"({results['machine']}, {results['cpus']} CPUs)")
    print(f"{'measure':<34} {'value':>12} {'target':>10}")
    print(f"{'import':<34} {seconds:>10.2f} s")
    print(f"{'import rate':<34} {results['import_rows_per_s']:>8,.0f} r/s")
    print(f"{'label writes during import':<34} {len(lat):>12,}")
    print(f"{'label write p50':<34} {results['label_ms_p50']:>9.1f} ms")
    print(f"{'label write p99':<34} {results['label_ms_p99']:>9.1f} ms {'< 100 ms':>10}")
    print(f"{'label write max':<34} {results['label_ms_max']:>9.1f} ms")
    print(f"{'label writes over 100 ms':<34} {results['label_writes_over_100ms']:>12,}")
    print(f"{'label write errors':<34} {len(errors):>12,} {'0':>10}")
    for error in results["first_errors"]:
        print(f"  {error}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out_path}")


if __name__ == "__main__":
    main()
