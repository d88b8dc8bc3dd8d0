"""Export of a fine-tuned reward model: a plain Hugging Face folder (LoRA merged) with its
tokenizer, reward statistics in config.json and a model card holding its metrics."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch

from rmstudio.core.reward.checkpoints import written_atomically
from rmstudio.core.reward.finetune_config import FinetuneConfig
from rmstudio.core.reward.forward import pair_rewards

_STATS_KEY = "rmstudio"


def save_reward_stats(model_dir, mean: float, std: float, **extra: float) -> None:
    """Store the training rewards' mean/std in config.json under 'rmstudio' (normalise: (r - mean) / std),
    with ``extra`` statistics (a regression's rating_mean/rating_std)."""
    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.setdefault(_STATS_KEY, {}).update({"reward_mean": float(mean), "reward_std": float(std),
                                             **{k: float(v) for k, v in extra.items()}})
    temp = path.with_suffix(".json.tmp")
    temp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temp, path)


def _model_card(base: str, config: FinetuneConfig, result: dict) -> str:
    def table(metrics):
        lines = [f"| {k} | {v:.4f} |" for k, v in metrics.items() if isinstance(v, float)]
        return "\n".join(lines) or "| - | - |"

    return f"""---
library_name: transformers
tags: [reward-model, rmstudio]
---
# Reward model trained with rmstudio

Base model: `{base}`; method: {config.method}; steps: {result['steps']}{_best_note(result)}; pairs truncated:
{result['truncated']}, skipped: {result['skipped']}.{_distill_note(result, config)}{_average_note(result)}{_regression_note(result)}

## How to score

A single-logit `AutoModelForSequenceClassification` (num_labels=1). Format exactly as in training:

```python
ids = tokenizer(prompt + response, add_special_tokens=False).input_ids
reward = model(torch.tensor([ids])).logits[0, 0]
```

Prompt and response are concatenated as plain text: no chat template, no special tokens, no
EOS (as TRL's GRPOTrainer passes prompt + completion to a reward model, so this directory works
as `reward_funcs="path/to/model"`). The reward is read at the last token that is not the pad
token. Longer inputs ({config.max_length} tokens in training) keep
the end of the prompt and the start of the response. `config.json` → `rmstudio.reward_mean` /
`reward_std` hold the training rewards' statistics, to normalise scores: `(r - mean) / std`.

## Validation (the exported weights)

| metric | value |
|---|---|
{table(result['val'])}

## Training (last step)

| metric | value |
|---|---|
{table(result['train'])}

## Configuration

```json
{json.dumps(asdict(config), indent=2)}
```
"""


def _average_note(result: dict) -> str:
    steps = result.get("averaged_steps")
    if not steps or result.get("best_step") != result["steps"]:
        return ""
    return f" The weights are the mean of the last {steps} steps' weights (weight averaging)."


def _regression_note(result: dict) -> str:
    if result.get("objective") != "regression":
        return ""
    return (f" Trained by regression (MSE) on ratings: the reward predicts the rating, "
            f"rating ≈ reward × {result['rating_std']:.4f} + {result['rating_mean']:.4f} "
            "(also in `config.json` → `rmstudio.rating_mean` / `rating_std`).")


def _distill_note(result: dict, config: FinetuneConfig) -> str:
    if not result.get("distilled"):
        return ""
    return (f" Training targets were distilled from rmstudio's instant reward model: "
            f"{1 - config.distill_weight:g} × label + {config.distill_weight:g} × its probability.")


def _best_note(result: dict) -> str:
    best = result.get("best_step")
    if result.get("error"):  # a diverged run exports its best validation, whatever the last step was
        return f" (the weights are step {best}'s, the best validation before {result['error']})"
    if best is None or best == result["steps"]:
        return ""
    return (f" (the weights are step {best}'s: its validation loss beat the last step's by more than "
            "one standard error"
            f"{'; step 0 is the probed head before any step' if best == 0 else ''})")


def export_model(model, tokenizer, base, config, result, rows, out_dir: Path, pack: bool, bf16: bool) -> Path:
    """Merge LoRA, write out_dir/model (atomically) with tokenizer, reward stats and a model card."""
    # Reward statistics over (up to 256) training pairs, spread over the data (rows are in input
    # order), computed prompt-once and in the training precision: bf16 moves a mean or a spread
    # by far less than it matters, and float32 is 3-6x slower on CPU.
    sample = rows[::max(1, len(rows) // 256)][:256]
    rewards = []
    model.eval()
    with torch.no_grad():
        for k in range(0, len(sample), 16):
            chosen, rejected = pair_rewards(model, sample[k:k + 16], tokenizer.pad_token_id, bf16, pack)
            rewards += [chosen.cpu(), rejected.cpu()]
    rewards = torch.cat(rewards) if rewards else torch.zeros(1)
    merged = model.merge_and_unload() if config.method == "lora" else model
    merged.config.pad_token_id = tokenizer.pad_token_id
    merged.config.num_labels = 1
    target = out_dir / "model"
    out_dir.mkdir(parents=True, exist_ok=True)
    with written_atomically(target, prefix=".tmp-model-") as temp:
        merged.save_pretrained(temp, safe_serialization=True)
        tokenizer.save_pretrained(temp)
        save_reward_stats(temp, rewards.mean().item(), rewards.std().item() if rewards.numel() > 1 else 1.0,
                          **({k: result[k] for k in ("rating_mean", "rating_std")} if "rating_mean" in result else {}))
        (temp / "README.md").write_text(_model_card(base, config, {**result, "model_dir": str(target)}),
                                        encoding="utf-8")
    return target
