"""A policy run's model as a plain Hugging Face folder (LoRA merged), with a short model card.

    export_policy("<project>.runs/run-7", "tuned-policy")

The result loads with ``AutoModelForCausalLM.from_pretrained`` and needs neither rmstudio nor
PEFT. ``step="last"`` (the default) takes the run's final model (``model/``), or for a run that
did not finish its last checkpoint; ``step="best"`` takes the policy the over-optimisation guard
kept for its best check reward (``guard_best/``, see ``guard``), which is the one to ship when
the check fell late in the run.
"""

from __future__ import annotations

import json
from pathlib import Path

from rmstudio.core.errors import RmstudioError
from rmstudio.core.policy.run import POLICY_FILE

CARD_METRICS = ("train/reward", "train/kl", "train/loss", "completions/mean_length",
                "completions/clipped_ratio", "rewards/accuracies", "rewards/margins",
                "val/rewards/accuracies", "val/rewards/margins")
"""The final metrics a model card shows first (any others follow)."""


class PolicyExportError(RmstudioError):
    pass


STEPS = ("best", "last")


def _source(run_folder: Path, step: str = "last") -> Path:
    if step not in STEPS:
        raise PolicyExportError(f"step must be 'best' or 'last', got {step!r}")
    if step == "best":
        from rmstudio.core.policy.guard import BEST_DIR

        best = run_folder / BEST_DIR
        if not best.is_dir():
            raise PolicyExportError(f"{run_folder} has no best step: the guard did not run "
                                    "(set check_reward and guard_every), export step 'last'")
        return best
    model = run_folder / "model"
    if (model / "adapter_config.json").is_file() or (model / "config.json").is_file():
        return model
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = run_folder / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if last is None:
        raise PolicyExportError(f"{run_folder} holds no policy: neither model/ nor a checkpoint")
    return Path(last)


def _base_of(run_folder: Path, source: Path) -> str:
    """What the policy was tuned from: the run's own record, else the adapter's."""
    record = run_folder / POLICY_FILE
    if record.is_file():
        return json.loads(record.read_text())["base"]
    config = source / "adapter_config.json"
    if config.is_file():
        return json.loads(config.read_text())["base_model_name_or_path"]
    raise PolicyExportError(f"cannot tell what {source} was tuned from (no {POLICY_FILE} in {run_folder})")


def _guard_lines(source: Path, result: dict) -> list[str]:
    """What the guard saw: the exported step's check reward, the best step, the divergence."""
    from rmstudio.core.policy.guard import BEST_FILE

    guard = result.get("guard") or {}
    lines = []
    if (source / BEST_FILE).is_file():
        point = json.loads((source / BEST_FILE).read_text())
        lines.append(f"- Exported the guard's best step, {point['step']} (check reward {point['check']:.4g}, "
                     f"KL to the start {point['kl']:.4g} nats)")
    if guard.get("best_step") is not None:
        lines.append(f"- Over-optimisation guard: best check reward at step {guard['best_step']}"
                     + (f"; {guard['message']}" if guard.get("message") else ""))
    return lines


def model_card(run_folder: Path, source: Path, base: str, result: dict) -> str:
    metrics = result.get("metrics") or {}
    ordered = [k for k in CARD_METRICS if k in metrics] + sorted(k for k in metrics if k not in CARD_METRICS)
    lines = [f"# Policy tuned with rmstudio ({result.get('method', '?')})", "",
             f"- Tuned from: `{base}`",
             f"- Method: {result.get('method', '?')}, {result.get('steps', '?')} steps "
             f"({result.get('status', 'unfinished')})",
             f"- Run folder: `{run_folder}`; exported from `{source.name}`",
             *_guard_lines(source, result), "",
             "## Final metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {metrics[k]:.6g} |" for k in ordered]
    if result.get("warning"):
        lines += ["", f"Warning: {result['warning']}"]
    return "\n".join(lines) + "\n"


def export_policy(run_folder: str | Path, out_dir: str | Path, step: str = "last") -> Path:
    """Write the run's policy (``step``: 'last' or the guard's 'best') to ``out_dir`` (merged,
    safetensors) with its tokenizer and README.md."""
    import torch

    from rmstudio.core.models.loading import load_causal_lm

    run_folder, out_dir = Path(run_folder), Path(out_dir)
    source = _source(run_folder, step)
    if (source / "adapter_config.json").is_file():
        from peft import PeftModel

        base = _base_of(run_folder, source)
        model, tokenizer = load_causal_lm(base, device="cpu", dtype=torch.float32)
        model = PeftModel.from_pretrained(model, str(source)).merge_and_unload()
    else:
        base = _base_of(run_folder, source) if (run_folder / POLICY_FILE).is_file() else str(source)
        model, tokenizer = load_causal_lm(str(source), device="cpu", dtype=torch.float32)
    if (source / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(source))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    result_file = run_folder / "result.json"
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    (out_dir / "README.md").write_text(model_card(run_folder, source, base, result), encoding="utf-8")
    return out_dir
