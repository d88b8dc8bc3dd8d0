"""Policy optimisation as a run kind: its config, its work, and how its curves are drawn.

The window, the child process and the CLI know it only through this object
(``rmstudio.core.policy.kind:POLICY``); see ``rmstudio.core.runs.kinds``. The metric names are
the ones ``RecorderCallback`` records from TRL's logs: TRL's ``reward``/``kl``/``loss`` become
``train/...``, names with a slash (``completions/clipped_ratio``, ``rewards/margins``) are
kept, evaluation logs become ``val/...``.
"""

from __future__ import annotations

from rmstudio.core.policy.config import PolicyConfig, describe
from rmstudio.core.policy.run import check_can_run, resumed_run, run_policy
from rmstudio.core.runs.kinds import Plot, RunKind

POLICY = RunKind(
    name="policy",
    config_type=PolicyConfig,
    run=run_policy,
    plots=(
        Plot("Reward", ("train/reward", "train/reward_std", "rewards/reward_model/mean"), "reward"),
        Plot("KL to the start", ("train/kl",), "nats per token"),
        Plot("Completion length / clipped share", ("completions/mean_length", "completions/clipped_ratio",
                                                   "policy/clipped_recent"), "tokens / share"),
        Plot("Loss", ("train/loss", "val/loss"), "loss"),
        Plot("DPO rewards / margin / accuracy", ("rewards/chosen", "rewards/rejected", "rewards/margins",
                                                 "rewards/accuracies", "val/rewards/margins",
                                                 "val/rewards/accuracies"), "implicit reward / share"),
    ),
    describe=describe,
    resume_of=resumed_run,
    precheck=check_can_run,
)
