"""Reward training as a run kind: its config, its work, and how its curves are drawn.

The window, the child process and the CLI know reward training only through this object
(``rmstudio.core.reward.kind:REWARD``); see ``rmstudio.core.runs.kinds``.
"""

from __future__ import annotations

from rmstudio.core.reward.train import RewardTrainConfig, check_can_train, resumed_run, run_reward
from rmstudio.core.runs.kinds import Plot, RunKind

_LOSS = ("train/loss", "val/loss", "test/loss")
_REWARD = Plot("Mean reward", ("train/mean_reward", "val/mean_reward"), "reward")
PAIRWISE_PLOTS = (
    Plot("Loss (Bradley-Terry)", _LOSS, "loss"),
    Plot("Accuracy", ("train/accuracy", "val/accuracy", "test/accuracy"), "share of pairs",
         y_limits=(-0.02, 1.02), rising=True),
    Plot("Mean margin r_c − r_r", ("train/margin", "val/margin"), "reward", rising=True),
    _REWARD,
)
# Regression on ratings has no pairs: its loss is the MSE, its measure the correlation with the
# rating, and it has no margin.
REGRESSION_PLOTS = (
    Plot("Loss (MSE, standardised ratings)", _LOSS, "loss"),
    Plot("Correlation with the rating (Pearson)", ("train/pearson", "val/pearson"), "Pearson r",
         y_limits=(-1.02, 1.02), rising=True),
    _REWARD,
)
INSTANT_NOTE = ("The instant method has no per-step curves: it computes the base model's features "
                "(each response once; cached in the project for the next run) and then fits the head "
                "in about a second. The bar above counts the features; the Results tab opens when it "
                "is done.")


def _plots(config: RewardTrainConfig) -> tuple[Plot, ...]:
    if config.method == "instant":
        return ()
    return REGRESSION_PLOTS if config.objective == "regression" else PAIRWISE_PLOTS


REWARD = RunKind(
    name="reward",
    config_type=RewardTrainConfig,
    run=run_reward,
    plots=PAIRWISE_PLOTS + REGRESSION_PLOTS[1:2],
    plots_for=_plots,
    live_note=lambda config: INSTANT_NOTE if config.method == "instant" else "",
    describe=lambda config: f"{config.method} on {config.base}",
    resume_of=resumed_run,
    precheck=check_can_train,
)
