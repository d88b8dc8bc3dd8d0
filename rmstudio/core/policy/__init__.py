"""Policy optimisation: tune a language model against a reward model (GRPO, RLOO) or straight on
the project's labels (DPO), as the run kind ``rmstudio.core.policy.kind:POLICY``.

- ``config``: ``PolicyConfig``, the settings of one run, checked when made.
- ``data``: the project's prompts (split into train / held out) and labeled pairs, in TRL's format.
- ``rewards``: a TRL reward function from a reward model folder (or a ``module:function``).
- ``run``: ``run_policy``, the work of the run kind (builds the TRL trainer, records the run).
- ``export``: ``export_policy``, a run's policy as a plain Hugging Face model folder.
"""
