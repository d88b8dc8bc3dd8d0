"""rmstudio: Reward Model Studio, the RLHF reward loop in one local app."""

__version__ = "0.1.0"


def load_reward_model(path, device: str | None = None, normalized: bool = False, name: str = "reward_model"):
    """Load a reward model folder rmstudio saved (instant or fine-tuned) for scoring.

    Returns a ``rmstudio.core.reward.api.RewardModel``: ``rm.score(prompt, response)`` gives a
    float, and ``rm`` itself is a TRL reward function (``GRPOTrainer(reward_funcs=[rm])``).
    torch is imported here, on first use, so ``import rmstudio`` stays light.
    """
    from rmstudio.core.reward.api import load

    return load(path, device=device, normalized=normalized, name=name)
