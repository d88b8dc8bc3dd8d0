"""UI stall benchmark: the largest event-loop gap in the window while a training run goes on.

A MainWindow is opened (offscreen) on a temporary project of real HH-RLHF pairs; a 5 ms
QTimer records the time between its ticks while a run is started from its page's own Start
button (every kind runs in a child process: instant, LoRA and full from the Train page; GRPO,
RLOO and DPO from the Optimize page, GRPO/RLOO against an instant reward model trained first,
outside the measurement), and, with ``--label``, while a person labels every ~500 ms on the
Label page (key 1/2 sent to the page).
Target (issue "benchmarks/ui_stall.py"): no gap over 50 ms.

A watchdog thread samples every thread's Python stack (``sys._current_frames``) every 10 ms
while a gap is open (over 50 ms since the last tick), plus the main thread's kernel state and
syscall from /proc; the most frequent frames are printed as the likely causes.

Prints a table and writes benchmarks/results/ui_stall[_quick][_label].json.

    QT_QPA_PLATFORM=offscreen python benchmarks/ui_stall.py [--kinds instant,lora] [--pairs 150]
        [--label] [--seconds 600] [--quick]

``--quick`` trains on a tiny random model (tests/tiny_models.py) instead of the embedded
SmolLM2-135M: seconds instead of minutes, for checking the benchmark itself; its figures say
little about the real app.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import gzip
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6 import __version__ as PYSIDE_VERSION  # noqa: E402

# PySide6 6.12.0 on CPython < 3.12 drops a reference to None on every void method call (see
# benchmarks/labeling.py): hold extra references for the thousands of calls of a long run.
_NONE_BALLAST = ([None] * 4_000_000 if sys.version_info < (3, 12) and PYSIDE_VERSION.startswith("6.12.0")
                 else [])

TICK_MS = 5
GAP_MS = 50.0
BIG_GAP_MS = 200.0
SAMPLE_EVERY_S = 0.010
IN_QT = "(no Python frame: in Qt's C++ event loop, or waiting there for the GIL)"
LABEL_EVERY_MS = 500
POLICY_KINDS = ("grpo", "rloo", "dpo")
DATASETS = [ROOT.parent / "shared" / "datasets" / "hh-rlhf-harmless-base-test.jsonl.gz",
            ROOT / "resources" / "examples" / "hh-rlhf-harmless-base-test.jsonl.gz"]
RESULTS = ROOT / "benchmarks" / "results"


# -- data ------------------------------------------------------------------------------------

def hh_rows() -> list[dict]:
    path = next((p for p in DATASETS if p.exists()), None)
    if path is None:
        sys.exit("no HH-RLHF file found in " + " or ".join(map(str, DATASETS)))
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def unlabeled(row: dict) -> dict:
    """An HH line as an unlabeled A/B pair: the prompt is everything up to the last Assistant turn."""
    cut = "\n\nAssistant:"
    a, b = row["chosen"], row["rejected"]
    i = a.rfind(cut)
    return {"prompt": a[:i].strip() or "Hello", "response_a": a[i + len(cut):].strip() or "-",
            "response_b": b[b.rfind(cut) + len(cut):].strip() or "-"}


def build_project(folder: Path, rows: list[dict], pairs: int, to_label: int) -> Path:
    """A project of `pairs` labeled HH pairs (first lines: train split) and `to_label` unlabeled
    ones (from the held-out end of the file), as a user would import them."""
    from rmstudio.core.data.importer import import_files
    from rmstudio.core.store.project import Project

    labeled = folder / "hh-labeled.jsonl"
    labeled.write_text("".join(json.dumps(r) + "\n" for r in rows[:pairs]), encoding="utf-8")
    files = [labeled]
    if to_label:
        fresh = folder / "to-label.jsonl"
        fresh.write_text("".join(json.dumps(unlabeled(r)) + "\n" for r in rows[-to_label:]), encoding="utf-8")
        files.append(fresh)
    path = folder / "bench.rmstudio"
    with Project.create(path) as project:
        import_files(project, files)
    return path


# -- measuring -------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _where(frame) -> str:
    code = frame.f_code
    path = code.co_filename
    for base in (str(ROOT) + os.sep, sys.prefix + os.sep):
        if path.startswith(base):
            path = path[len(base):]
            break
    if "site-packages" in path:
        path = path.split("site-packages" + os.sep, 1)[1]
    return f"{path}:{frame.f_lineno} ({code.co_name})"


def _stack(frame, depth: int = 60) -> list[str]:
    out = []
    while frame is not None and len(out) < depth:
        out.append(_where(frame))
        frame = frame.f_back
    return out  # innermost first


def _first_app_frame(stack: list[str]) -> str:
    """The innermost frame in rmstudio's own code (what the engineers can change)."""
    return next((s for s in stack if s.startswith("rmstudio" + os.sep)), stack[0] if stack else "?")


SYSCALLS = {"202": "futex (waiting for a lock: the GIL?)", "7": "poll", "271": "ppoll", "0": "read",
            "1": "write", "232": "epoll_wait", "23": "select", "running": "running"}


def _proc_state(tid: int) -> tuple[str, str]:
    """(scheduler state, syscall) of one thread of this process, from /proc (Linux only)."""
    try:
        state = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "?"
    try:
        raw = Path(f"/proc/self/task/{tid}/syscall").read_text().split()[0]
        call = SYSCALLS.get(raw, f"syscall {raw}")
    except (OSError, IndexError):
        call = "?"
    return state, call


def _schedstat() -> tuple[int, int]:
    """(ns on a CPU, ns runnable but waiting for a CPU) of the calling thread (Linux)."""
    try:
        on_cpu, waiting, _ = open("/proc/thread-self/schedstat").read().split()
        return int(on_cpu), int(waiting)
    except (OSError, ValueError):
        return 0, 0


def _split(start: float, end: float, before: tuple[int, int], after: tuple[int, int]) -> dict:
    """How the main thread spent one gap: on a CPU (its own work), runnable but without a CPU
    (the machine is busy), or asleep (blocked: the GIL, a lock, a wait)."""
    total = (end - start) * 1000
    on_cpu = (after[0] - before[0]) / 1e6
    waiting = (after[1] - before[1]) / 1e6
    return {"at": start, "ms": round(total, 1), "on_cpu": round(on_cpu, 1),
            "waiting_for_cpu": round(waiting, 1),
            "asleep": round(max(0.0, total - on_cpu - waiting), 1)}


def _in_event_loop(stack: list[str]) -> bool:
    """The main thread's innermost Python frame is this benchmark's loop.exec(): Qt runs C++."""
    return stack[0].startswith(os.path.join("benchmarks", "ui_stall.py"))


def parse_dumps(text: str, top: int = 8) -> dict:
    """faulthandler's stacks, taken 50 ms into each gap by a C thread that needs no GIL (so they
    also show what the main thread does while it holds the GIL in C++, where the watchdog is blind)."""
    main = f"0x{threading.main_thread().ident:016x}"
    counts = {k: collections.Counter() for k in ("main_top", "main_rmstudio", "other_top", "other_rmstudio")}
    examples: dict[str, list[str]] = {}
    dumps = [d for d in text.split("Timeout (") if d.strip()]
    for dump in dumps:
        for block in dump.split("\n\n"):
            lines = block.strip().splitlines()
            starts = ("Thread 0x", "Current thread 0x")
            head = next((i for i, line in enumerate(lines) if line.startswith(starts)), None)
            if head is None:
                continue
            ident = lines[head].split()[-4] if lines[head].startswith("Current") else lines[head].split()[1]
            stack = []
            for line in lines[head + 1:]:
                line = line.strip()
                if line.startswith("File "):
                    path, _, rest = line[6:].partition('", line ')
                    lineno, _, func = rest.partition(" in ")
                    for base in (str(ROOT) + os.sep, sys.prefix + os.sep):
                        path = path[len(base):] if path.startswith(base) else path
                    if "site-packages" + os.sep in path:
                        path = path.split("site-packages" + os.sep, 1)[1]
                    stack.append(f"{path}:{lineno} ({func})")
            if not stack:
                continue
            who = "main" if ident == main else "other"
            in_qt = who == "main" and _in_event_loop(stack)
            top_frame = IN_QT if in_qt else stack[0]
            app = IN_QT if in_qt else _first_app_frame(stack)
            tag = "" if who == "main" else f"[{ident}] "
            counts[f"{who}_top"][tag + top_frame] += 1
            counts[f"{who}_rmstudio"][tag + app] += 1
            examples.setdefault(f"{who} {tag}{app}", stack[:20])
    keys = {f"main {k}" for k, _ in counts["main_rmstudio"].most_common(top)} | {
        f"other {k}" for k, _ in counts["other_rmstudio"].most_common(top)}
    return {"dumps": len(dumps), **{k: v.most_common(top) for k, v in counts.items()},
            "example_stacks": {k: v for k, v in examples.items() if k in keys}}


class Watchdog(threading.Thread):
    """Samples every thread's stack each 10 ms into a ring; the samples that fall inside a gap of
    the main thread's 5 ms timer (reported by the timer's next tick) are counted as its causes."""

    def __init__(self, main_thread: threading.Thread):
        super().__init__(daemon=True, name="ui-stall-watchdog")
        self.main_ident = main_thread.ident
        self.main_tid = main_thread.native_id
        self.recording = False
        self.stop_event = threading.Event()
        self.ring: collections.deque = collections.deque(maxlen=1000)  # 10 s of samples
        self.gaps: collections.deque = collections.deque()  # (start, end) from the main thread
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.samples = 0
            self.main_top = collections.Counter()      # innermost frame of the main thread
            self.main_app = collections.Counter()      # innermost rmstudio frame of the main thread
            self.other_top = collections.Counter()     # innermost frame of each other thread
            self.other_app = collections.Counter()     # innermost rmstudio frame of each other thread
            self.main_state = collections.Counter()    # kernel state + syscall of the main thread
            self.examples: dict[str, list[str]] = {}   # a full stack for each *_app key
            self.ring.clear()
            self.gaps.clear()

    def gap(self, start: float, end: float) -> None:
        """Called by the timer's tick (main thread) after a gap over GAP_MS."""
        self.gaps.append((start, end))

    def run(self) -> None:
        me = threading.get_ident()
        while not self.stop_event.wait(SAMPLE_EVERY_S):
            while self.gaps:
                self._count(*self.gaps.popleft())
            if not self.recording:
                continue
            now = time.perf_counter()
            frames = sys._current_frames()
            names = {t.ident: t.name for t in threading.enumerate()}
            stacks = {("main" if ident == self.main_ident else names.get(ident, f"thread {ident}")): _stack(f)
                      for ident, f in frames.items() if ident != me}
            self.ring.append((now, _proc_state(self.main_tid), stacks))
            while self.gaps:
                self._count(*self.gaps.popleft())

    def _count(self, start: float, end: float) -> None:
        with self.lock:
            for t, state, stacks in self.ring:
                if not (start + TICK_MS / 1000 < t < end):
                    continue
                self.samples += 1
                self.main_state[f"{state[0]} {state[1]}"] += 1
                for name, stack in stacks.items():
                    if not stack:
                        continue
                    app = _first_app_frame(stack)
                    if name == "main":
                        top = IN_QT if _in_event_loop(stack) else stack[0]
                        self.main_top[top] += 1
                        self.main_app[IN_QT if _in_event_loop(stack) else app] += 1
                        self.examples.setdefault("main " + app, stack[:25])
                    else:
                        self.other_top[f"[{name}] {stack[0]}"] += 1
                        self.other_app[f"[{name}] {app}"] += 1
                        self.examples.setdefault(f"[{name}] {app}", stack[:25])

    def report(self, top: int = 8) -> dict:
        time.sleep(3 * SAMPLE_EVERY_S)  # the last gaps get counted
        with self.lock:
            keys = {"main " + c for c, _ in self.main_app.most_common(top)} | {
                c for c, _ in self.other_app.most_common(top)}
            return {"samples_in_gaps": self.samples, "sample_every_ms": SAMPLE_EVERY_S * 1000,
                    "main_thread_state": self.main_state.most_common(),
                    "main_top_frames": self.main_top.most_common(top),
                    "main_rmstudio_frames": self.main_app.most_common(top),
                    "other_threads_top_frames": self.other_top.most_common(top),
                    "other_threads_rmstudio_frames": self.other_app.most_common(top),
                    "example_stacks": {k: v for k, v in self.examples.items() if k in keys}}


def gap_stats(ticks: list[float], seconds: float) -> dict:
    gaps = [(b - a) * 1000 for a, b in zip(ticks, ticks[1:])]
    return {"seconds": round(seconds, 2), "ticks": len(ticks),
            "gap_ms_p50": round(percentile(gaps, 50), 2), "gap_ms_p99": round(percentile(gaps, 99), 2),
            "gap_ms_max": round(max(gaps), 1) if gaps else float("nan"),
            "gaps_over_50ms": sum(g > GAP_MS for g in gaps),
            "gaps_over_200ms": sum(g > BIG_GAP_MS for g in gaps),
            "ms_in_gaps_over_50ms": round(sum(g for g in gaps if g > GAP_MS), 1),
            "largest_gaps_ms": [round(g, 1) for g in sorted(gaps, reverse=True)[:10]]}


# -- one run ---------------------------------------------------------------------------------

def run_once(kind: str, args, rows: list[dict], base_dir: Path | None, watchdog: Watchdog,
             policy_dir: Path | None = None) -> dict:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest

    from rmstudio.gui.main_window import MainWindow

    with tempfile.TemporaryDirectory(prefix="ui-stall-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        path = build_project(tmp, rows, args.pairs, args.to_label if args.label else 0)
        if kind in POLICY_KINDS and kind != "dpo":  # GRPO/RLOO need a reward model: an instant one
            from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model

            train_reward_model(path, RewardTrainConfig(method="instant", base=str(base_dir or "embedded")))
        import_s = time.perf_counter() - started
        settings = QSettings(str(tmp / "settings.ini"), QSettings.IniFormat)  # the user's are untouched
        settings.setValue("annotator", "bench-labeler")
        window = MainWindow(settings)
        window.resize(1200, 800)
        window.show()
        assert window.open_project(path), "the project did not open"
        titles = [window.nav.item(i).text() for i in range(window.nav.count())]
        label_row = titles.index("Label")
        # `train` is the page whose Start is pressed: Train for reward kinds, Optimize for policies.
        if kind in POLICY_KINDS:
            train = window.optimize_page
            window.nav.setCurrentRow(titles.index("Optimize"))
            train.method_buttons[kind].setChecked(True)
            train.set_project(window.project)  # the instant reward model made above is a choice
            if policy_dir is not None:
                train.policy_picker.set_source("hf_dir", str(policy_dir))
            train.steps.setValue(args.policy_steps)
            train.length.setValue(args.policy_length)
        else:
            train = window.train_page
            window.nav.setCurrentRow(titles.index("Train"))
            train.method_buttons[kind].setChecked(True)
            if base_dir is not None:
                train.base_picker.set_source("hf_dir", str(base_dir))
        if kind in ("lora", "full"):  # a short fine-tune, set on the page as a user would
            box = train.finetune_box
            box.epochs.setValue(1)
            box.batch_size.setValue(args.batch_size)
            box.max_length.setValue(args.max_length)

        loop = QEventLoop()
        ticks: list[float] = []

        sched = [_schedstat()]
        gap_split: list[dict] = []  # where the main thread was during each gap over 50 ms

        dump_path = tmp / "gap-dumps.txt"
        dumps = open(dump_path, "w+")  # noqa: SIM115 - faulthandler writes to its file descriptor

        def tick() -> None:
            faulthandler.cancel_dump_traceback_later()
            if watchdog.recording:  # fires from a C thread (no GIL needed) if the next tick is late
                faulthandler.dump_traceback_later(GAP_MS / 1000, file=dumps)
            now = time.perf_counter()
            stat = _schedstat()
            if ticks and (now - ticks[-1]) * 1000 > GAP_MS and watchdog.recording:
                watchdog.gap(ticks[-1], now)
                gap_split.append(_split(ticks[-1], now, sched[0], stat))
            sched[0] = stat
            ticks.append(now)

        ticker = QTimer()
        ticker.setTimerType(Qt.PreciseTimer)
        ticker.setInterval(TICK_MS)
        ticker.timeout.connect(tick)

        def wait(ms: int) -> None:
            QTimer.singleShot(ms, loop.quit)
            loop.exec()

        wait(4000)  # the window settles and the device detection (imports torch) ends first

        # Idle baseline: the same timer with nothing running (the machine's own noise).
        ticks.clear()
        ticker.start()
        t0 = time.perf_counter()
        wait(int(args.idle * 1000))
        ticker.stop()
        idle = gap_stats(ticks, time.perf_counter() - t0)

        # The run: pressing Start on the Train page.
        ticks.clear()
        watchdog.reset()
        labels = {"keys": 0, "saved": 0, "latency_ms": []}
        pressed: list[float] = []
        finished: dict = {}
        train.sig_run_finished.connect(lambda result: finished.update(result or {"status": "?"}))

        def on_labeled() -> None:
            labels["saved"] += 1
            if pressed:
                labels["latency_ms"].append((time.perf_counter() - pressed.pop()) * 1000)

        window.label_page.sig_labeled.connect(on_labeled)
        rng = random.Random(0)

        def label_one() -> None:
            page = window.label_page
            if page.current is None or page.saving:
                return
            pressed[:] = [time.perf_counter()]
            labels["keys"] += 1
            QTest.keyClick(page, rng.choice([Qt.Key_1, Qt.Key_2]))

        labeler = QTimer()
        labeler.setInterval(LABEL_EVERY_MS)
        labeler.timeout.connect(label_one)
        clock = QElapsedTimer()

        def check() -> None:
            if not train.panel.running or clock.elapsed() > args.seconds * 1000:
                loop.quit()

        checker = QTimer()
        checker.setInterval(100)
        checker.timeout.connect(check)

        watchdog.recording = True
        ticker.start()
        t0 = time.perf_counter()
        clock.start()
        train.panel.start_button.click()  # the page's own Start button
        if not train.panel.running:
            raise SystemExit(f"{kind}: the run did not start: {train.panel.last_error or train.panel.status.text()}")
        if args.label:
            window.nav.setCurrentRow(label_row)  # the person goes back to labeling
            window.label_page.setFocus()
            labeler.start()
        checker.start()
        loop.exec()
        timed_out = train.panel.running
        if timed_out:
            train.panel.cancel()
        labeler.stop()
        checker.stop()
        run_s = time.perf_counter() - t0
        wait(500)  # what the window does right after the run (results, runs page) counts too
        ticker.stop()
        watchdog.recording = False
        faulthandler.cancel_dump_traceback_later()
        dumps.close()
        total_s = time.perf_counter() - t0
        stats = gap_stats(ticks, total_s)
        stats["gaps_over_50ms_at"] = [(round(a - t0, 2), round((b - a) * 1000, 1))
                                      for a, b in zip(ticks, ticks[1:]) if (b - a) * 1000 > GAP_MS]
        stats["gaps_over_50ms_split"] = [dict(g, at_s=round(g["at"] - t0, 2)) for g in gap_split]
        for g in stats["gaps_over_50ms_split"]:
            del g["at"]
        stats["gaps_over_50ms_main_thread_ms"] = {
            k: round(sum(g[k] for g in gap_split), 1) for k in ("on_cpu", "waiting_for_cpu", "asleep")}
        stats["run_ended_at"] = round(run_s, 2)
        status = ("timed out (cancelled)" if timed_out
                  else finished.get("status", "failed: " + train.panel.status.text()))
        row = {"kind": kind, "labeling": bool(args.label), "status": status, "run_seconds": round(run_s, 1),
               "import_seconds": round(import_s, 2), "pairs": args.pairs, "idle": idle, **stats}
        if kind in ("lora", "full"):
            row["finetune"] = {"epochs": 1, "batch_size": args.batch_size, "max_length": args.max_length}
        if kind in POLICY_KINDS:
            row["policy"] = {"steps": args.policy_steps, "completion_tokens": args.policy_length}
        if args.label:
            lat = labels["latency_ms"]
            row["labels"] = {"keys": labels["keys"], "saved": labels["saved"],
                             "key_to_next_pair_ms_p50": round(percentile(lat, 50), 1),
                             "key_to_next_pair_ms_max": round(max(lat), 1) if lat else None}
        row["causes"] = watchdog.report()
        row["causes"]["at_50ms_into_each_gap"] = parse_dumps(dump_path.read_text(errors="replace"))
        if timed_out:
            train.shutdown()
        window.close()
        window.deleteLater()
        wait(200)
        return row


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="instant",
                        help="comma-separated: instant, lora, full (Train page), grpo, rloo, dpo (Optimize page)")
    parser.add_argument("--policy-steps", type=int, default=4, help="policy kinds: optimizer steps")
    parser.add_argument("--policy-length", type=int, default=32, help="policy kinds: tokens per answer")
    parser.add_argument("--pairs", type=int, default=150, help="labeled HH pairs to train on")
    parser.add_argument("--label", action="store_true",
                        help="label every ~500 ms on the Label page meanwhile")
    parser.add_argument("--to-label", type=int, default=300, help="unlabeled pairs for --label")
    parser.add_argument("--seconds", type=float, default=600, help="cancel a run after this long")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle baseline before each run")
    parser.add_argument("--batch-size", type=int, default=8, help="fine-tunes: pairs per step")
    parser.add_argument("--max-length", type=int, default=128, help="fine-tunes: tokens per sequence")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny random base model (checks the benchmark)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]

    from PySide6.QtWidgets import QApplication
    import torch

    app = QApplication.instance() or QApplication(sys.argv)  # noqa: F841 - must outlive the windows
    rows = hh_rows()
    with tempfile.TemporaryDirectory(prefix="ui-stall-model-") as model_tmp:
        base_dir = policy_dir = None
        if args.quick:
            sys.path.insert(0, str(ROOT / "tests"))
            from tiny_models import save_tiny_model

            base_dir = save_tiny_model(Path(model_tmp) / "tiny")
            sys.path.insert(0, str(ROOT / "tests" / "policy"))
            from policy_helpers import save_policy_model

            policy_dir = save_policy_model(Path(model_tmp) / "policy")
        else:
            from rmstudio.core.models.loading import ensure_embedded_cache

            ensure_embedded_cache()  # the one-time GGUF conversion is not what this measures
        watchdog = Watchdog(threading.main_thread())
        watchdog.start()
        results = []
        for kind in kinds:
            print(f"running {kind} ({'with' if args.label else 'without'} labeling)…", flush=True)
            results.append(run_once(kind, args, rows, base_dir, watchdog, policy_dir))
        watchdog.stop_event.set()

    report = {"machine": f"{cpu_model()} ({platform.machine()})", "cpus": os.cpu_count(),
              "load_average_at_end": os.getloadavg(), "python": platform.python_version(),
              "pyside6": PYSIDE_VERSION, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "base": "tiny random Llama (tests/tiny_models.py)" if args.quick else "embedded SmolLM2-135M",
              "tick_ms": TICK_MS, "target": f"no gap over {GAP_MS:.0f} ms", "runs": results}

    print(f"\nrmstudio UI stall: 5 ms timer in the event loop during training "
          f"({report['machine']}, {report['cpus']} CPUs, base {report['base']})")
    print(f"{'run':<18} {'status':<10} {'s':>6} {'ticks':>6} {'p50':>6} {'p99':>6} {'max':>7} "
          f"{'>50ms':>6} {'>200ms':>7}  {'idle max':>8}")
    for r in results:
        name = r["kind"] + (" + labeling" if r["labeling"] else "")
        print(f"{name:<18} {str(r['status'])[:10]:<10} {r['seconds']:>6.1f} {r['ticks']:>6} "
              f"{r['gap_ms_p50']:>6.1f} {r['gap_ms_p99']:>6.1f} {r['gap_ms_max']:>7.1f} "
              f"{r['gaps_over_50ms']:>6} {r['gaps_over_200ms']:>7}  {r['idle']['gap_ms_max']:>8.1f}")
    print(f"target: no gap over {GAP_MS:.0f} ms (gaps in ms; idle = the same timer before the run)")
    for r in results:
        c = r["causes"]
        name = r["kind"] + (" + labeling" if r["labeling"] else "")
        print(f"\n{name}: {c['samples_in_gaps']} stack samples in gaps "
              f"(every {c['sample_every_ms']:.0f} ms); largest gaps {r['largest_gaps_ms'][:5]}")
        print(f"  gaps over 50 ms at (s from Start, ms): {r['gaps_over_50ms_at'][:12]}; run ended at "
              f"{r['run_ended_at']} s")
        print(f"  main thread during those gaps (ms): {r['gaps_over_50ms_main_thread_ms']} "
              "(asleep = blocked: the GIL or a wait)")
        if "labels" in r:
            print(f"  labels: {r['labels']}")
        d = c["at_50ms_into_each_gap"]
        print(f"  stacks 50 ms into each gap (faulthandler, {d['dumps']} dumps):")
        for title, key in (("main thread, innermost rmstudio frame", "main_rmstudio"),
                           ("other threads, innermost rmstudio frame", "other_rmstudio")):
            print(f"    {title}:")
            for where, n in d[key][:6]:
                print(f"      {n:>5}  {where}")
        print("  watchdog samples (a Python thread: blind while another thread holds the GIL):")
        for title, key in (("main thread state", "main_thread_state"),
                           ("main thread, innermost rmstudio frame", "main_rmstudio_frames"),
                           ("main thread, innermost frame", "main_top_frames"),
                           ("other threads, innermost rmstudio frame", "other_threads_rmstudio_frames"),
                           ("other threads, innermost frame", "other_threads_top_frames")):
            print(f"  {title}:")
            for where, n in c[key][:5]:
                print(f"    {n:>5}  {where}")

    name = "ui_stall" + ("_quick" if args.quick else "") + ("_label" if args.label else "")
    out = Path(args.out) if args.out else RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_suffix(".json.tmp")
    temp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    temp.replace(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
