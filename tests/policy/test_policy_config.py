"""PolicyConfig: bad settings are refused in one line naming the field; the kind is found by
reference, its config survives JSON, and its plots name metrics RecorderCallback records."""

import dataclasses

import pytest

from rmstudio.core.policy.config import PolicyConfig
from rmstudio.core.policy.kind import POLICY
from rmstudio.core.runs import codec
from rmstudio.core.runs.hf_callback import metric_name
from rmstudio.core.runs.kinds import kind_ref, load_kind

GOOD = dict(method="grpo", reward="some.module:reward")


@pytest.mark.parametrize("change, field", [
    ({"method": "ppo"}, "method"),
    ({"policy": " "}, "policy"),
    ({"reward": ""}, "reward"),
    ({"method": "dpo", "reward": "x:y"}, "reward"),
    ({"lora_rank": 0}, "lora_rank"),
    ({"lora_alpha": 0}, "lora_alpha"),
    ({"beta": -0.1}, "beta"),
    ({"beta": float("nan")}, "beta"),
    ({"num_generations": 1, "per_device_batch": 1}, "num_generations"),
    ({"per_device_batch": 6}, "per_device_batch"),
    ({"max_completion_length": 0}, "max_completion_length"),
    ({"max_prompt_length": 0}, "max_prompt_length"),
    ({"max_steps": 0}, "max_steps"),
    ({"save_steps": 0}, "save_steps"),
    ({"logging_steps": 0}, "logging_steps"),
    ({"temperature": 0}, "temperature"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"held_out_fraction": 1.0}, "held_out_fraction"),
    ({"device": "tpu"}, "device"),
])
def test_a_bad_setting_is_one_line_naming_the_field(change, field):
    with pytest.raises(ValueError) as err:
        PolicyConfig(**{**GOOD, **change})
    message = str(err.value)
    assert message.startswith(field) and "\n" not in message


def test_defaults_hold_the_policy_near_its_start_and_fit_a_small_cpu():
    config = PolicyConfig(**GOOD)
    assert config.beta > 0 and config.lora
    assert config.num_generations <= 4 and config.per_device_batch % config.num_generations == 0
    assert PolicyConfig(method="dpo").reward == ""  # DPO needs no reward


def test_kind_is_found_by_reference_and_its_config_round_trips():
    assert kind_ref(POLICY) == "rmstudio.core.policy.kind:POLICY"
    assert load_kind("rmstudio.core.policy.kind:POLICY") is POLICY
    config = PolicyConfig(method="rloo", reward="/models/rm", lora=False, beta=0.1, resume=True)
    assert codec.loads(PolicyConfig, codec.dumps(config)) == config
    with pytest.raises(ValueError, match=r"policy.beta: expected a number"):
        POLICY.config_from_json({**GOOD, "beta": "high"})
    with pytest.raises(ValueError, match="method must be one of"):
        POLICY.config_from_json({"method": "ppo"})
    assert POLICY.describe(config) == "rloo full on embedded"


def test_every_field_has_a_docstring():
    import ast
    import inspect

    from rmstudio.core.policy import config as module

    tree = ast.parse(inspect.getsource(module))
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PolicyConfig"]
    documented = {prev.target.id for prev, node in zip(cls.body, cls.body[1:])
                  if isinstance(prev, ast.AnnAssign) and isinstance(node, ast.Expr)
                  and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
    assert documented == {f.name for f in dataclasses.fields(PolicyConfig)}


def test_plot_metrics_are_names_the_callback_produces():
    # TRL's log keys (grpo_trainer / rloo_trainer / dpo_trainer `_metrics`) as RecorderCallback names them
    trl_keys = {"reward", "reward_std", "rewards/reward_model/mean", "kl", "entropy", "completions/mean_length",
                "completions/clipped_ratio", "loss", "eval_loss", "rewards/chosen", "rewards/rejected",
                "rewards/margins", "rewards/accuracies", "eval_rewards/margins", "eval_rewards/accuracies"}
    produced = {metric_name(k) for k in trl_keys} | {"policy/clipped_recent", "guard/proxy", "guard/check",
                                                     "guard/kl", "guard/sqrt_kl"}  # the guard logs its own
    plotted = {m for plot in POLICY.plots for m in plot.metrics}
    assert plotted <= produced, plotted - produced
    grpo = POLICY.plots_of(PolicyConfig(reward="x:y"))
    dpo = POLICY.plots_of(PolicyConfig(method="dpo"))
    assert [p.title for p in grpo] == ["Reward", "KL to the start", "Entropy of the answers",
                                       "Completion length", "Cut at the length limit", "Loss"]
    assert [p.title for p in dpo] == ["Loss", "Implicit rewards", "Margin (chosen − rejected)",
                                      "Accuracy (chosen ranked higher)"]
    assert all(len(p.names) in (0, len(p.metrics)) for p in grpo + dpo)  # a legend name per metric
