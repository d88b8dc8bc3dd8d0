"""Policy optimisation as a run kind: its config, its work, and how its curves are drawn.

The window, the child process and the CLI know it only through this object
(``rmstudio.core.policy.kind:POLICY``); see ``rmstudio.core.runs.kinds``. The metric names are
the ones ``RecorderCallback`` records from TRL's logs: TRL's ``reward``/``kl``/``loss`` become
``train/...``, names with a slash (``completions/clipped_ratio``, ``rewards/margins``) are
kept, evaluation logs become ``val/...``. The over-optimisation guard logs its own ``guard/...``
metrics (``guard``); its plots are shown only for a run with the guard on (``plots_of``).

Plots share the step as their x-axis, so "reward against sqrt(KL)" (Gao et al.'s axes) is not a
plot here: the guard's rewards and its sqrt(KL) are two plots against steps, and the points for
the sqrt(KL) axis are in the run's result (``guard.history``, ``best_of_n``).
"""

from __future__ import annotations

from rmstudio.core.policy.config import PolicyConfig, describe
from rmstudio.core.runs.kinds import Plot, RunKind


# The run module imports transformers, TRL and peft (seconds): the window imports this kind when
# it opens, so the work is reached through these, which import it when a run starts.
def run_policy(project_path, config: PolicyConfig, recorder) -> dict:
    from rmstudio.core.policy.run import run_policy as run

    return run(project_path, config, recorder)


def check_can_run(project_path, config: PolicyConfig) -> None:
    from rmstudio.core.policy.run import check_can_run as check

    check(project_path, config)


def resumed_run(project_path, config: PolicyConfig) -> int | None:
    from rmstudio.core.policy.run import resumed_run as resumed

    return resumed(project_path, config)

ONLINE_PLOTS = (
    Plot("Reward", ("train/reward", "train/reward_std"), "reward", names=("mean", "spread (std)"),
         rising=True),
    Plot("KL to the start", ("train/kl",), "nats per token", names=("KL",)),
    Plot("Entropy of the answers", ("train/entropy",), "nats per token", names=("entropy",)),
    Plot("Completion length", ("completions/mean_length",), "tokens", names=("mean length",)),
    Plot("Cut at the length limit", ("completions/clipped_ratio", "policy/clipped_recent"), "share",
         y_limits=(-0.02, 1.02), names=("this step", "recent steps")),
    Plot("Loss", ("train/loss",), "loss", names=("loss",)),
)
DPO_PLOTS = (
    Plot("Loss", ("train/loss", "val/loss"), "loss"),
    Plot("Implicit rewards", ("rewards/chosen", "rewards/rejected"), "β log π/π_ref",
         names=("chosen", "rejected")),
    Plot("Margin (chosen − rejected)", ("rewards/margins", "val/rewards/margins"), "reward",
         names=("train", "held out"), rising=True),
    Plot("Accuracy (chosen ranked higher)", ("rewards/accuracies", "val/rewards/accuracies"), "share of pairs",
         y_limits=(-0.02, 1.02), names=("train", "held out"), rising=True),
)

GUARD_PLOTS = (
    Plot("Over-optimisation guard", ("guard/proxy", "guard/check"), "held-out mean reward",
         names=("reward (optimised)", "check reward")),
    Plot("Guard: KL to the start", ("guard/sqrt_kl", "guard/kl"), "sqrt(nats) / nats per completion",
         names=("√KL", "KL")),
)
"""The guard's curves: the proxy and the check reward of the held-out samples (a check that falls
while the proxy rises is over-optimisation), and how far the policy has moved."""


def policy_plots(config: PolicyConfig) -> tuple[Plot, ...]:
    """The plots of one run: by method, and the guard's only when it is on."""
    if config.method == "dpo":
        return DPO_PLOTS
    return ONLINE_PLOTS + (GUARD_PLOTS if config.guard_every else ())


POLICY = RunKind(
    name="policy",
    config_type=PolicyConfig,
    run=run_policy,
    plots=ONLINE_PLOTS + DPO_PLOTS + GUARD_PLOTS,
    plots_for=policy_plots,
    describe=describe,
    resume_of=resumed_run,
    precheck=check_can_run,
)
