"""Label workspace benchmark: keystroke -> next pair painted at 100k comparisons, and the
time to a shown MainWindow from interpreter start (with no heavy ML import at start).

Targets: keystroke-to-next-pair p95 < 50 ms; MainWindow shown < 2 s from interpreter start;
'torch' not imported when the window is first shown. Writes benchmarks/results/labeling.json.

    QT_QPA_PLATFORM=offscreen python benchmarks/labeling.py [--comparisons 100000] [--presses 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from rmstudio.core.store.project import Project, utc_now  # noqa: E402

# PySide6 6.12.0 on CPython < 3.12 drops one reference to None on every call of a method that
# returns void (setText, processEvents, ...): ~5,000 such calls and the interpreter aborts with
# "none_dealloc". Until the dependency is pinned, hold extra references so the benchmark's
# thousands of calls can run (3.12+ has an immortal None and is not affected).
_NONE_BALLAST = [None] * 4_000_000 if sys.version_info < (3, 12) else []

WORDS = ("the reward model prefers clear helpful answers that explain why and stay kind to the "
         "user while avoiding harm or needless length in every response given").split()

STARTUP_SCRIPT = r"""
import sys, time
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QSettings
app = QApplication(sys.argv)
from rmstudio.gui.main_window import MainWindow
window = MainWindow(settings=QSettings(sys.argv[1], QSettings.IniFormat))
window.show()
app.processEvents()
shown = time.time()
torch_loaded = "torch" in sys.modules
print(repr((shown, torch_loaded)))
window.close()
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def build_project(path: Path, n: int, seed: int = 0) -> Project:
    """n prompts, 2n responses, n comparisons, straight SQL in one transaction (seconds)."""
    rng = random.Random(seed)
    project = Project.create(path)
    now = utc_now()

    def sentence(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    with project.write() as conn:
        conn.executemany(
            "INSERT INTO prompts (id, text, content_hash, created_at) VALUES (?, ?, ?, ?)",
            ((i, f"[{i}] " + sentence(40), f"p{i}", now) for i in range(1, n + 1)))
        conn.executemany(
            "INSERT INTO responses (id, prompt_id, text, model, content_hash, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((2 * i - 1 + side, i, sentence(60), f"m{side}", f"r{i}.{side}", now)
             for i in range(1, n + 1) for side in (0, 1)))
        conn.executemany(
            "INSERT INTO comparisons (id, prompt_id, response_a_id, response_b_id, pair_key, "
            "queue_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((i, i, 2 * i - 1, 2 * i, f"k{i}", rng.getrandbits(62), now) for i in range(1, n + 1)))
    return project


def measure_keystrokes(project: Project, presses: int, overlap_share: float) -> dict:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from rmstudio.gui.label_page import LabelPage

    app = QApplication.instance() or QApplication(sys.argv)
    page = LabelPage()
    page.resize(1200, 800)
    page.set_annotator("bench")
    page.set_project(project)
    page.overlap_box.setValue(int(overlap_share * 100))
    page.show()
    app.processEvents()
    latencies = []
    for i in range(presses):
        before = page.current.id
        start = time.perf_counter()
        QTest.keyClick(page, (Qt.Key_1, Qt.Key_2, Qt.Key_3)[i % 3])
        while page.saving or page.current is None or page.current.id == before:
            app.processEvents()  # the commit on the writer thread, then the next pair is set
        page.repaint()  # paints synchronously: the new pair is on screen
        latencies.append((time.perf_counter() - start) * 1000)
    page.shutdown()
    page.close()
    return {"p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "max_ms": max(latencies), "presses": presses}


def measure_startup(runs: int = 3) -> dict:
    """A fresh interpreter each time; the clock starts before the process is spawned."""
    times, torch_flags = [], []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=tmp,
                   RMSTUDIO_DATA_DIR=tmp)
        for _ in range(runs):
            start = time.time()
            out = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT, str(Path(tmp) / "s.ini")],
                                 capture_output=True, text=True, env=env, check=True)
            shown, torch_loaded = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr
            times.append(shown - start)
            torch_flags.append(torch_loaded)
    return {"seconds_min": min(times), "seconds_median": sorted(times)[len(times) // 2],
            "torch_loaded_at_show": any(torch_flags)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=100_000)
    parser.add_argument("--presses", type=int, default=300)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "labeling.json"))
    args = parser.parse_args()
    results: dict = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                     "python": platform.python_version(), "comparisons": args.comparisons,
                     "qpa": os.environ.get("QT_QPA_PLATFORM")}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        project = build_project(Path(tmp) / "bench.rmstudio", args.comparisons)
        results["build_seconds"] = time.perf_counter() - start
        results["keystroke_to_next_pair"] = measure_keystrokes(project, args.presses, 0.0)
        results["keystroke_to_next_pair_overlap_10pct"] = measure_keystrokes(project, args.presses, 0.1)
        project.close()
    results["main_window_startup"] = measure_startup()

    k, ko, s = (results["keystroke_to_next_pair"], results["keystroke_to_next_pair_overlap_10pct"],
                results["main_window_startup"])
    print(f"\nrmstudio labeling benchmark, {args.comparisons:,} comparisons ({results['machine']})")
    print(f"{'measure':<48} {'value':>10} {'target':>10}")
    print(f"{'build project':<48} {results['build_seconds']:>8.2f} s")
    print(f"{'keystroke -> next pair painted, p50':<48} {k['p50_ms']:>7.1f} ms")
    print(f"{'keystroke -> next pair painted, p95':<48} {k['p95_ms']:>7.1f} ms {'< 50 ms':>10}")
    print(f"{'  same with 10% overlap share, p95':<48} {ko['p95_ms']:>7.1f} ms {'< 50 ms':>10}")
    print(f"{'MainWindow shown from interpreter start':<48} {s['seconds_median']:>8.2f} s {'< 2 s':>10}")
    torch_loaded = str(s["torch_loaded_at_show"])
    print(f"{'torch imported when the window is shown':<48} {torch_loaded:>10} {'False':>10}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
    if _NONE_BALLAST:
        sys.stdout.flush()
        os._exit(0)  # skip finalization: freeing the ballast before Qt would abort (see top)
