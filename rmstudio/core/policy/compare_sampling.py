"""The two policies of a before/after comparison, loaded and sampled in batches.

One response per prompt per policy. Prompts are sampled ``COMPARE_BATCH`` at a time, left padded
(``generation._Sampler``, the app's one sampler), shortest first so a batch pads little: the
forward passes of a batch cost about what one prompt's cost on a CPU, so 16 prompts take a
fraction of the time one by one took (benchmarks/compare_batching.py measures it). Both policies
sample the same batches with the same seed (derived from the seed and the batch's prompt texts),
so the two differ by the tuning and not by the luck of the draw. The price of batching: a
prompt's answer depends on the batch it was drawn in, so the same prompts and seed give the same
answers, but a subset of them (fewer prompts) does not give the same answers to that subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rmstudio.core.data.records import Text
from rmstudio.core.models.generation import GenerationConfig
from rmstudio.core.progress import ProgressSink

COMPARE_BATCH = 16
"""Prompts generated together: a batch runs until its longest answer ends, so more is not
always faster; 16 is the guard's and the UI's default count, one batch."""


def load_policies(folder: Path, device: str):
    """(start model, tuned model, tokenizer, the folder the tuned policy came from). A LoRA run
    loads the base once and returns it twice: the start is the same model with its adapter
    switched off (``disable_adapter``), half the memory of two copies. Both policies share the
    base's tokenizer, so a prompt is the same token ids for both."""
    import torch

    from rmstudio.core.models.loading import load_causal_lm
    from rmstudio.core.policy.export import _base_of, _source  # the export's idea of "the run's policy"

    source = _source(folder)
    base = _base_of(folder, source)
    start, tokenizer = load_causal_lm(base, device=device, dtype=torch.float32)
    start.eval()
    if (source / "adapter_config.json").is_file():
        from peft import PeftModel

        tuned = PeftModel.from_pretrained(start, str(source)).eval()
        return tuned, tuned, tokenizer, source
    tuned, _ = load_causal_lm(str(source), device=device, dtype=torch.float32)
    return start, tuned.eval(), tokenizer, source


def sample_responses(model, tokenizer, prompts: Sequence[tuple[int | None, Text]], sampling: GenerationConfig,
                     adapter_off: bool, sink: ProgressSink, done: int, total: int,
                     batch: int = COMPARE_BATCH) -> list[str]:
    """One response per prompt, in the order of ``prompts``, generated ``batch`` prompts at a time."""
    import contextlib

    from rmstudio.core.models.generation import _derive_seed, _Sampler

    sampler = _Sampler(model, tokenizer, sampling)
    # _Sampler caches token ids by id: number the prompts here (a given prompt may have no id)
    numbered = [(i, prompt) for i, (_, prompt) in enumerate(prompts)]
    order = sorted(numbered, key=lambda item: len(sampler.prompt_ids(*item)))
    texts: list[str] = [""] * len(prompts)
    off = model.disable_adapter() if adapter_off else contextlib.nullcontext()
    with off:
        for start in range(0, len(order), max(1, batch)):
            if sink.should_stop():
                raise InterruptedError("the comparison was cancelled")
            chunk = order[start:start + batch]
            seed = _derive_seed(sampling.seed, *[prompt.text for _, prompt in chunk])
            drawn, _ = sampler.sample(chunk, 1, seed)
            for (i, _), [text] in zip(chunk, drawn):
                texts[i] = text
            finished = done + start + len(chunk)
            sink.log(finished, {"stage": "generate", "done": finished, "total": total})
    return texts


def score(reward, tokenizer, prompts: list[str], completions: list[str]) -> list[float]:
    # completion_ids too: TRL passes them, and rule rewards (a test's synthetic one) read them
    ids = tokenizer(completions, add_special_tokens=False)["input_ids"] if completions else []
    return [float(r) for r in reward(prompts=prompts, completions=completions, completion_ids=ids)]
