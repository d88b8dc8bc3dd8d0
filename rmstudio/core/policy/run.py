"""The policy run kind's work: build TRL's GRPO, RLOO or DPO trainer and record the run.

    run_policy(project_path, PolicyConfig(method="grpo", reward="<project>.runs/run-3/model"), recorder)

Everything is written through the recorder (curves by ``RecorderCallback``, files as artifacts)
and into the run's folder next to the project (``<project>.runs/run-N/``):

- ``checkpoints/checkpoint-S/``: TRL checkpoints every ``save_steps``; a resumed run
  (``resume=True``) continues from the last one, in the same folder and the same run;
- ``model/``: the tuned policy at the end (a LoRA adapter, or the whole model), with
  ``policy.json`` next to it saying what it was tuned from (``export.export_policy`` merges it);
- ``held_out.jsonl``: the prompts never trained on; ``result.json``: the final metrics.

Precision: float32 on the CPU (bf16 there is emulated on most CPUs, and slower), bf16 on a
CUDA card that supports it. With LoRA the reference model of the KL term is the base with the
adapter switched off (TRL does this itself), so no second model is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from transformers import TrainerCallback

from rmstudio.core.errors import RmstudioError
from rmstudio.core.policy import data
from rmstudio.core.policy.auto_check import AUTO, fit_auto_check, unseen_pairs
from rmstudio.core.policy.config import ONLINE, PolicyConfig
from rmstudio.core.policy.live_reward import check_live_reward, reward_for_run
from rmstudio.core.runs.hf_callback import RecorderCallback, recorded_logs
from rmstudio.core.runs.recorder import RunRecorder
from rmstudio.core.store.project import Project

CLIPPED_WINDOW = 5
"""How many recent logs the length warning averages ``completions/clipped_ratio`` over."""
CLIPPED_LIMIT = 0.5
"""Above this share of completions cut at ``max_completion_length``, the run warns."""
LENGTH_WARNING = ("most answers are cut at the length limit (max_completion_length), so their rewards "
                  "judge unfinished text and the run learns little: allow longer answers, or reward "
                  "answers that end in time")
POLICY_FILE = "policy.json"


def runs_dir(project_path: str | Path) -> Path:
    """Where run folders live (as reward training's ``runs_dir``: ``<project>.runs``)."""
    path = Path(project_path)
    return path.with_name(path.stem + ".runs")


class NothingToTrainOn(RmstudioError):
    pass


# -- before a run --------------------------------------------------------------------------

def check_can_run(project_path: str | Path, config: PolicyConfig) -> None:
    """Refuse at once (before a run is recorded): no prompts or pairs, a bad reward or policy."""
    from rmstudio.core.models.loading import ModelSource
    from rmstudio.core.policy.rewards import check_reward

    source = ModelSource.parse(config.policy)
    if source.kind == "gguf" and not config.lora and config.beta > 0:
        # TRL builds the reference of a full fine-tune from the policy's folder, which a .gguf
        # file is not; with LoRA the reference is the base with the adapter off.
        raise RmstudioError("full fine-tuning of a .gguf policy cannot keep a reference model: "
                            "use lora, beta 0, or a model folder")
    live = config.method in ONLINE and check_live_reward(project_path, config.reward)
    if config.method in ONLINE and not live:
        check_reward(config.reward)
    if config.method in ONLINE and config.check_reward.strip() not in ("", AUTO):
        check_reward(config.check_reward)
    with Project.open(project_path) as project:
        _, held = _training_items(project, config)
        if config.method in ONLINE and config.check_reward.strip() == AUTO and not live:
            unseen_pairs(project, config.reward)  # enough labels the reward never saw, or say so now
    if (config.guard_every or config.best_of_n) and not held:
        raise NothingToTrainOn("the guard and best-of-n sample held-out prompts, and none is held out: "
                               "raise held_out_fraction or add prompts")


def resumed_run(project_path: str | Path, config: PolicyConfig) -> int | None:
    """The run ``resume=True`` continues: the latest policy run that did not finish."""
    if not config.resume:
        return None
    with Project.open(project_path) as project:
        row = project.conn.execute(
            "SELECT id, config FROM runs WHERE kind = 'policy' AND status NOT IN ('finished', 'running') "
            "ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        raise RmstudioError("there is no cancelled, failed or interrupted policy run to resume")
    before = json.loads(row[1])
    for name in ("method", "lora"):  # a checkpoint of another kind cannot be loaded
        if before.get(name, getattr(config, name)) != getattr(config, name):
            raise RmstudioError(f"run {row[0]}, the one to resume, has {name} {before[name]!r}, "
                                f"not {getattr(config, name)!r}")
    return row[0]


def _training_items(project: Project, config: PolicyConfig) -> tuple[list, list]:
    """(train, held_out): prompts for GRPO/RLOO, preference pairs for DPO."""
    if config.method in ONLINE:
        train, held = data.split_prompts(data.read_prompts(project), config.held_out_fraction, config.seed)
        if not train:
            raise NothingToTrainOn("there are no prompts to train on: import prompts first"
                                   + (" (all are held out)" if held else ""))
    else:
        train, held = data.split_pairs(data.preference_pairs(project), config.held_out_fraction, config.seed)
        if not train:
            raise NothingToTrainOn("there are no labeled pairs to train DPO on: label some pairs a or b "
                                   "first (ties, both-bad and skips do not train)")
    return train, held


# -- the run -------------------------------------------------------------------------------

class LengthWatch(TrainerCallback):
    """Warns when most recent completions were cut at the length limit: ``policy/clipped_recent``
    (the share over the last few logs) and ``policy/length_warning`` (1 while it is above
    ``CLIPPED_LIMIT``) are curves; ``warning`` is the text a window shows."""

    def __init__(self, recorder: RunRecorder):
        self.recorder = recorder
        self.recent: list[float] = []
        self.warned = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        ratio = (logs or {}).get("completions/clipped_ratio")
        if ratio is None:
            return
        self.recent = (self.recent + [float(ratio)])[-CLIPPED_WINDOW:]
        share = sum(self.recent) / len(self.recent)
        warn = share > CLIPPED_LIMIT
        self.warned = self.warned or warn
        metrics = {"policy/clipped_recent": share, "policy/length_warning": float(warn)}
        self.recorder.log(state.global_step, {**metrics, **({"warning": LENGTH_WARNING} if warn else {})})


def _quiet(trainer) -> None:
    """No progress printing: a child process's stdout carries its events (StreamRecorder)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)


def _precision(config: PolicyConfig):
    """(device, dtype, bf16): float32 on the CPU. On a CUDA card with fast bf16 the Trainer
    computes in bf16; a LoRA's frozen base is also stored in bf16 (half the memory), while a
    full fine-tune keeps float32 weights (AdamW steps on bf16 weights lose small updates)."""
    import torch

    from rmstudio.core.models.loading import fast_bf16, pick_device

    device = pick_device(None if config.device == "auto" else config.device)
    bf16 = device.startswith("cuda") and fast_bf16(device)
    return device, torch.bfloat16 if bf16 and config.lora else torch.float32, bf16


def _trainer_args(config: PolicyConfig, out: Path, device: str, bf16: bool) -> dict:
    return dict(output_dir=str(out), per_device_train_batch_size=config.per_device_batch,
                learning_rate=config.learning_rate, max_steps=config.max_steps,
                logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
                save_total_limit=2,
                report_to=[], seed=config.seed, data_seed=config.seed, use_cpu=device == "cpu",
                bf16=bf16, activation_checkpointing=False, disable_tqdm=True,
                dataloader_num_workers=0, beta=config.beta)


def _all_too_long(config: PolicyConfig) -> NothingToTrainOn:
    return NothingToTrainOn(f"every prompt is longer than max_prompt_length "
                            f"({config.max_prompt_length} tokens)")


def build_trainer(config: PolicyConfig, model, tokenizer, train_items: list, held_items: list,
                  out: Path, callbacks: list, device: str, bf16: bool):
    """The TRL trainer of ``config.method`` on the items that fit ``max_prompt_length``; also
    returns how many items were left out for being too long."""
    from datasets import Dataset

    conversational = tokenizer.chat_template is not None
    peft_config = None
    if config.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha,
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    settings = _trainer_args(config, out, device, bf16)
    if config.method in ONLINE:
        from rmstudio.core.policy.rewards import reward_function

        rows = data.prompt_rows(train_items, conversational)
        kept, rows = data.within_length(train_items, rows, tokenizer, config.max_prompt_length)
        if not kept:
            raise _all_too_long(config)
        settings.update(num_generations=config.num_generations, temperature=config.temperature,
                        max_completion_length=config.max_completion_length)
        if config.method == "grpo":
            from trl import GRPOConfig as Args, GRPOTrainer as Trainer
        else:
            from trl import RLOOConfig as Args, RLOOTrainer as Trainer
        trainer = Trainer(model=model, reward_funcs=reward_function(config.reward, device),
                          args=Args(**settings), train_dataset=Dataset.from_dict({"prompt": rows}),
                          processing_class=tokenizer, callbacks=callbacks, peft_config=peft_config)
        return trainer, len(train_items) - len(kept)

    from trl import DPOConfig, DPOTrainer

    def fitting(items):
        rows = data.dpo_rows(items, conversational)
        kept, _ = data.within_length(list(range(len(items))), rows["prompt"], tokenizer,
                                     config.max_prompt_length)
        return {k: [v[i] for i in kept] for k, v in rows.items()}, len(items) - len(kept)

    train_rows, dropped = fitting(train_items)
    if not train_rows["prompt"]:
        raise _all_too_long(config)
    held_rows, _ = fitting(held_items)
    settings.update(max_length=config.max_prompt_length + config.max_completion_length,
                    per_device_eval_batch_size=config.per_device_batch)
    trainer = DPOTrainer(model=model, args=DPOConfig(**settings), train_dataset=Dataset.from_dict(train_rows),
                         eval_dataset=Dataset.from_dict(held_rows) if held_rows["prompt"] else None,
                         processing_class=tokenizer, callbacks=callbacks, peft_config=peft_config)
    return trainer, dropped


class _Checks:
    """The guard and best-of-n of one run (``guard``, ``best_of_n``): none unless the config
    asks. Both sample the same held-out prompts (``GUARD_PROMPTS`` at most, chosen by the seed)."""

    def __init__(self, config: PolicyConfig, held: list, tokenizer, out_dir: Path, recorder: RunRecorder,
                 device: str, dtype):
        from rmstudio.core.policy.guard import GUARD_PROMPTS, GuardCallback, choose_prompts

        self.config, self.guard, self.trainer, self._start = config, None, None, None
        self.device, self.dtype, self.recorder = device, dtype, recorder
        self.conversational = tokenizer.chat_template is not None
        self.rows, self.check_fn = [], None
        self.callbacks: list = []
        if config.method not in ONLINE or not (config.guard_every or config.best_of_n):
            return
        rows = data.prompt_rows(held, self.conversational)
        held, rows = data.within_length(held, rows, tokenizer, config.max_prompt_length)
        chosen = {p.prompt_id for p in choose_prompts(held, GUARD_PROMPTS, config.seed)}
        self.rows = [row for p, row in zip(held, rows) if p.prompt_id in chosen]
        if not self.rows:
            raise NothingToTrainOn(f"every held-out prompt is longer than max_prompt_length "
                                   f"({config.max_prompt_length} tokens): the guard has none to sample")
        if config.check_reward.strip():
            from rmstudio.core.policy.rewards import reward_function

            self.check_fn = reward_function(config.check_reward, device)
        if config.guard_every:
            self.guard = GuardCallback(recorder, config, self.rows, self.conversational, out_dir,
                                       self.check_fn, self.load_start)
            self.callbacks.append(self.guard)

    def load_start(self):
        """The start model of a full fine-tune TRL keeps no reference of (beta 0), loaded once."""
        if self._start is None:
            from rmstudio.core.models.loading import load_causal_lm

            self._start = load_causal_lm(self.config.policy, device=self.device, dtype=self.dtype)[0]
        return self._start

    def attach(self, trainer) -> None:
        self.trainer = trainer
        if self.guard is not None:
            self.guard.attach(trainer)

    def summary(self) -> dict:
        return {"guard": self.guard.summary()} if self.guard is not None else {}

    def finish(self, trainer) -> dict:
        """The guard's summary and, when asked, best-of-n of the start policy."""
        from rmstudio.core.policy.best_of_n import best_of_n
        from rmstudio.core.policy.sampling import start_policy

        out = self.summary()
        if self.config.best_of_n:
            self.recorder.log(trainer.state.global_step, {"stage": "best_of_n"})
            config = self.config
            with start_policy(trainer.model, getattr(trainer, "ref_model", None), self.load_start) as start:
                out["best_of_n"] = best_of_n(
                    start, trainer.processing_class, self.rows, trainer.reward_funcs[0], self.check_fn,
                    max_new_tokens=config.max_completion_length, temperature=config.temperature,
                    seed=config.seed, conversational=self.conversational)
        return out


def run_policy(project_path: str | Path, config: PolicyConfig, recorder: RunRecorder) -> dict:
    """The policy run kind's work (the launcher has begun or resumed the run on ``recorder``)."""
    from transformers.trainer_utils import get_last_checkpoint

    from rmstudio.core.models.loading import ModelSource, load_causal_lm

    with Project.open(project_path) as project:
        train, held = _training_items(project, config)
    out_dir = runs_dir(project_path) / f"run-{recorder.run_id}"
    checkpoints = out_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "held_out.jsonl", "w", encoding="utf-8") as f:
        for item in held:
            row = {"prompt_id": item.prompt_id, "prompt": item.prompt.text}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    source = ModelSource.parse(config.policy)  # a folder or file by its full path: exports find it
    (out_dir / POLICY_FILE).write_text(json.dumps(
        {"base": source.location or config.policy, "lora": config.lora, "method": config.method}, indent=1))
    recorder.log(0, {"stage": "load", "train_items": len(train), "held_out_items": len(held)})

    device, dtype, bf16 = _precision(config)
    auto_check = None
    snapshot = reward_for_run(project_path, config.reward, config.policy, out_dir, device)
    if config.method in ONLINE and snapshot:  # the live model, frozen into the run folder
        config = dataclasses.replace(config, reward=snapshot)
    if config.method in ONLINE and config.check_reward.strip() == AUTO:
        message = "Fitting a check reward on labels the reward did not see…"
        recorder.log(0, {"stage": "check", "message": message})
        folder, auto_check = fit_auto_check(project_path, config.reward, config.policy, out_dir, device)
        config = dataclasses.replace(config, check_reward=folder)
    model, tokenizer = load_causal_lm(config.policy, device=device, dtype=dtype)
    callback, watch = RecorderCallback(recorder), LengthWatch(recorder)
    checks = _Checks(config, held, tokenizer, out_dir, recorder, device, dtype)
    trainer, too_long = build_trainer(config, model, tokenizer, train, held, checkpoints,
                                      [callback, watch] + checks.callbacks, device, bf16)
    checks.attach(trainer)
    if config.method in ONLINE:  # a few scored answers every few steps, for the window's table
        from rmstudio.core.policy.rewards import SampleTap

        trainer.reward_funcs[0] = SampleTap(trainer.reward_funcs[0], recorder, trainer)
    _quiet(trainer)
    resume_from = get_last_checkpoint(str(checkpoints)) if config.resume else None
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    status = "cancelled" if callback.stopped else "finished"

    last = get_last_checkpoint(str(checkpoints))
    if last:
        recorder.artifact("checkpoint", last, {"step": int(Path(last).name.rpartition("-")[2])})
    model_dir = ""
    if status == "finished":
        if config.method == "dpo" and trainer.eval_dataset is not None:
            recorder.log(trainer.state.global_step, {"stage": "evaluate"})
            trainer.evaluate()  # val/rewards/accuracies... through the callback
        model_dir = str(out_dir / "model")
        trainer.save_model(model_dir)
        tokenizer.save_pretrained(model_dir)
        recorder.artifact("model", model_dir, {"method": config.method, "lora": config.lora})

    extra = checks.finish(trainer) if status == "finished" else checks.summary()
    metrics: dict[str, float] = {}
    for entry in trainer.state.log_history:
        metrics.update(recorded_logs(entry))
    metrics.update(checks.guard.metrics if checks.guard is not None else {})
    warnings = [w for w in (LENGTH_WARNING if watch.warned else "", extra.get("guard", {}).get("message"))
                if w]
    result = {"status": status, "method": config.method, "run_id": recorder.run_id,
              "steps": trainer.state.global_step, "total_steps": config.max_steps,
              "resumed_from": resume_from, "checkpoint": last, "model_dir": model_dir,
              "train_items": len(train), "held_out_items": len(held), "too_long": too_long,
              "warning": "; ".join(warnings), "metrics": metrics, **extra,
              "reward": config.reward, **({"auto_check": auto_check} if auto_check else {}),
              "seconds": time.perf_counter() - started}
    (out_dir / "result.json").write_text(json.dumps(result, indent=1, default=str))
    recorder.artifact("evaluation", out_dir / "result.json")
    return result
