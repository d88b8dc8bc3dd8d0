"""Fine-tune a reward model (LoRA or full) on preference pairs, with our own training loop.

Why not TRL's RewardTrainer: it runs chosen and rejected as two rows padded to the longest of the
batch, so the prompt they share (about 3/4 of HH tokens) is computed twice; it turns on gradient
checkpointing by default (a second forward pass per step) and orders batches at random, so short
pairs pay for long ones. This loop packs each pair into one row (prompt once, then the chosen
tail, then the rejected tail, which a 4-D attention mask hides from the chosen tail and whose
positions restart after the prompt: the rewards are exactly those of the two plain sequences),
groups rows of similar length into a batch and never recomputes activations. It logs TRL's
metric names (loss, accuracy, margin, mean_reward, num_tokens). benchmarks/reward_speed.py
measures both.

Scoring format (training, score_texts and the exported model agree on it):
    input_ids = tokenizer(prompt + response, add_special_tokens=False).input_ids
and the reward is the single logit of AutoModelForSequenceClassification, which Hugging Face
reads at the last token that is not the pad token. That is exactly how TRL's GRPOTrainer calls a
reward model (plain prompt + completion text, no special tokens), so an exported model scores
the same there. No EOS is appended: with pad == eos (SmolLM2 and many others) the classifier
would skip it anyway. An overlong pair keeps the END of the prompt and the START of the response.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rmstudio.core.models.loading import pick_device
from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.reward.averaging import WeightAverage
from rmstudio.core.reward.checkpoints import (
    best_meta, list_checkpoints, load_best, load_checkpoint, save_best, save_checkpoint,
)
from rmstudio.core.reward.finetune_config import (  # noqa: F401 (the config's names, importable from here)
    DEFAULT_LR, HEAD_INITS, METHODS, OVERLONG, FinetuneConfig, FinetuneError,
)
from rmstudio.core.reward.finetune_export import export_model, save_reward_stats  # noqa: F401
from rmstudio.core.reward.forward import (  # noqa: F401
    can_pack, head_name, pair_rewards, packing_agrees, score_texts,
)
from rmstudio.core.reward.packing import (  # noqa: F401
    encode_pair_text, encode_pairs, encode_rated, epoch_batches, shift_targets,
)
from rmstudio.core.reward.probe import fit_probe_head
from rmstudio.core.reward.finetune_faults import _diverged, _is_oom, _weights_finite, oom_message  # noqa: F401
from rmstudio.core.reward.finetune_model import (  # noqa: F401
    _model_folder, _wrap_lora, load_reward_backbone, resolve_bf16,
)
from rmstudio.core.reward.ranks import main_saves, current as current_ranks
from rmstudio.core.reward.finetune_steps import (  # noqa: F401 (_evaluate: tests and benchmarks use it)
    _evaluate, _loss_and_metrics, _rank_step, clearly_better,
)

# ---------------------------------------------------------------- training

def train_finetune(base: str, train_pairs, val_pairs, config: FinetuneConfig, out_dir,
                   sink: ProgressSink | None = None, resume: bool = False, monitor_pairs=(),
                   rating_scale: tuple[float, float] = (0.0, 1.0)) -> dict:
    """See _train_finetune. An out-of-memory anywhere (the probe, validation, the export, not only
    the steps) becomes a FinetuneError that names a smaller batch to try."""
    try:
        return _train_finetune(base, train_pairs, val_pairs, config, out_dir, sink, resume, monitor_pairs,
                               rating_scale)
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not _is_oom(exc):
            raise
        raise FinetuneError(oom_message(config)) from exc


def _train_finetune(base: str, train_pairs, val_pairs, config: FinetuneConfig, out_dir,
                    sink: ProgressSink | None = None, resume: bool = False, monitor_pairs=(),
                    rating_scale: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Train a reward model on ``train_pairs`` (TrainingPair-like), validate on ``val_pairs``.

    Logs ``train/{loss,accuracy,margin,mean_reward,num_tokens}``, ``epoch``, ``total_steps`` every
    step and ``val/{loss,accuracy,margin}`` every ``eval_every_steps`` and at the end. Polls
    ``sink.should_stop()`` between forward passes (validation's too); on cancel it saves a
    checkpoint and returns. A loss that is not finite stops the run at once with a FinetuneError
    naming the step (see _diverged): NaN weights are never saved or exported.
    ``resume=True`` continues from the latest complete checkpoint in ``out_dir/checkpoints``.
    ``monitor_pairs`` (a held-out test set) are scored at every validation and logged as
    ``test/{loss,accuracy,margin}``: a curve to watch, never used to choose anything.
    With ``config.objective == 'regression'`` the pairs are rated responses, the target is
    (rating - mean) / std for ``rating_scale = (mean, std)``, and the logs are mse/pearson;
    ``result['rating_mean']``/``['rating_std']`` map a reward back to the rating's scale.
    """
    ranks = current_ranks(cpu=config.device == "cpu")
    sink = ranks.sink(sink or NullSink())  # several processes: rank 0 logs, its cancel stops all
    out_dir = Path(out_dir)
    device = pick_device(config.device)
    if ranks.several and device != "cpu":
        device = ranks.device  # this rank's accelerator (cuda:1...)
    bf16 = resolve_bf16(config.bf16, device)
    model, tokenizer = load_reward_backbone(base, config.seed)
    train_pairs = list(train_pairs)
    distilled = bool(config.distill_weight) and any(getattr(p, "teacher", None) is not None for p in train_pairs)
    regression = config.objective == "regression"
    if regression:
        rows, truncated, skipped = encode_rated(tokenizer, train_pairs, config.max_length, config.overlong,
                                                 rating_scale)
        val_rows, _, _ = encode_rated(tokenizer, list(val_pairs), config.max_length, "truncate", rating_scale)
    else:
        rows, truncated, skipped = encode_pairs(tokenizer, train_pairs, config.max_length, config.overlong,
                                                 config.distill_weight)
        val_rows, _, _ = encode_pairs(tokenizer, list(val_pairs), config.max_length, "truncate")
    monitor_rows, _, _ = encode_pairs(tokenizer, list(monitor_pairs), config.max_length, "truncate")
    if not rows:
        raise FinetuneError(f"no training pairs left ({len(train_pairs)} given, {skipped} longer than "
                            f"max_length={config.max_length} skipped)")
    model.to(device)
    model.train()
    pad_id = tokenizer.pad_token_id
    center = config.center_rewards_coefficient or 0.0
    pack = config.share_prompt and can_pack(model) and packing_agrees(model, rows[:2], pad_id)
    resuming = resume and bool(list_checkpoints(out_dir))
    probe, probe_seconds, target_offset = None, 0.0, 0.0
    if config.head_init == "probe" and not resuming:  # a resumed run has its head in the checkpoint
        started = time.perf_counter()
        probe = fit_probe_head(model, rows, val_rows, pad_id, bf16, pack, config, sink, ranks)
        probe_seconds = time.perf_counter() - started  # counted as training time: it is part of it
        if probe is None:  # cancelled before any step: nothing to keep, a new start probes again
            return {"status": "cancelled", "steps": 0, "total_steps": 0, "train": {}, "val": {},
                    "truncated": truncated, "skipped": skipped, "model_dir": None, "checkpoint": None,
                    "tokens_per_s": 0.0, "train_seconds": probe_seconds, "probe": None}
        target_offset = probe["target_offset"]
    if config.method == "lora":
        model = _wrap_lora(model, config)  # after the probe: the head's trainable copy starts from it

    batches_per_epoch = math.ceil(len(rows) / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / total_steps))

    step, num_tokens, train_seconds = 0, 0, probe_seconds
    train_metrics: dict[str, float] = {}
    val_metrics: dict[str, float] = {}
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    # Steps after this one go into the weight average (none when average_last is 0).
    average_after = total_steps - round(total_steps * config.average_last) if config.average_last else total_steps
    average = WeightAverage()
    if resume:
        found = list_checkpoints(out_dir)
        if found:
            meta = load_checkpoint(found[-1], model, optimizer, scheduler)
            average = WeightAverage.load(found[-1])
            saved = meta["config"]
            for key in ("method", "batch_size", "grad_accum", "epochs", "seed", "max_length", "overlong"):
                if saved.get(key) != getattr(config, key):
                    raise FinetuneError(f"cannot resume from {found[-1]}: it was trained with {key}="
                                        f"{saved.get(key)!r}, this run has {getattr(config, key)!r}")
            target_offset = meta.get("target_offset", 0.0)
            step, num_tokens = meta["step"], meta["num_tokens"]
            train_seconds, train_metrics = meta.get("train_seconds", 0.0), meta.get("train", {})
            probe_seconds = meta.get("probe_seconds", 0.0)
            val_metrics = meta.get("val", {})

    rows, val_rows = shift_targets(rows, target_offset), shift_targets(val_rows, target_offset)

    def meta() -> dict:
        return {"step": step, "num_tokens": num_tokens, "train_seconds": train_seconds,
                "probe_seconds": probe_seconds, "base": base, "target_offset": target_offset,
                "config": {**asdict(config), "learning_rate": config.lr, "bf16": bf16, "device": device,
                           "share_prompt": pack},
                "train": train_metrics, "val": val_metrics, "total_steps": total_steps,
                "truncated": truncated, "skipped": skipped}

    best = (best_meta(out_dir) if resuming else None) if config.keep_best else None
    if not resuming and ranks.is_main:
        shutil.rmtree(out_dir / "best", ignore_errors=True)  # a stale best from an earlier start
    ranks.barrier()

    def note_best() -> None:
        nonlocal best
        loss = val_metrics.get("loss")
        if config.keep_best and loss is not None and not math.isnan(loss) and (
                best is None or loss < best["val"]["loss"]):
            if ranks.is_main:
                save_best(out_dir, model, step, val_metrics)
            ranks.barrier()
            best = {"step": step, "val": dict(val_metrics)}

    def watch_monitor() -> None:
        if monitor_rows:
            watched = _evaluate(model, monitor_rows, pad_id, config.batch_size * 2, bf16, center, pack,
                                should_stop=sink.should_stop, ranks=ranks)
            if watched is None:  # cancelled: the caller's next should_stop() check stops the run
                return
            sink.log(step, {f"test/{k}": v for k, v in watched.items()} | {"total_steps": total_steps})

    def validate() -> None:
        nonlocal val_metrics
        if val_rows:
            measured = _evaluate(model, val_rows, pad_id, config.batch_size * 2, bf16, center, pack,
                                 regression, should_stop=sink.should_stop, ranks=ranks)
            if measured is None:  # cancelled: the caller's next should_stop() check stops the run
                return
            val_metrics = measured
            sink.log(step, {f"val/{k}": v for k, v in val_metrics.items()} | {"total_steps": total_steps})
            note_best()
        watch_monitor()

    status = "finished"
    diverged = ("", 0)  # what stopped being finite and at which step, when status becomes 'failed'
    sink.log(step, {"total_steps": total_steps, "truncated": truncated, "skipped": skipped,
                    "message": f"Fine-tuning: {total_steps:,} steps of {config.batch_size} examples"})
    if probe is not None:
        sink.log(0, {"probe/l2": probe["l2"], "train/seconds": train_seconds, "total_steps": total_steps})
        if probe["covers_val"] and "val/accuracy" in probe:  # the probe scored every validation pair
            val_metrics = {k.removeprefix("val/"): v for k, v in probe.items() if k.startswith("val/")}
            sink.log(0, {f"val/{k}": v for k, v in val_metrics.items()} | {"total_steps": total_steps})
            note_best()
            watch_monitor()
        else:
            validate()
    try:
        while step < total_steps and status == "finished":
            epoch = step // steps_per_epoch
            batches = epoch_batches(rows, config.batch_size, config.seed, epoch, config.length_grouped, pack)
            first = (step % steps_per_epoch) * config.grad_accum
            for start in range(first, len(batches), config.grad_accum):
                group = batches[start:start + config.grad_accum]
                started = time.perf_counter()
                sums: dict[str, float] = {}
                for micro in group:
                    if sink.should_stop():
                        status = "cancelled"
                        break
                    batch = [rows[i] for i in micro]
                    if ranks.several:  # this rank's share of the pairs
                        loss, metrics, weight = _rank_step(model, ranks, batch, pad_id, bf16, pack, center,
                                                           regression)
                    else:
                        rc, rr = pair_rewards(model, batch, pad_id, bf16, pack)
                        target = torch.tensor([b[2] for b in batch], device=rc.device)
                        margin = torch.tensor([b[3] for b in batch], device=rc.device)
                        loss_target = torch.tensor([b[4] for b in batch], device=rc.device)
                        loss, metrics = _loss_and_metrics(rc, rr, target, margin, loss_target, center,
                                                          regression)
                    if not math.isfinite(metrics["loss"]):
                        # Stop before the optimizer step: one NaN gradient turns every weight NaN.
                        what = "NaN" if math.isnan(metrics["loss"]) else "infinite"
                        status, diverged = "failed", (f"the training loss became {what}", step + 1)
                        break
                    if ranks.several:
                        if loss is not None:  # weighted by this rank's share: the ranks' sum is the mean
                            (loss * weight / len(group)).backward()
                    else:
                        (loss / len(group)).backward()
                    for k, value in metrics.items():
                        sums[k] = sums.get(k, 0.0) + (0.0 if math.isnan(value) else value) / len(group)
                    # TRL's num_tokens: tokens of chosen + rejected, however we batch them
                    num_tokens += sum(len(b[0]) if regression else len(b[0]) + len(b[1]) for b in batch)
                if status != "finished":
                    optimizer.zero_grad(set_to_none=True)  # drop the half-accumulated step
                    break
                if ranks.several:
                    ranks.sum_grads(params)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if step > average_after:
                    average.update(model)
                train_seconds += time.perf_counter() - started
                train_metrics = {**sums, "num_tokens": float(num_tokens)}
                sink.log(step, {f"train/{k}": v for k, v in train_metrics.items()}
                         | {"epoch": step / steps_per_epoch, "total_steps": total_steps,
                            "train/seconds": train_seconds,
                            "train/learning_rate": scheduler.get_last_lr()[0]})
                if config.eval_every_steps and step % config.eval_every_steps == 0 and step < total_steps:
                    validate()
                if config.save_every_steps and step % config.save_every_steps == 0 and step < total_steps:
                    if not _weights_finite(model):  # a finite loss, then an update that overflowed
                        status, diverged = "failed", ("the weights became NaN or infinite", step)
                        break
                    main_saves(ranks, save_checkpoint, out_dir, model, optimizer, scheduler, meta(), average)
                if sink.should_stop():
                    status = "cancelled"
                    break
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if _is_oom(exc):
            raise FinetuneError(oom_message(config, f" at step {step + 1}")) from exc
        raise FinetuneError(f"training failed at step {step + 1}: {exc}") from exc

    mean, std = rating_scale
    result = {"status": status, "steps": step, "total_steps": total_steps, "train": train_metrics,
              "distilled": distilled, "objective": config.objective,
              # reward = (rating - mean) / std + offset, so rating = (reward - offset) * std + mean
              **({"rating_mean": mean - target_offset * std, "rating_std": std} if regression else {}),
              "val": val_metrics, "truncated": truncated, "skipped": skipped, "model_dir": None,
              "checkpoint": None, "tokens_per_s": num_tokens / stepping if (stepping := train_seconds - probe_seconds) > 0 else 0.0,
              "train_seconds": train_seconds, "probe": probe, "processes": ranks.world}
    if status == "failed":
        raise _diverged(model, tokenizer, base, config, result, rows, out_dir, pack, bf16, best, diverged[1],
                        diverged[0], ranks)
    if status == "cancelled":
        result["checkpoint"] = str(main_saves(ranks, save_checkpoint, out_dir, model, optimizer, scheduler,
                                               meta(), average))
        return result
    if not _weights_finite(model):  # the last update overflowed: its loss was never computed
        raise _diverged(model, tokenizer, base, config, result, rows, out_dir, pack, bf16, best, step,
                        "the weights became NaN or infinite", ranks)
    if average.count:  # the candidate export is the average: validation judges it, not the last step
        average.copy_into(model)
        result["averaged_steps"] = average.count
        sink.log(step, {"averaged_steps": average.count, "total_steps": total_steps})
    validate()
    if sink.should_stop():  # cancelled in the last validation: keep a checkpoint, resume finishes
        result["status"] = "cancelled"
        result["checkpoint"] = str(main_saves(ranks, save_checkpoint, out_dir, model, optimizer, scheduler,
                                               meta(), average))
        return result
    result["last_val"] = val_metrics
    result["best_step"] = step
    if best is not None and best["step"] != step and clearly_better(best["val"], val_metrics):
        load_best(out_dir, model)  # the export (and its reward statistics) use the best weights
        val_metrics = best["val"]
        result["best_step"] = best["step"]
        sink.log(step, {"best_step": best["step"], "total_steps": total_steps})
    result["val"] = val_metrics
    result["model_dir"] = str(main_saves(ranks, export_model, model, tokenizer, base, config, result, rows,
                                          out_dir, pack, bf16))
    if ranks.is_main:
        shutil.rmtree(out_dir / "best", ignore_errors=True)  # it is the export now (a full copy is big)
    return result
