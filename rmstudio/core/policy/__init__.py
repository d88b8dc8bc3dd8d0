"""Policy optimisation: tune a language model against a reward model (GRPO, RLOO) or straight on
the project's labels (DPO), as the run kind ``rmstudio.core.policy.kind:POLICY``.

- ``config``: ``PolicyConfig``, the settings of one run, checked when made.
- ``data``: the project's prompts (split into train / held out) and labeled pairs, in TRL's format.
- ``rewards``: a TRL reward function from a reward model folder (or a ``module:function``).
- ``run``: ``run_policy``, the work of the run kind (builds the TRL trainer, records the run).
- ``export``: ``export_policy``, a run's policy (last or the guard's best) as a plain HF model folder.
- ``guard``: the over-optimisation guard, a check reward the policy never trains against.
- ``best_of_n``: best-of-n of the start policy at its KL bound, the baseline on the guard's axes.
- ``sampling``: sampling and log-probabilities outside TRL's loop, for the two above.
"""
