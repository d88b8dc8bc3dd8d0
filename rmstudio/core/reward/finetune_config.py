"""Settings of the LoRA / full reward-model fine-tune (no torch import: the CLI and the GUI
check them before any label is read or any model is loaded)."""

from __future__ import annotations

from dataclasses import dataclass

from rmstudio.core.errors import RmstudioError

class FinetuneError(RmstudioError):
    """A fine-tuning run that cannot start, or failed on the way (out of memory, bad data)."""


METHODS = ("lora", "full")
OBJECTIVES = ("pairwise", "regression")
OVERLONG = ("truncate", "skip")
HEAD_INITS = ("probe", "random")
DEFAULT_AVERAGE_LAST = {"lora": 0.0, "full": 0.5}
"""Full fine-tunes export the mean of their second half's weights: on HH their checkpoints'
held-out accuracy swung 65.4-68.9%, and the average scored 69.9% (benchmarks/reward_quality.py).
LoRA's runs have not been measured with averaging."""
DEFAULT_LR = {"lora": 1e-4, "full": 3e-5}
"""Measured on HH with the embedded model (benchmarks/reward_quality.py): full at 1e-5 barely left
the probe; at 3e-5 it reached 67.9% test accuracy without distillation, 69.9% with the defaults
(TRL's RewardConfig default is 1e-4)."""


@dataclass
class FinetuneConfig:
    method: str = "lora"
    """'lora' (train low-rank adapters + the score head) or 'full' (train every weight)."""
    objective: str = "pairwise"
    """'pairwise' (Bradley-Terry on pairs) or 'regression' (MSE on standardised ratings; rows are
    single responses, and there is no teacher to distil from)."""
    learning_rate: float | None = None
    """Peak AdamW learning rate, decayed linearly to 0; None = 1e-4 for LoRA, 3e-5 for full."""
    epochs: int = 1
    """Passes over the training pairs."""
    batch_size: int = 8
    """Pairs per forward pass (each pair is two sequences: chosen and rejected)."""
    grad_accum: int = 1
    """Forward passes summed into one optimizer step (effective batch = batch_size * grad_accum)."""
    max_length: int = 384
    """Most tokens of prompt + response in one sequence."""
    overlong: str = "truncate"
    """'truncate': keep the end of the prompt and the start of the response; 'skip': drop the pair."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input."""
    lora_target_modules: str | list[str] = "all-linear"
    """Modules that get adapters: 'all-linear' or a list of module names such as ['q_proj', 'v_proj']."""
    bf16: bool | None = None
    """bfloat16 autocast; None = on where the hardware does it fast (CUDA with bf16, CPUs with
    AMX or AVX512-BF16)."""
    length_grouped: bool = True
    """Put pairs of similar length in one batch (less padding); the batch order stays random."""
    share_prompt: bool = True
    """Run the prompt once per pair (chosen and rejected share it in one packed row, 4-D mask);
    exact, and about 1.5x fewer tokens on HH. Off, or with flash attention: chosen and rejected as
    two padded rows, as TRL does."""
    center_rewards_coefficient: float | None = None
    """Adds coef * mean((r_chosen + r_rejected)^2) to keep rewards near 0 (TRL's option; 0.01 is typical)."""
    eval_every_steps: int = 50
    """Validate every this many optimizer steps (and always at the end); 0 = only at the end."""
    save_every_steps: int = 50
    """Checkpoint every this many optimizer steps; 0 = only on cancel."""
    head_init: str = "probe"
    """'probe': before fine-tuning, fit the score head as a logistic regression on the frozen
    model's last-token states of up to probe_pairs training pairs (linear probing, then fine-tuning,
    as in Kumar et al. 2022, "Fine-tuning can distort pretrained features"). Training then starts
    at the probe's accuracy instead of chance, and a random head's large first gradients do not
    scramble the backbone. 'random': a randomly initialised head, as TRL does."""
    probe_pairs: int = 2048
    """Training pairs the probe reads (one forward pass each, no gradients; ~0.1 s a pair on a
    2-core CPU). On HH the probe on 512 pairs scored 54.7% on validation; on all 1,808, the same
    readout scored 63%: every pair the probe sees is worth its forward pass."""
    distill_weight: float = 0.5
    """Knowledge distillation from the instant model: each training target becomes
    (1 - w) * label + w * P_instant(chosen preferred), where the instant head is fitted on the same
    training split first (features cached in the project). Soft targets carry how sure a good
    teacher is about each pair, which small, noisy preference sets lack: on HH, LoRA went from
    68.3% to 70.2% test accuracy with w = 0.5, both exported at step 50 (the instant model alone:
    67.9%). 0 = labels only.
    train_reward_model computes the teacher (TrainingPair.teacher); pairs without one keep
    their label."""
    keep_best: bool = True
    """Export the weights of the validation with the lowest loss (the probe's, at step 0, counts)
    when it beats the last step's by more than one standard error of the last one's validation
    loss; otherwise, as with False, export the last step. Validation on a few hundred pairs
    is too noisy to prefer an earlier step for less (see finetune.clearly_better). Needs
    validation pairs; the best is kept on disk, so a resumed run remembers it."""
    average_last: float | None = None
    """Export the mean of the trainable weights over this share of the run's last steps (0.5 =
    the second half; Polyak-Ruppert averaging, see averaging.py) instead of the last step's;
    validation and keep_best then judge the average. 0 = off; None = DEFAULT_AVERAGE_LAST."""
    seed: int = 0
    """Seed for the score head's initialisation, the data order and dropout."""
    device: str | None = None
    """'cpu', 'cuda', 'cuda:N', 'mps'; None = the best one available."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {HEAD_INITS}, got {self.head_init!r}")
        if self.overlong not in OVERLONG:
            raise ValueError(f"overlong must be one of {OVERLONG}, got {self.overlong!r}")
        if self.learning_rate is not None and not (isinstance(self.learning_rate, (int, float))
                                                   and 0 < self.learning_rate < 1):
            raise ValueError(f"learning_rate must be a number in (0, 1) or None, got {self.learning_rate!r}")
        for name in ("epochs", "batch_size", "grad_accum", "lora_r", "lora_alpha", "probe_pairs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise ValueError(f"max_length must be a whole number >= 8 tokens, got {self.max_length!r}")
        for name in ("eval_every_steps", "save_every_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0 (0 = never), got {value!r}")
        if self.average_last is None:
            self.average_last = DEFAULT_AVERAGE_LAST[self.method]
        if not (isinstance(self.average_last, (int, float)) and 0 <= self.average_last < 1):
            raise ValueError(f"average_last must be a number from 0 up to (not including) 1, "
                             f"got {self.average_last!r}")
        if not (isinstance(self.distill_weight, (int, float)) and 0 <= self.distill_weight <= 1):
            raise ValueError(f"distill_weight must be a number from 0 to 1, got {self.distill_weight!r}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if self.center_rewards_coefficient is not None and self.center_rewards_coefficient < 0:
            raise ValueError("center_rewards_coefficient must be >= 0 or None, "
                             f"got {self.center_rewards_coefficient!r}")
        if not (self.lora_target_modules == "all-linear" or (
                isinstance(self.lora_target_modules, (list, tuple)) and self.lora_target_modules
                and all(isinstance(m, str) and m for m in self.lora_target_modules))):
            raise ValueError("lora_target_modules must be 'all-linear' or a non-empty list of module names, "
                             f"got {self.lora_target_modules!r}")

    @property
    def lr(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[self.method]
