"""Helpers of the policy tests: a tiny policy whose sampling a LoRA can steer, and rewards it can learn.

``tiny_models.tiny_llama`` is initialised with std 0.02: its next-token distribution is almost
uniform, and a LoRA cannot move it (RMSNorm fixes the hidden norm, the output layer is frozen),
so no reward is learnable in a few dozen steps. A wider initialisation (``initializer_range``)
gives peaked logits that the adapter can shift.
"""

from __future__ import annotations

from pathlib import Path


def save_policy_model(directory: str | Path, seed: int = 0, init: float = 0.3) -> Path:
    """A 2-layer, 32-wide random Llama with peaked logits, and the tiny tokenizer, saved."""
    import torch
    from tiny_models import tiny_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    tokenizer.padding_side = "left"
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None, initializer_range=init)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def even_share(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
    """A learnable synthetic reward: the share of a completion's tokens whose id is even."""
    return [sum(1 for t in ids if t % 2 == 0) / max(1, len(ids)) for ids in completion_ids]


def odd_share(prompts, completions, completion_ids=None, **kwargs) -> list[float]:
    """A check reward that falls exactly as ``even_share`` rises: a constructed over-optimisation."""
    return [1.0 - r for r in even_share(prompts, completions, completion_ids)]


GRPO = dict(method="grpo", reward="policy_helpers:even_share", lora_rank=8, lora_alpha=16,
            num_generations=4, per_device_batch=16, max_completion_length=8, device="cpu")
"""GRPO settings of the tests: a small LoRA, groups of 4, 8-token completions on the CPU."""


def run(project_path, config, recorder=None):
    """Run the policy kind in this process: (result, metrics, policy runs, artifacts of this run)."""
    from rmstudio.core.policy.kind import POLICY
    from rmstudio.core.runs.launch import run_in_process
    from rmstudio.core.runs.recorder import ProjectRecorder
    from rmstudio.core.runs.store import list_runs, run_artifacts, run_metrics

    recorder = recorder or ProjectRecorder(project_path)
    try:
        result = run_in_process(POLICY, project_path, config, recorder)
        return (result, run_metrics(recorder.project, recorder.run_id), list_runs(recorder.project, "policy"),
                run_artifacts(recorder.project, recorder.run_id))
    finally:
        recorder.close()
