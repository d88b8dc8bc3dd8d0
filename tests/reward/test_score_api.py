"""The public scoring API: plain strings in, the same numbers as transformers / the project's
own instant scoring out, and the TRL reward-function form."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import rmstudio
from rmstudio.core.data.records import Text
from rmstudio.core.reward.scoring import RewardModelError
import reward_folders
from reward_folders import hf_rewards

PROMPT = "What is the capital of France?"
RESPONSES = [" Paris is the capital of France.", " I do not know, sorry.", " The quick brown fox"]


finetuned_dir, instant_dir = reward_folders.finetuned_dir, reward_folders.instant_dir  # shared fixtures


def test_importing_rmstudio_does_not_import_torch():
    code = "import sys, rmstudio; assert callable(rmstudio.load_reward_model); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_finetuned_scores_equal_transformers(finetuned_dir):
    rm = rmstudio.load_reward_model(finetuned_dir, device="cpu")
    assert rm.kind == "finetuned"
    expected = hf_rewards(finetuned_dir, PROMPT, RESPONSES)
    got = rm.score(PROMPT, RESPONSES)
    assert isinstance(got, list) and len(got) == 3
    np.testing.assert_allclose(got, expected, atol=1e-4)
    one = rm.score(PROMPT, RESPONSES[0])
    assert isinstance(one, float) and one == pytest.approx(float(expected[0]), abs=1e-4)
    assert rm.score(Text(PROMPT), Text(RESPONSES[0])) == pytest.approx(one, abs=1e-6)
    assert float(np.std(expected)) > 1e-4  # the tiny model tells texts apart: the check has teeth


def test_instant_scores_equal_the_projects_instant_scoring(instant_dir):
    from rmstudio.core.reward.instant_model import InstantRewardModel

    rm = rmstudio.load_reward_model(instant_dir, device="cpu")
    assert rm.kind == "instant"
    own = InstantRewardModel.load(instant_dir, device="cpu").score(Text(PROMPT), [Text(r) for r in RESPONSES])
    np.testing.assert_allclose(rm.score(PROMPT, RESPONSES), own, atol=1e-4)
    assert float(np.std(own)) > 1e-4


def test_normalized_uses_the_stored_statistics(finetuned_dir, instant_dir):
    def both(folder, response):
        return (rmstudio.load_reward_model(folder, device="cpu").score(PROMPT, response),
                rmstudio.load_reward_model(folder, device="cpu", normalized=True).score(PROMPT, response))

    raw, norm = both(finetuned_dir, RESPONSES[0])
    assert norm == pytest.approx((raw - 0.25) / 2.0, abs=1e-6)  # the conftest stored mean 0.25, std 2
    raw, norm = both(instant_dir, RESPONSES[1])
    assert norm == pytest.approx((raw - 0.5) / 3.0, abs=1e-6)


def test_normalized_without_stored_statistics_is_refused(finetuned_dir, tmp_path):
    import json
    import shutil

    folder = tmp_path / "bare"
    shutil.copytree(finetuned_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["rmstudio"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(RewardModelError, match="reward_mean"):
        rmstudio.load_reward_model(folder, device="cpu", normalized=True)
    assert isinstance(rmstudio.load_reward_model(folder, device="cpu").score(PROMPT, "x"), float)


@pytest.mark.parametrize("which", ["finetuned_dir", "instant_dir"])
def test_trl_reward_function_form_with_strings_and_conversations(which, request):
    from trl.trainer.utils import get_callable_name, is_async_callable

    rm = rmstudio.load_reward_model(request.getfixturevalue(which), device="cpu")
    assert get_callable_name(rm) == "reward_model" and not is_async_callable(rm)
    prompts = [PROMPT, PROMPT, "Boil an egg"]
    completions = [RESPONSES[0], RESPONSES[1], " eight minutes"]
    expected = [rm.score(p, c) for p, c in zip(prompts, completions)]
    # As GRPOTrainer calls it: keyword arguments, extra columns it does not know about.
    plain = rm(prompts=prompts, completions=completions, completion_ids=[[1], [2], [3]], trainer_state=None)
    assert plain == pytest.approx(expected, abs=1e-5) and all(isinstance(r, float) for r in plain)
    # Conversational: the prompt a list of messages, the completion one assistant message
    # (GRPOTrainer's own shape); a lone user turn flattens to its content, as the importer does.
    conv_prompts = [[{"role": "user", "content": p}] for p in prompts]
    conv_completions = [[{"role": "assistant", "content": c}] for c in completions]
    conv = rm(prompts=conv_prompts, completions=conv_completions)
    assert conv == pytest.approx(expected, abs=1e-5)
    # A system turn is part of what the model reads ("System: ...\n\nUser: ..."), as in training.
    with_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    assert rm(prompts=[with_system], completions=[conv_completions[0]])[0] == pytest.approx(
        rm.score("System: Be brief.\n\nUser: " + PROMPT, RESPONSES[0]), abs=1e-5)


def test_bad_inputs_are_clear_errors(tmp_path, finetuned_dir):
    with pytest.raises(RewardModelError, match="not a folder"):
        rmstudio.load_reward_model(tmp_path / "missing")
    rm = rmstudio.load_reward_model(finetuned_dir, device="cpu")
    with pytest.raises(RewardModelError, match="2 prompts but 1 completions"):
        rm(prompts=["a", "b"], completions=["c"])
    with pytest.raises(RewardModelError, match="completion: expected a string"):
        rm(prompts=["a"], completions=[3])


@pytest.mark.parametrize("conversational", [False, True])
def test_grpo_trains_with_the_reward_model_as_a_reward_function(instant_dir, tmp_path, conversational):
    from datasets import Dataset
    from tiny_models import tiny_model_and_tokenizer
    from trl import GRPOConfig, GRPOTrainer

    rm = rmstudio.load_reward_model(instant_dir, device="cpu")
    calls = []
    original = rm.score_rows
    rm.score_rows = lambda prompts, responses, sink=None: calls.append((prompts, responses)) or original(
        prompts, responses, sink)
    policy, tokenizer = tiny_model_and_tokenizer(seed=1)
    args = GRPOConfig(output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=4, max_steps=1, report_to=[], use_cpu=True, logging_steps=1,
                      save_strategy="no")
    prompt = [{"role": "user", "content": PROMPT}] if conversational else PROMPT
    trainer = GRPOTrainer(model=policy, reward_funcs=[rm], args=args, processing_class=tokenizer,
                          train_dataset=Dataset.from_list([{"prompt": prompt}] * 4))
    trainer.train()
    logged = [e for e in trainer.state.log_history if "rewards/reward_model/mean" in e]
    assert logged and np.isfinite(logged[0]["rewards/reward_model/mean"])
    # TRL's conversations reached the model flattened: the prompt as the importer renders it.
    assert calls and all(p == PROMPT for p in calls[0][0]) and all(isinstance(r, str) for r in calls[0][1])
