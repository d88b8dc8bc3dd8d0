"""Reward-model training speed: rmstudio's fine-tune loop vs TRL's RewardTrainer (its defaults).

Run from the repository root: ``python benchmarks/reward_speed.py [--pairs 384] [--val-pairs 160]
[--max-length 256] [--methods lora,full] [--eval-every 8] [--threads N]``.
Same model (the embedded SmolLM2-135M-Instruct), same HH-harmless pairs (only pairs whose chosen
and rejected both fit max_length, so TRL's filter and our truncation see identical data), batch
size 8, one epoch, same machine, run back to back. Each trainer runs with its own defaults:
TRL's RewardConfig as shipped (learning rate 1e-4, gradient checkpointing, bf16 where supported,
a random score head), rmstudio's FinetuneConfig as shipped (1e-4 LoRA / 3e-5 full, prompt shared
per pair, length-grouped batches, no checkpointing, a score head started from a linear probe, targets
distilled from the instant model; the probe's and the teacher's forward passes count as training
time). A third run, rmstudio with a random head, shows
how much of the gain is the loop and how much the probe. Only the number of epochs is set (one,
TRL's default is three) to bound the run.

All runs are validated with the same function on the same held-out pairs before training and
every --eval-every steps; evaluation time is not counted as training time. The target accuracy
is TRL's own final validation accuracy; "t->target" is the training time until a run first
reaches it. tokens/s counts non-pad tokens of chosen + rejected per training second.
On a shared machine pass --threads 1: with two threads and other work on the cores, OpenMP
threads wait for each other and every trainer runs 3-5x slower and far noisier.
Prints a table and writes benchmarks/results/reward_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from rmstudio.core.data.formats import iter_records  # noqa: E402
from rmstudio.core.reward.data import TrainingPair  # noqa: E402
from rmstudio.core.reward.finetune import (  # noqa: E402
    FinetuneConfig, encode_pairs, _evaluate, encode_pair_text, load_reward_backbone, resolve_bf16,
    train_finetune,
)

HH = Path(__file__).resolve().parents[1] / "resources" / "examples" / "hh-rlhf-harmless-base-test.jsonl.gz"
RESULTS = Path(__file__).resolve().parent / "results" / "reward_speed.json"


def load_pairs(tokenizer, n_train: int, n_val: int, max_length: int):
    pairs = []
    for i, rec in enumerate(iter_records(HH)):
        if not hasattr(rec, "response_a"):
            continue
        pairs.append(TrainingPair(i, i, rec.prompt, 2 * i, rec.response_a, 2 * i + 1, rec.response_b))
        if len(pairs) >= 3 * (n_train + n_val):
            break
    prompts = [p.prompt.text for p in pairs]
    chosen = encode_pair_text(tokenizer, prompts, [p.chosen.text for p in pairs], max_length, "skip")
    rejected = encode_pair_text(tokenizer, prompts, [p.rejected.text for p in pairs], max_length, "skip")
    fitting = [p for p, c, r in zip(pairs, chosen, rejected) if c is not None and r is not None]
    if len(fitting) < n_train + n_val:
        raise SystemExit(f"only {len(fitting)} HH pairs fit max_length={max_length}")
    return fitting[:n_train], fitting[n_train:n_train + n_val]


class TimedSink:
    """Records (train seconds, val accuracy) points from train_finetune's logs."""

    def __init__(self):
        self.points, self.seconds = [], 0.0

    def log(self, step, metrics):
        if "train/seconds" in metrics:
            self.seconds = metrics["train/seconds"]
        if "val/accuracy" in metrics:
            self.points.append({"step": step, "seconds": self.seconds,
                                "val_accuracy": metrics["val/accuracy"]})

    def should_stop(self):
        return False


def with_instant_teacher(train, val):
    """The training pairs with the instant model's P(chosen better), as train_reward_model
    computes it (features of both splits, the head fitted on train, L2 picked on val)."""
    import dataclasses

    import numpy as np

    from rmstudio.core.reward.features import FeatureSpec
    from rmstudio.core.reward.instant import train_instant
    from rmstudio.core.reward.instant_model import InstantRewardModel

    model = InstantRewardModel.from_base("embedded", FeatureSpec())

    def arrays(pairs):
        f = model.extractor.extract([(p.prompt, [p.chosen, p.rejected]) for p in pairs])
        f = f.astype("<f2").astype(np.float32)
        return f[0::2], f[1::2], np.ones(len(pairs), np.float32), np.zeros(len(pairs), np.float32)

    train_arrays = arrays(train)
    fitted = train_instant(train_arrays, arrays(val))
    with torch.no_grad():
        diff = (fitted.head(torch.as_tensor(train_arrays[0])) - fitted.head(torch.as_tensor(train_arrays[1])))
    probs = torch.sigmoid(diff).numpy()
    return [dataclasses.replace(p, teacher=float(q)) for p, q in zip(train, probs)], fitted.val_metrics


def run_rmstudio(method, train, val, args, out, head_init="probe"):
    sink = TimedSink()
    config = FinetuneConfig(method=method, epochs=1, batch_size=8, max_length=args.max_length,
                            eval_every_steps=args.eval_every, save_every_steps=0, seed=0, head_init=head_init)
    start = time.perf_counter()
    teacher_seconds, teacher_val = 0.0, None
    if head_init == "probe" and config.distill_weight and args.teacher:
        # The shipped defaults distil from the instant model: its feature pass is part of the cost
        # (once per project in the app; here every time), so it counts as training time.
        train, teacher_val = with_instant_teacher(train, val)
        teacher_seconds = time.perf_counter() - start
    result = train_finetune("embedded", train, val, config, out, sink)
    for point in sink.points:
        point["seconds"] += teacher_seconds
    if head_init == "random":  # the probe run logs its step-0 accuracy itself
        model, tokenizer = load_reward_backbone("embedded", seed=0)
        val_rows, _, _ = encode_pairs(tokenizer, val, args.max_length, "truncate")
        acc = _evaluate(model, val_rows, tokenizer.pad_token_id, 16, resolve_bf16(None, "cpu"), 0.0)["accuracy"]
        sink.points.insert(0, {"step": 0, "seconds": 0.0, "val_accuracy": acc})
    return {"tokens_per_s": result["tokens_per_s"], "train_seconds": result["train_seconds"] + teacher_seconds,
            "teacher_seconds": teacher_seconds, "teacher_val_accuracy": (teacher_val or {}).get("accuracy"),
            "wall_seconds": time.perf_counter() - start, "steps": result["steps"], "curve": sink.points,
            "final_val_accuracy": result["val"].get("accuracy"),
            "settings": {"learning_rate": config.lr, "share_prompt": config.share_prompt,
                         "length_grouped": config.length_grouped, "head_init": head_init,
                         "distill_weight": config.distill_weight if teacher_seconds else 0.0,
                         "bf16": resolve_bf16(None, "cpu"), "gradient_checkpointing": False}}


def run_trl(method, train, val, args, out):
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import RewardConfig, RewardTrainer

    model, tokenizer = load_reward_backbone("embedded", seed=0)
    bf16 = resolve_bf16(None, "cpu")
    val_rows, _, _ = encode_pairs(tokenizer, val, args.max_length, "truncate")
    dataset = Dataset.from_list([{"prompt": p.prompt.text, "chosen": p.chosen.text,
                                  "rejected": p.rejected.text}
                                 for p in train])
    curve, state = [], {"start": 0.0, "eval": 0.0}

    class EvalCallback(TrainerCallback):
        def on_train_begin(self, args_, st, control, model=None, **kw):
            acc = _evaluate(model, val_rows, tokenizer.pad_token_id, 16, bf16, 0.0)["accuracy"]
            curve.append({"step": 0, "seconds": 0.0, "val_accuracy": acc})
            state["start"] = time.perf_counter()

        def on_step_end(self, args_, st, control, model=None, **kw):
            if st.global_step % args.eval_every == 0 or st.global_step == st.max_steps:
                t0 = time.perf_counter()
                trained = t0 - state["start"] - state["eval"]  # evaluation time is not training time
                acc = _evaluate(model, val_rows, tokenizer.pad_token_id, 16, bf16, 0.0)["accuracy"]
                state["eval"] += time.perf_counter() - t0
                curve.append({"step": st.global_step, "seconds": trained, "val_accuracy": acc})

    peft_config = None
    if method == "lora":
        from peft import LoraConfig, TaskType

        peft_config = LoraConfig(task_type=TaskType.SEQ_CLS, r=16, lora_alpha=32, lora_dropout=0.0,
                                 target_modules="all-linear", modules_to_save=["score"])
    # TRL's defaults, except one epoch (as ours) and what a CPU run needs to start at all.
    config = RewardConfig(output_dir=str(out), num_train_epochs=1, save_strategy="no", report_to=[],
                          logging_steps=10, seed=0, use_cpu=not torch.cuda.is_available())
    trainer = RewardTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                            peft_config=peft_config, callbacks=[EvalCallback()])
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    train_seconds = curve[-1]["seconds"] if curve else wall
    return {"tokens_per_s": trainer._total_train_tokens / train_seconds, "train_seconds": train_seconds,
            "wall_seconds": wall, "steps": trainer.state.global_step, "curve": curve,
            "final_val_accuracy": curve[-1]["val_accuracy"] if curve else None,
            "settings": {"learning_rate": config.learning_rate, "batch_size": config.per_device_train_batch_size,
                         "gradient_checkpointing": config.gradient_checkpointing, "bf16": config.bf16,
                         "max_length": config.max_length}}


def time_to(curve, target):
    for point in curve:
        if point["val_accuracy"] >= target - 1e-9:
            return point["seconds"]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=384)
    parser.add_argument("--val-pairs", type=int, default=160)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--eval-every", type=int, default=8)
    parser.add_argument("--methods", default="lora,full", help="comma list of lora,full")
    parser.add_argument("--random-head", default="lora",
                        help="methods that also run rmstudio with a random head (comma list, '' = none)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--no-teacher", dest="teacher", action="store_false",
                        help="skip the instant teacher (distillation) that rmstudio's defaults use")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON report goes")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    _, tokenizer = load_reward_backbone("embedded")
    train, val = load_pairs(tokenizer, args.pairs, args.val_pairs, args.max_length)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}",
              "torch_threads": torch.get_num_threads(), "pairs": len(train), "val_pairs": len(val),
              "max_length": args.max_length, "runs": {}}
    runners = [("rmstudio", lambda m, *a: run_rmstudio(m, *a, head_init="probe")),
               ("rmstudio-random-head", lambda m, *a: run_rmstudio(m, *a, head_init="random")),
               ("trl", run_trl)]
    methods = args.methods.split(",")
    with_random = set(filter(None, args.random_head.split(",")))

    def runs_for(method):
        return [(n, r) for n, r in runners if n != "rmstudio-random-head" or method in with_random]

    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            for name, runner in runs_for(method):
                print(f"running {name} {method} ...", flush=True)
                run = runner(method, train, val, args, Path(tmp) / f"{name}-{method}")
                report["runs"][f"{name}-{method}"] = run
                args.out.parent.mkdir(parents=True, exist_ok=True)  # partial results survive a kill
                args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
                print(f"  {run['steps']} steps, {run['train_seconds']:.0f} s, "
                      f"val accuracy {run['final_val_accuracy']:.3f}", flush=True)
    print(f"\n{'run':<28}{'steps':>6}{'tokens/s':>10}{'train s':>9}{'val acc':>9}{'t->target s':>13}")
    for method in methods:
        trl = report["runs"][f"trl-{method}"]
        target = trl["final_val_accuracy"]
        for name, _ in runs_for(method):
            run = report["runs"][f"{name}-{method}"]
            run["target_accuracy"] = target
            run["seconds_to_target"] = time_to(run["curve"], target)
            print(f"{name + '-' + method:<28}{run['steps']:>6}{run['tokens_per_s']:>10.0f}"
                  f"{run['train_seconds']:>9.1f}{run['final_val_accuracy']:>9.3f}"
                  f"{run['seconds_to_target'] if run['seconds_to_target'] is not None else float('nan'):>13.1f}")
        ours = report["runs"][f"rmstudio-{method}"]
        report[f"tokens_per_s_ratio_{method}"] = ours["tokens_per_s"] / trl["tokens_per_s"]
        reached = ours["seconds_to_target"]
        report[f"time_to_target_speedup_{method}"] = (
            trl["seconds_to_target"] / reached if reached else None)
        if trl["curve"] and target <= trl["curve"][0]["val_accuracy"]:
            print(f"{method}: TRL ended no better than its random head started "
                  f"({trl['curve'][0]['val_accuracy']:.3f}): its accuracy is not a useful target")
        print(f"{method}: tokens/s rmstudio/TRL = {report[f'tokens_per_s_ratio_{method}']:.2f}x; "
              f"TRL's final val accuracy {target:.3f} reached "
              + (f"{report[f'time_to_target_speedup_{method}']:.1f}x sooner" if reached else "never")
              + " by rmstudio")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
