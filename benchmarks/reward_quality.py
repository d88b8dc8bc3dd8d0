"""Reward-model quality on real preference data: HH-RLHF harmless, fixed split.

Trains each method with the embedded model on the first 2,000 lines (10% of their prompts
held out for validation / L2 choice) and tests on the last 312 lines. Prints and saves
accuracy, ECE and wall time per method (model load, feature extraction and test scoring
included) next to the prefer-the-longer-response baseline.

    python benchmarks/reward_quality.py [--methods instant,lora,full]

Target (issue #5): instant >= 64% within 5 minutes on a 2-core CPU; LoRA/full beat instant.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project
from rmstudio.core.data.resources import resource
from rmstudio.core.reward.data import pairs_from_file
from rmstudio.core.reward.evaluate import evaluate_pairs
from rmstudio.core.reward.scoring import load_reward_model
from rmstudio.core.reward.train import RewardTrainConfig, train_reward_model

HH = resource("examples", "hh-rlhf-harmless-base-test.jsonl.gz")


class Quiet:
    def __init__(self):
        self.curve: dict[int, dict] = {}
        """Validation (and watched test) metrics by step, saved with the results."""

    def log(self, step, metrics):
        watched = {k: v for k, v in metrics.items() if k.split("/")[0] in ("val", "test")}
        if watched:
            self.curve.setdefault(step, {}).update(watched)
        if "teacher/val_accuracy" in metrics or "best_step" in metrics:
            print(f"  {metrics}", flush=True)
        if metrics.get("stage") in ("features", "probe") and metrics.get("done", 0) % 800 < 16:
            print(f"  {metrics['stage']} {metrics['done']}/{metrics['total']}", flush=True)
        if "val/accuracy" in metrics or "test/accuracy" in metrics or ("train/loss" in metrics and step % 25 == 0):
            shown = {k: round(v, 3) for k, v in metrics.items()
                     if k in ("train/loss", "val/loss", "val/accuracy", "test/loss", "test/accuracy", "train/seconds")}
            print(f"  step {step}: {shown}", flush=True)

    def should_stop(self):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="instant")
    parser.add_argument("--train-lines", type=int, default=2000)
    parser.add_argument("--test-lines", type=int, default=312)
    parser.add_argument("--finetune", default="{}", help="JSON settings for lora/full")
    parser.add_argument("--watch-test", action="store_true",
                        help="also score the test pairs at every validation (a curve to study; "
                             "the exported step is still chosen on validation)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "reward_quality.json"))
    args = parser.parse_args()
    import torch

    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                          f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}",
               "torch_threads": torch.get_num_threads(), "methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with gzip.open(HH, "rt", encoding="utf-8") as fh:
            lines = fh.readlines()
        train_file, test_file = tmp / "train.jsonl", tmp / "test.jsonl"
        train_file.write_text("".join(lines[:args.train_lines]))
        test_file.write_text("".join(lines[len(lines) - args.test_lines:]))
        test_pairs = pairs_from_file(test_file)
        baseline = evaluate_pairs(test_pairs, [len(p.chosen.text) for p in test_pairs],
                                  [len(p.rejected.text) for p in test_pairs])
        results["baseline_longer_test_accuracy"] = baseline["accuracy"]
        for method in args.methods.split(","):
            project_path = tmp / f"{method}.rmstudio"
            with Project.create(project_path) as project:
                import_files(project, [train_file])
            started = time.perf_counter()
            config = RewardTrainConfig(method=method, finetune=json.loads(args.finetune) if method != "instant" else {},
                                       monitor_file=str(test_file) if args.watch_test else None)
            print(f"{method}: training", flush=True)
            quiet = Quiet()
            trained = train_reward_model(project_path, config, sink=quiet)
            train_seconds = time.perf_counter() - started
            scorer = load_reward_model(trained["model_dir"])
            r_c, r_r = scorer.score_pairs(test_pairs)
            report = evaluate_pairs(test_pairs, r_c, r_r)
            wall = time.perf_counter() - started
            results["methods"][method] = {
                "test_accuracy": report["accuracy"], "test_ece": report["ece"],
                "val_accuracy": trained.get("metrics", {}).get("val/accuracy"),
                "wall_seconds": wall, "train_seconds": train_seconds,
                "reward_length_correlation": report["reward_length_correlation"],
                "train_pairs": trained.get("train_pairs"), "val_pairs": trained.get("val_pairs"),
                "steps": trained.get("steps"), "exported_step": trained.get("best_step"),
                "probe_val_accuracy": (trained.get("probe") or {}).get("val/accuracy"),
                "settings": config.finetune,
                "curve": {str(k): v for k, v in sorted(quiet.curve.items())},
            }
            print(f"{method}: test accuracy {report['accuracy']:.3f}, wall {wall:.0f} s", flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # each method survives a later kill
            Path(args.out).write_text(json.dumps(results, indent=2))

    print(f"\nHH-RLHF harmless: train first {args.train_lines}, test last {args.test_lines} "
          f"({results['machine']})")
    print(f"{'method':<12} {'test acc':>9} {'ECE':>7} {'wall s':>8}")
    print(f"{'longer':<12} {results['baseline_longer_test_accuracy']:>9.3f} {'':>7} {'':>8}")
    for method, r in results["methods"].items():
        print(f"{method:<12} {r['test_accuracy']:>9.3f} {r['test_ece']:>7.3f} {r['wall_seconds']:>8.0f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
