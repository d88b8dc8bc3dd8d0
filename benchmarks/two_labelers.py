"""Labelers benchmark: do several labelers writing to one project starve each other?

N labeler processes (default 2; each its own connection, as N rmstudio windows would have)
write a label every ``--every-ms`` (default 20 ms, far faster than a person; 0 = as fast as they
can) on comparisons of one project for ``--seconds``, optionally while an import of
``--import-rows`` rows runs in another process. Issue: "Two labelers must never starve each
other (one waited 4.5 s)". Target: no write fails, and at human-ish rates no write waits more
than ~100 ms. Reported per labeler: writes, p50/p99/max of the time ``set_label`` took (the
wait the user feels), writes over 100 ms, errors.

``--fix`` runs the same with the store monkeypatched in every process of the run (the
benchmark only), to compare against what rmstudio does:

* ``none``: rmstudio as it is: BEGIN IMMEDIATE with busy_timeout 0, retried every ~1 ms
  (jittered) until 5 s (``Project._begin_immediate``), so a waiting writer sees a free lock
  within ~1 ms.
* ``busy-handler``: the way it was before: SQLite's default busy handler (5 s), whose back-off
  (sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100, 100 ... ms) a writer that comes back
  sooner always wins.
* ``normal``: as ``none`` but PRAGMA synchronous = NORMAL (no fsync per commit in WAL mode;
  measured to show what the fsync costs, not proposed: a label would no longer survive power
  loss the moment set_label returns).

Prints a table and writes benchmarks/results/labelers[_<variant>].json (``--matrix`` runs the
whole 2/4 labelers x 20 ms/fast x no import/import x none/busy-handler set, ~8 minutes on 2 cores).

    python benchmarks/two_labelers.py [--labelers 2] [--every-ms 20] [--seconds 20]
                                      [--import-rows 0] [--fix none|busy-handler|normal] [--matrix]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from import_while_labeling import percentile, write_dataset  # noqa: E402

from rmstudio.core.data.importer import import_files  # noqa: E402
from rmstudio.core.store.project import Project  # noqa: E402

SEED_ROWS = 2_000
FIXES = ("none", "busy-handler", "normal")


# -- the variants, monkeypatched into each process of a run ---------------------------------

_original_write = Project.write
_original_connect = Project._connect.__func__


def _busy_handler_begin(self):
    """The write lock as rmstudio took it before: one BEGIN IMMEDIATE that waits in SQLite's
    own busy handler (back-off sleeps, no queue)."""
    self.conn.execute("BEGIN IMMEDIATE")


def _normal_connect(cls, path, checked):
    project = _original_connect(cls, path, checked)
    project.conn.execute("PRAGMA synchronous = NORMAL")
    return project


def apply_fix(fix: str) -> None:
    if fix == "busy-handler":
        Project._begin_immediate = _busy_handler_begin
    elif fix == "normal":
        Project._connect = classmethod(_normal_connect)


# -- the processes --------------------------------------------------------------------------

def labeler(path: str, name: str, ids: list[int], every_s: float, fix: str, seed: int,
            ready, go, stop, out) -> None:
    apply_fix(fix)
    rng = random.Random(seed)
    latencies, errors = [], []
    with Project.open(path) as project:
        project.annotator_id(name)
        ready.set()
        go.wait(120)
        next_at = time.perf_counter()
        while not stop.is_set():
            start = time.perf_counter()
            try:
                project.set_label(rng.choice(ids), name, rng.choice(["a", "b", "tie"]))
                latencies.append((time.perf_counter() - start) * 1000)
            except Exception as exc:  # noqa: BLE001 - counted and shown, that is the point
                errors.append(f"{type(exc).__name__}: {exc}")
            if every_s:
                next_at += every_s
                time.sleep(max(0.0, next_at - time.perf_counter()))
                next_at = max(next_at, time.perf_counter() - every_s)
    out.put({"name": name, "latencies_ms": latencies, "errors": errors})


def importer(path: str, data: str, fix: str, go, out) -> None:
    apply_fix(fix)
    with Project.open(path) as project:
        go.wait(120)
        time.sleep(0.5)  # a few unhindered writes first
        start = time.perf_counter()
        try:
            report = import_files(project, [Path(data)])
            result = {"import_seconds": time.perf_counter() - start,
                      "import_rows": report.counts["comparisons_added"], "import_error": None}
        except Exception as exc:  # noqa: BLE001
            result = {"import_seconds": time.perf_counter() - start, "import_rows": 0,
                      "import_error": f"{type(exc).__name__}: {exc}"}
    out.put({"name": "import", **result})


def run(labelers: int, every_ms: float, seconds: float, import_rows: int, fix: str) -> dict:
    ctx = multiprocessing.get_context("spawn")
    result: dict = {"labelers": labelers, "every_ms": every_ms, "seconds": seconds,
                    "import_rows": import_rows, "fix": fix}
    with tempfile.TemporaryDirectory() as tmp:
        seed_file, data = Path(tmp) / "seed.jsonl", Path(tmp) / "pairs.jsonl"
        write_dataset(seed_file, SEED_ROWS, seed=1, tag="seed")
        path = Path(tmp) / "bench.rmstudio"
        with Project.create(path) as project:
            import_files(project, [seed_file])
            ids = [r[0] for r in project.conn.execute("SELECT id FROM comparisons")]
        if import_rows:
            write_dataset(data, import_rows, seed=0, tag="")
        go, stop, queue = ctx.Event(), ctx.Event(), ctx.Queue()
        procs, readies = [], []
        for i in range(labelers):
            ready = ctx.Event()
            readies.append(ready)
            procs.append(ctx.Process(target=labeler, args=(
                str(path), f"labeler-{i + 1}", ids, every_ms / 1000, fix, 100 + i,
                ready, go, stop, queue)))
        if import_rows:
            procs.append(ctx.Process(target=importer, args=(str(path), str(data), fix, go, queue)))
        for p in procs:
            p.start()
        for ready in readies:
            ready.wait(120)
        go.set()
        time.sleep(seconds)
        stop.set()
        outs = [queue.get(timeout=600) for _ in procs]
        for p in procs:
            p.join(60)
    per = []
    for o in sorted((o for o in outs if o["name"] != "import"), key=lambda o: o["name"]):
        lat = o["latencies_ms"]
        per.append({"name": o["name"], "writes": len(lat), "errors": len(o["errors"]),
                    "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
                    "max_ms": max(lat) if lat else float("nan"),
                    "over_100ms": sum(v > 100 for v in lat),
                    "first_errors": sorted(set(o["errors"]))[:3]})
    result["per_labeler"] = per
    for o in outs:
        if o["name"] == "import":
            result.update({k: v for k, v in o.items() if k != "name"})
    return result


def print_rows(results: list[dict]) -> None:
    head = (f"{'labelers':>8} {'every':>6} {'import':>7} {'fix':>6} {'labeler':>10} {'writes':>7} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>8} {'>100ms':>7} {'errors':>6}")
    print(head)
    print("-" * len(head))
    for r in results:
        every = f"{r['every_ms']:g}ms" if r["every_ms"] else "fast"
        imp = f"{r['import_rows'] // 1000}k" if r["import_rows"] else "-"
        for row in r["per_labeler"]:
            print(f"{r['labelers']:>8} {every:>6} {imp:>7} {r['fix']:>6} {row['name']:>10} "
                  f"{row['writes']:>7,} {row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} "
                  f"{row['max_ms']:>8.1f} {row['over_100ms']:>7,} {row['errors']:>6,}")
            for error in row["first_errors"]:
                print(f"{'':>10}{error}")
        if r.get("import_rows"):
            extra = f" ERROR {r['import_error']}" if r.get("import_error") else ""
            print(f"{'':>8} import of {r['import_rows']:,} rows: "
                  f"{r.get('import_seconds', float('nan')):.1f} s{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelers", type=int, default=2)
    parser.add_argument("--every-ms", type=float, default=20.0, help="0: as fast as they can")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--import-rows", type=int, default=0)
    parser.add_argument("--fix", choices=FIXES, default="none")
    parser.add_argument("--matrix", action="store_true",
                        help="2/4 labelers x 20 ms/fast x no import/import x none/busy-handler")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.matrix:
        configs = [(n, every, rows, fix) for n in (2, 4) for every in (20.0, 0.0)
                   for rows in (0, args.import_rows or 50_000) for fix in ("none", "busy-handler")]
        name = "labelers_matrix"
    else:
        configs = [(args.labelers, args.every_ms, args.import_rows, args.fix)]
        every = f"{args.every_ms:g}ms" if args.every_ms else "fast"
        name = (f"labelers_{args.labelers}x{every}" + (f"_import{args.import_rows}" if
                args.import_rows else "") + ("" if args.fix == "none" else f"_{args.fix}"))
    out_path = Path(args.out or Path(__file__).parent / "results" / f"{name}.json")
    results = []
    for n, every, rows, fix in configs:
        results.append(run(n, every, args.seconds, rows, fix))
        print_rows(results[-1:])
        sys.stdout.flush()
    print(f"\nrmstudio labelers, {args.seconds:g} s each ({platform.machine()}, "
          f"{os.cpu_count()} CPUs, SQLite {sqlite3.sqlite_version})")
    print_rows(results)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "runs": results}, indent=2))
    print(f"\nwrote {out_path}")


if __name__ == "__main__":
    main()
