"""Sampling completions outside TRL's training loop, and what the guard and best-of-n read from
them: the rewards and the log-probabilities of the sampled tokens under two models.

Why not TRL's own generation: the guard samples from fixed held-out prompts at a fixed seed
(common random numbers: two evaluations differ by the policy, not by the dice), and best-of-n
samples from the *starting* policy. Both run between optimizer steps, in ``torch.no_grad``,
with the global random state saved and restored (``fork_rng``), so training draws the same
numbers with the guard on or off.

Log-probabilities are taken at the sampling temperature (logits / T), as TRL's trainers take
them for their ``kl``: the completions are drawn from the policy at temperature T, so
``log pi_T(y) - log ref_T(y)`` summed over a completion's tokens is a Monte-Carlo estimate of
KL(pi_T || ref_T), which is at least 0 in expectation (one sample may be negative).

The reference is the model the policy started from (``start_policy``): under LoRA the same
model with its adapter switched off (what TRL uses for its KL term, no second copy), for a full
fine-tune TRL's ``ref_model`` (beta > 0) or, when TRL keeps none (beta 0), the start model
loaded once more.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

BATCH = 64
"""Sequences generated and scored per forward pass."""


@dataclass
class Samples:
    """``len(rows)`` completions: each prompt row repeated as asked, with its sampled tokens."""

    rows: list
    """The prompt of each completion, as TRL's rows (a string or chat turns)."""
    completion_ids: list[list[int]]
    """Each completion's tokens, up to and including the end-of-sequence token."""
    texts: list[str]
    sequences: list
    """(input_ids, attention_mask, prompt_length, completion_mask) of each generated batch."""

    def completions(self, conversational: bool) -> list:
        """The completions as a reward function reads them (TRL's format for the rows)."""
        if conversational:
            return [[{"role": "assistant", "content": t}] for t in self.texts]
        return list(self.texts)


def prompt_text(tokenizer, row) -> str:
    """A prompt row as the model reads it: chat turns through the chat template."""
    if isinstance(row, list):
        return tokenizer.apply_chat_template(row, add_generation_prompt=True, tokenize=False)
    return row


def _completion_mask(completion, eos_id):
    """1 for the tokens up to and including the first end-of-sequence token (later ones pad)."""
    import torch

    is_eos = completion == eos_id if eos_id is not None else torch.zeros_like(completion, dtype=torch.bool)
    length = completion.size(1)
    never = torch.full((completion.size(0),), length, dtype=torch.long, device=completion.device)
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), never)
    return (torch.arange(length, device=completion.device)[None] <= first[:, None]).long()


def sample(model, tokenizer, rows: list, max_new_tokens: int, temperature: float, seed: int) -> Samples:
    """One completion per row, sampled at ``temperature`` with the random state fixed by ``seed``
    (and the caller's random state left as it was)."""
    import torch

    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    ids_out, texts, sequences = [], [], []
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, len(rows), BATCH):
                batch = [prompt_text(tokenizer, r) for r in rows[start:start + BATCH]]
                enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                out = model.generate(**enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                                     max_new_tokens=max_new_tokens, pad_token_id=pad_id)
                prompt_length = enc["input_ids"].size(1)
                completion = out[:, prompt_length:]
                mask = _completion_mask(completion, tokenizer.eos_token_id)
                attention = torch.cat([enc["attention_mask"], mask], dim=1)
                sequences.append((out, attention, prompt_length, mask))
                for row, row_mask in zip(completion.tolist(), mask.tolist()):
                    kept = row[:sum(row_mask)]
                    ids_out.append(kept)
                    texts.append(tokenizer.decode(kept, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return Samples(list(rows), ids_out, texts, sequences)


def completion_logps(model, samples: Samples, temperature: float) -> list[float]:
    """Each completion's log-probability under ``model`` at ``temperature`` (summed over tokens)."""
    import torch

    was_training = model.training
    model.eval()
    out: list[float] = []
    try:
        with torch.no_grad():
            for input_ids, attention, prompt_length, mask in samples.sequences:
                # positions as generate() counts them: left padding takes none
                positions = (attention.cumsum(-1) - 1).clamp(min=0)
                logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits
                logits = logits[:, prompt_length - 1:-1].float() / temperature
                logps = torch.log_softmax(logits, dim=-1)
                token = logps.gather(-1, input_ids[:, prompt_length:, None]).squeeze(-1)
                out += (token * mask).sum(1).tolist()
    finally:
        model.train(was_training)
    return out


def rewards(reward_fn, samples: Samples, conversational: bool) -> list[float]:
    """``reward_fn`` (a TRL reward function) on the samples, called as TRL calls it."""
    values = reward_fn(prompts=samples.rows, completions=samples.completions(conversational),
                       completion_ids=samples.completion_ids)
    return [float("nan") if v is None else float(v) for v in values]


def is_peft(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


@contextmanager
def start_policy(model, ref_model=None, load=None):
    """The model the policy started from, for the duration of the block (see the module docstring).
    ``load()`` returns the start model when neither an adapter nor ``ref_model`` gives it."""
    if is_peft(model):
        with model.disable_adapter():
            yield model
    elif ref_model is not None:
        yield ref_model
    elif load is not None:
        yield load()
    else:
        raise ValueError("no reference: a full fine-tune needs its start model (ref_model or load)")
