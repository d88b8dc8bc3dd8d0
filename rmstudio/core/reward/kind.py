"""Reward training as a run kind: its config, its work, and how its curves are drawn.

The window, the child process and the CLI know reward training only through this object
(``rmstudio.core.reward.kind:REWARD``); see ``rmstudio.core.runs.kinds``.
"""

from __future__ import annotations

from rmstudio.core.reward.train import RewardTrainConfig, check_can_train, resumed_run, run_reward
from rmstudio.core.runs.kinds import Plot, RunKind

REWARD = RunKind(
    name="reward",
    config_type=RewardTrainConfig,
    run=run_reward,
    plots=(
        Plot("Loss", ("train/loss", "val/loss", "test/loss"), "loss"),
        Plot("Accuracy", ("train/accuracy", "val/accuracy", "test/accuracy",
                          "train/pearson", "val/pearson"), "share of pairs"),
        Plot("Mean margin r_c − r_r", ("train/margin", "val/margin"), "reward"),
        Plot("Mean reward", ("train/mean_reward", "val/mean_reward"), "reward"),
    ),
    describe=lambda config: f"{config.method} on {config.base}",
    resume_of=resumed_run,
    precheck=check_can_train,
)
