"""The comparison samples its prompts in left-padded batches, not one prompt at a time, and each
prompt keeps its own answer whatever the batch it was sampled in."""

from __future__ import annotations

from policy_helpers import save_policy_model

from rmstudio.core.data.records import Text
from rmstudio.core.models.generation import GenerationConfig
from rmstudio.core.progress import NullSink


def test_prompts_are_generated_in_batches_and_answers_stay_with_their_prompts(tmp_path):
    from rmstudio.core.models.loading import load_causal_lm
    from rmstudio.core.policy.compare_sampling import sample_responses

    model, tokenizer = load_causal_lm(str(save_policy_model(tmp_path / "policy")), device="cpu")
    model.eval()
    calls = []
    generate = model.generate
    model.generate = lambda **kw: calls.append(kw["input_ids"].shape) or generate(**kw)
    prompts = [(None, Text("question " + "word " * (i * 3 % 7))) for i in range(10)]
    # nearly greedy: the same answer alone or in a padded batch
    sampling = GenerationConfig(max_new_tokens=6, temperature=1e-4, seed=1)
    batched = sample_responses(model, tokenizer, prompts, sampling, False, NullSink(), 0, 10, batch=4)
    assert [shape[0] for shape in calls] == [4, 4, 2]  # three generate calls for ten prompts
    calls.clear()
    alone = sample_responses(model, tokenizer, prompts, sampling, False, NullSink(), 0, 10, batch=1)
    assert len(calls) == 10
    assert batched == alone and any(batched)
