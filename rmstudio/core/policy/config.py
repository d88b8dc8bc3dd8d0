"""The settings of one policy optimisation run, checked when made (in code or from JSON)."""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("grpo", "rloo", "dpo")
DEVICES = ("auto", "cpu", "cuda")
ONLINE = ("grpo", "rloo")
"""Methods that sample completions and score them with a reward."""


@dataclass
class PolicyConfig:
    method: str = "grpo"
    """'grpo' (group-relative advantages over ``num_generations`` samples per prompt), 'rloo'
    (leave-one-out baseline over the same samples), both scored by ``reward``; or 'dpo'
    (direct preference optimisation on the project's labeled pairs, no sampling, no reward)."""

    policy: str = "embedded"
    """The model to tune: 'embedded' (SmolLM2-135M-Instruct), a model folder, a .gguf file or a
    hub id (as everywhere in rmstudio)."""

    reward: str = ""
    """GRPO/RLOO: the reward, a reward model folder this project trained (instant or fine-tuned),
    or ``package.module:function`` naming a TRL reward function ``f(prompts, completions, **kw)
    -> list[float]`` (a rule, a test's synthetic reward). DPO: must stay empty."""

    lora: bool = True
    """Train a LoRA adapter on every linear layer instead of all weights: a fraction of the memory,
    and the reference model for the KL term is the base with the adapter switched off (no
    second copy of the model)."""

    lora_rank: int = 16
    """LoRA rank r: the adapter's width (more is more capacity and memory)."""

    lora_alpha: int = 32
    """LoRA alpha: the adapter's update is scaled by alpha / rank."""

    beta: float = 0.04
    """KL coefficient: how strongly the policy is held near the model it started from. Above 0
    on purpose (TRL's GRPO default is 0): a learned reward model is right only near the data it
    was trained on, and a policy free to drift finds the texts it overrates (reward hacking:
    repetition, length, flattery). The KL term is also logged (``train/kl``), so drift shows on
    a curve. 0 drops the reference model and the term. For DPO it is DPO's own beta (the
    strength of the implicit KL constraint)."""

    num_generations: int = 4
    """GRPO/RLOO: completions sampled per prompt (the group whose rewards are compared). Small
    by default so a 2-core CPU finishes a step in seconds; 8-16 on a GPU."""

    max_completion_length: int = 64
    """Most tokens a sampled completion may have (and, for DPO, added to ``max_prompt_length``
    as the most tokens a prompt with its response may have)."""

    max_prompt_length: int = 256
    """Prompts longer than this (in tokens, chat template included) are left out of training."""

    temperature: float = 1.0
    """GRPO/RLOO: sampling temperature of the completions."""

    learning_rate: float = 5e-5
    """Optimizer step size (AdamW, linear decay). LoRA takes larger steps than full tuning."""

    max_steps: int = 200
    """Optimizer steps to train; a resumed run trains up to this step count in all."""

    per_device_batch: int = 4
    """Completions (GRPO/RLOO; a whole number of groups of ``num_generations``) or labeled
    pairs (DPO) per optimizer step."""

    logging_steps: int = 1
    """Log the metrics every this many steps."""

    save_steps: int = 25
    """Write a checkpoint every this many steps (a cancelled run resumes from the last one)."""

    held_out_fraction: float = 0.1
    """Share of prompts never trained on (chosen by a seeded hash of the prompt text, the seed
    salted so they are not a reward model's validation prompts: ``data.held_out_seed``), kept to
    compare the policy before and after; DPO evaluates on their labeled pairs at the end."""

    seed: int = 0
    """Fixes the held-out split, the sampling and the training randomness."""

    device: str = "auto"
    """'auto' (CUDA when present, else the CPU), 'cpu' or 'cuda'. Weights train in float32 on
    the CPU and in bf16 on a CUDA card that supports it."""

    check_reward: str = ""
    """GRPO/RLOO: a second reward the policy never trains against (a reward model folder or
    ``module:function``, as ``reward``), scored by the over-optimisation guard and best-of-n.
    Best a model trained on other labels or another fold than ``reward``: where the two
    disagree, the policy is exploiting one of them. Empty: no check. 'auto': an instant model
    fitted at the start on the labels ``reward`` did not train on (its validation prompts' pairs;
    every label for a function reward), saved in the run folder with the list of labels it used
    (``auto_check``). A reward trained on every label is refused for 'auto': a head fitted on
    the same labels (another fold or an ensemble of them) would share its blind spots."""

    guard_every: int = 0
    """GRPO/RLOO: every this many steps (and once before the first), sample one completion per
    held-out prompt (16 at most), score it with ``reward`` and ``check_reward``, estimate the KL
    to the start, keep the policy with the best check and warn when the check falls while the
    reward rises (``guard``). Needs ``check_reward`` and held-out prompts. 0: off."""

    guard_patience: int = 3
    """Consecutive guard evaluations the check must fall (while the reward rises) before the
    run warns of over-optimisation."""

    best_of_n: bool = False
    """GRPO/RLOO: at the end, sample 16 completions per held-out prompt from the starting policy
    and put best-of-n's rewards (n = 1..16, under ``reward`` and ``check_reward``) at its KL bound
    into the result: the baseline the run's guard curve should beat on the same sqrt(KL) axis."""

    resume: bool = False
    """Continue the latest policy run of this project that did not finish, from its last
    checkpoint, instead of starting a new run."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not self.policy.strip():
            raise ValueError("policy must name a model ('embedded', a folder, a .gguf file or a hub id)")
        if self.method in ONLINE and not self.reward.strip():
            raise ValueError(f"reward must name a reward model folder or module:function for {self.method}")
        if self.method == "dpo" and self.reward.strip():
            raise ValueError("reward must be empty for dpo: it learns from the labeled pairs directly")
        if self.lora_rank < 1:
            raise ValueError(f"lora_rank must be at least 1, got {self.lora_rank}")
        if self.lora_alpha < 1:
            raise ValueError(f"lora_alpha must be at least 1, got {self.lora_alpha}")
        if not (self.beta >= 0 and self.beta < float("inf")):
            raise ValueError(f"beta must be a number of at least 0, got {self.beta}")
        if self.method in ONLINE and self.num_generations < 2:
            raise ValueError("num_generations must be at least 2 (a group to compare), "
                             f"got {self.num_generations}")
        for name in ("max_completion_length", "max_prompt_length", "max_steps", "per_device_batch",
                     "logging_steps", "save_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.method in ONLINE and self.per_device_batch % self.num_generations:
            raise ValueError(f"per_device_batch ({self.per_device_batch}) must be a multiple of "
                             f"num_generations ({self.num_generations}): whole groups per step")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be above 0, got {self.temperature}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be above 0, got {self.learning_rate}")
        if not 0 <= self.held_out_fraction < 1:
            raise ValueError("held_out_fraction must be at least 0 and below 1, "
                             f"got {self.held_out_fraction}")
        self._check_guard()
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")

    def _check_guard(self) -> None:
        check = self.check_reward.strip()
        if self.guard_every < 0:
            raise ValueError(f"guard_every must be at least 0 (0: off), got {self.guard_every}")
        if self.guard_patience < 1:
            raise ValueError(f"guard_patience must be at least 1, got {self.guard_patience}")
        if self.method not in ONLINE:
            for name, off in (("check_reward", not check), ("guard_every", not self.guard_every),
                              ("best_of_n", not self.best_of_n)):
                if not off:
                    raise ValueError(f"{name} is for grpo and rloo: {self.method} samples nothing to check")
            return
        if check and check == self.reward.strip():
            raise ValueError("check_reward must differ from reward: "
                             "a check the policy trains on catches nothing")
        if self.guard_every and not check:
            raise ValueError("check_reward must name a reward when guard_every is on: the guard compares two")
        if (self.guard_every or self.best_of_n) and self.held_out_fraction == 0:
            raise ValueError("held_out_fraction must be above 0 for the guard and best-of-n: "
                             "they sample on prompts never trained on")


def describe(config: PolicyConfig) -> str:
    """A run's short name: 'grpo lora on embedded'."""
    how = "lora" if config.lora else "full"
    return f"{config.method} {how} on {config.policy}"
