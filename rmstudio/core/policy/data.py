"""What a policy run trains on: the project's prompts (GRPO/RLOO) or labeled pairs (DPO), in the
row format TRL's trainers read.

The held-out prompts are chosen by ``reward.data.split_by_prompt`` (the prompts in a seeded
order, the first round(share x prompts) held out) under a seed derived from the run's (``held_out_seed``), so they are independent of the
validation prompts of a reward model trained with the same seed. They used to be the same hash:
then a reward model's validation prompts were a subset of the policy's held-out prompts, and a
project that labeled only the policy's training prompts (benchmarks/policy.py) gave its reward
model no validation pairs at all. The cost: a policy's held-out prompt may have trained the
reward model (its labels), never the policy, and the policy is compared on prompts it never saw.

Rows are conversational (``[{"role": ..., "content": ...}]``) when the tokenizer has a chat
template, so an instruct model sees its own format; plain strings otherwise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rmstudio.core.data.formats.parse import hh_to_messages
from rmstudio.core.data.records import Text
from rmstudio.core.reward.data import TrainingPair, snapshot_pairs, split_by_prompt
from rmstudio.core.store.project import Project, row_to_text


@dataclass(frozen=True)
class PolicyPrompt:
    prompt_id: int
    prompt: Text


def read_prompts(project: Project) -> list[PolicyPrompt]:
    """Every prompt of the project, in import order (labeled or not: sampling needs no label)."""
    rows = project.conn.execute("SELECT id, text, messages FROM prompts ORDER BY id").fetchall()
    return [PolicyPrompt(r["id"], row_to_text(r["text"], r["messages"])) for r in rows]


def held_out_seed(seed: int) -> int:
    """The seed of the policy's held-out split: ``seed`` salted, so the split is not reward
    training's validation split of the same seed (see the module docstring)."""
    digest = hashlib.blake2b(f"policy held-out|{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def split_prompts(prompts: list[PolicyPrompt], held_out_fraction: float,
                  seed: int) -> tuple[list[PolicyPrompt], list[PolicyPrompt]]:
    """(train, held_out): a prompt's side depends only on its text and the seed."""
    return split_by_prompt(prompts, held_out_fraction, held_out_seed(seed))


def preference_pairs(project: Project) -> list[TrainingPair]:
    """Labeled pairs with a preference ('a' or 'b'); ties, both-bad and skips say nothing DPO can
    learn from and are left out. Each label is one pair (agreeing annotators weigh twice)."""
    return [p for p in snapshot_pairs(project) if p.target == 1.0]


def split_pairs(pairs: list[TrainingPair], held_out_fraction: float,
                seed: int) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """(train, held_out) by prompt, the same prompts as ``split_prompts`` holds out."""
    return split_by_prompt(pairs, held_out_fraction, held_out_seed(seed))


# -- TRL rows ------------------------------------------------------------------------------

def prompt_messages(prompt: Text) -> list[dict]:
    """A prompt as chat turns: its own messages, an HH dialogue parsed, or one user turn."""
    if prompt.messages is not None:
        return [{"role": m.role, "content": m.content} for m in prompt.messages]
    parsed = hh_to_messages(prompt.text)
    if parsed:
        return [{"role": m.role, "content": m.content} for m in parsed]
    return [{"role": "user", "content": prompt.text}]


def response_messages(response: Text) -> list[dict]:
    if response.messages is not None:
        return [{"role": m.role, "content": m.content} for m in response.messages]
    return [{"role": "assistant", "content": response.text.strip()}]


def prompt_row(prompt: Text, conversational: bool):
    return prompt_messages(prompt) if conversational else prompt.text


def prompt_rows(prompts: list[PolicyPrompt], conversational: bool) -> list:
    return [prompt_row(p.prompt, conversational) for p in prompts]


def dpo_rows(pairs: list[TrainingPair], conversational: bool) -> dict[str, list]:
    """Columns prompt / chosen / rejected, as DPOTrainer reads them."""
    if conversational:
        return {"prompt": [prompt_messages(p.prompt) for p in pairs],
                "chosen": [response_messages(p.chosen) for p in pairs],
                "rejected": [response_messages(p.rejected) for p in pairs]}
    return {"prompt": [p.prompt.text for p in pairs], "chosen": [p.chosen.text for p in pairs],
            "rejected": [p.rejected.text for p in pairs]}


def prompt_tokens(tokenizer, row) -> int:
    """Tokens of one prompt row as the model will read it (chat template and generation
    prompt included for a conversational row)."""
    if isinstance(row, list):
        row = tokenizer.apply_chat_template(row, add_generation_prompt=True, tokenize=False)
    return len(tokenizer(row, add_special_tokens=False)["input_ids"])


def within_length(items: list, rows: list, tokenizer, max_tokens: int) -> tuple[list, list]:
    """The items (and their rows) whose prompt fits in ``max_tokens``."""
    kept = [(item, row) for item, row in zip(items, rows) if prompt_tokens(tokenizer, row) <= max_tokens]
    return [k[0] for k in kept], [k[1] for k in kept]


def preview(project: Project, method: str, held_out_fraction: float, seed: int) -> dict:
    """What a run with these settings trains on, before it starts (the Optimize page shows it):
    ``{"unit": "prompts"|"pairs", "train": n, "held_out": n}``."""
    if method == "dpo":
        train, held = split_pairs(preference_pairs(project), held_out_fraction, seed)
        return {"unit": "pairs", "train": len(train), "held_out": len(held)}
    train, held = split_prompts(read_prompts(project), held_out_fraction, seed)
    return {"unit": "prompts", "train": len(train), "held_out": len(held)}
