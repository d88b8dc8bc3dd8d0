"""What a policy run reads: prompts split by a seeded hash, DPO pairs from preference labels only,
rows in TRL's string or chat format, and a reward model folder as a TRL reward function."""

import numpy as np
import pytest
from builders import add_pairs
from tiny_models import tiny_reward_classifier, tiny_tokenizer

from rmstudio.core.data.records import Message, Text
from rmstudio.core.policy import data
from rmstudio.core.policy.rewards import RewardSpecError, as_text, check_reward, reward_function
from rmstudio.core.reward.data import split_by_prompt
from rmstudio.core.store.inserts import ProjectWriter


def test_prompts_split_by_seeded_hash(project):
    add_pairs(project, 50)
    prompts = data.read_prompts(project)
    assert [p.prompt.text for p in prompts] == [f"prompt {i}" for i in range(50)]
    train, held = data.split_prompts(prompts, 0.2, seed=3)
    assert {p.prompt_id for p in train}.isdisjoint({p.prompt_id for p in held})
    assert len(train) + len(held) == 50 and 3 <= len(held) <= 20
    # a prompt's side depends on its text, not on the order
    assert data.split_prompts(prompts[::-1], 0.2, seed=3)[1] == held[::-1]
    assert data.split_prompts(prompts, 0.2, seed=4)[1] != held
    assert [p.prompt_id for p in held] == [
        p.prompt_id for p in split_by_prompt(prompts, 0.2, data.held_out_seed(3))[1]]
    assert data.split_prompts(prompts, 0.0, seed=3) == (prompts, [])


def test_held_out_prompts_are_independent_of_reward_validation_prompts(project):
    """A reward model trained with the same seed validates on prompts the policy also trains on:
    before the salt its validation prompts were all inside the policy's held-out ones, so a
    project labeled on the policy's training prompts gave it no validation pairs."""
    add_pairs(project, 200)
    prompts = data.read_prompts(project)
    policy_train, _ = data.split_prompts(prompts, 1 / 3, seed=0)
    reward_train, reward_val = split_by_prompt(prompts, 0.1, 0)
    assert reward_val and reward_train
    # the reward model's validation prompts fall on both sides of the policy's split
    trained = {p.prompt_id for p in policy_train}
    assert any(p.prompt_id in trained for p in reward_val)
    assert not all(p.prompt_id in trained for p in reward_val)
    # a reward model trained on the policy's training prompts only still validates on some
    labeled = [p for p in prompts if p.prompt_id in trained]
    assert split_by_prompt(labeled, 0.1, 0)[1]
    # DPO holds out the same prompts as GRPO
    _, held = data.split_prompts(prompts, 0.25, seed=5)
    assert data.split_pairs(prompts, 0.25, seed=5)[1] == held


def test_dpo_pairs_are_preferences_only(project):
    ids = add_pairs(project, 6)
    for cid, choice in zip(ids, ["a", "b", "tie", "both_bad", "skip"]):
        project.set_label(cid, "ann", choice)
    pairs = data.preference_pairs(project)
    assert [(p.comparison_id, p.chosen.text, p.rejected.text) for p in pairs] == [
        (ids[0], "answer A to 0", "answer B to 0"), (ids[1], "answer B to 1", "answer A to 1")]
    rows = data.dpo_rows(pairs, conversational=False)
    assert rows == {"prompt": ["prompt 0", "prompt 1"], "chosen": ["answer A to 0", "answer B to 1"],
                    "rejected": ["answer B to 0", "answer A to 1"]}
    chat = data.dpo_rows(pairs, conversational=True)
    assert chat["prompt"][0] == [{"role": "user", "content": "prompt 0"}]
    assert chat["chosen"][1] == [{"role": "assistant", "content": "answer B to 1"}]


def test_prompt_rows_keep_conversations_and_parse_dialogues(project):
    with project.write():
        writer = ProjectWriter(project)
        writer.prompt(Text("Sys and user", (Message("system", "Be short."), Message("user", "Hi?"))))
        writer.prompt(Text("\n\nHuman: Hello?\n\nAssistant:"))
    rows = data.prompt_rows(data.read_prompts(project), conversational=True)
    assert rows == [[{"role": "system", "content": "Be short."}, {"role": "user", "content": "Hi?"}],
                    [{"role": "user", "content": "Hello?"}]]
    assert data.prompt_rows(data.read_prompts(project), conversational=False)[0] == "Sys and user"


def test_long_prompts_are_left_out_by_tokens_with_the_chat_template():
    tokenizer = tiny_tokenizer()
    short, long = [{"role": "user", "content": "Paris"}], [{"role": "user", "content": "the sea " * 40}]
    assert data.prompt_tokens(tokenizer, short) < data.prompt_tokens(tokenizer, long)
    assert data.prompt_tokens(tokenizer, short) > data.prompt_tokens(tokenizer, "Paris")  # template counted
    limit = data.prompt_tokens(tokenizer, short)
    assert data.within_length(["s", "l"], [short, long], tokenizer, limit) == (["s"], [short])


def test_as_text_reads_trl_strings_and_turns():
    assert as_text("hi") == Text("hi")
    turns = [{"role": "user", "content": "Hello?"}]
    assert as_text(turns) == Text("Hello?", (Message("user", "Hello?"),))
    reply = [{"role": "assistant", "content": "Paris."}]
    assert as_text(reply).text == "Paris."


def test_a_reward_model_folder_is_a_trl_reward_function(tmp_path):
    model, tokenizer = tiny_reward_classifier()
    folder = tmp_path / "rm"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    reward = reward_function(str(folder), device="cpu")
    assert reward.__name__ == "reward_model"
    plain = reward(prompts=["What is the capital?", "What is the capital?"],
                   completions=["Paris.", "The dog."], completion_ids=[[1], [2]])
    chat = reward(prompts=[[{"role": "user", "content": "What is the capital?"}]] * 2,
                  completions=[[{"role": "assistant", "content": "Paris."}],
                               [{"role": "assistant", "content": "The dog."}]])
    assert len(plain) == 2 and all(isinstance(v, float) for v in plain)
    assert plain[0] != plain[1]
    np.testing.assert_allclose(chat, plain, rtol=1e-5)  # a lone user turn reads as its text
    check_reward(str(folder))


def test_a_reward_that_names_nothing_is_refused_in_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for spec, match in [(str(tmp_path / "empty"), "holds no reward model"),
                        ("no_such_module_xyz:f", "cannot import"),
                        ("policy_helpers:missing", "has no function"),
                        (str(tmp_path / "nope"), "no such reward")]:
        with pytest.raises(RewardSpecError, match=match) as err:
            check_reward(spec)
        assert "\n" not in str(err.value)
    assert reward_function("policy_helpers:even_share").__name__ == "even_share"
