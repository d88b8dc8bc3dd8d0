"""The model a fine-tune starts from: the base as a one-logit classifier, LoRA around it, and
whether to train it in bf16."""

from __future__ import annotations

from pathlib import Path

import torch

from rmstudio.core.models.loading import ModelError, ModelSource, ensure_embedded_cache
from rmstudio.core.reward.finetune_config import FinetuneConfig
from rmstudio.core.reward.forward import head_name


def resolve_bf16(setting: bool | None, device: str) -> bool:
    """bf16 autocast where it is fast: CUDA with bf16 support, CPUs with AMX or AVX512-BF16."""
    if setting is not None:
        return bool(setting)
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text(errors="ignore")
        except OSError:
            return False
        return any(f in flags.split() for f in ("amx_bf16", "avx512_bf16"))
    return False


def _model_folder(base: str) -> str:
    source = ModelSource.parse(base)
    if source.kind == "embedded":
        return str(ensure_embedded_cache())
    if source.kind == "gguf":
        raise ModelError("fine-tuning needs a Hugging Face model directory or 'embedded', not a GGUF file")
    return source.location


def load_reward_backbone(base: str, seed: int = 0):
    """AutoModelForSequenceClassification(num_labels=1) + tokenizer (right padding, pad = eos if missing)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = _model_folder(base)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        torch.manual_seed(seed)  # the new score head is initialised from this
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, dtype=torch.float32)
    except Exception as exc:
        raise ModelError(f"could not load {base!r} as a reward model: {exc}") from exc
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(f"the tokenizer of {base!r} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        tokenizer.eos_token = tokenizer.pad_token
    tokenizer.padding_side = "right"
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _wrap_lora(model, config: FinetuneConfig):
    from peft import LoraConfig, TaskType, get_peft_model

    head = head_name(model)
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=config.lora_target_modules,
                      exclude_modules=[head], modules_to_save=[head])
    return get_peft_model(model, lora)
