"""Before/after comparison of a policy run: the win-rate arithmetic, a tiny run's held-out prompts
sampled from both policies and scored, the pairs sent to labeling and the humans' verdict read back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from builders import synthetic_project
from policy_helpers import GRPO, run, save_policy_model

from rmstudio.core.models.generation import GenerationConfig
from rmstudio.core.policy.compare import (START_NAME, CompareError, compare_policies, human_win_rate,
                                          score_win_rate, send_comparisons_to_labeling, wilson_interval,
                                          win_rate)
from rmstudio.core.policy.config import PolicyConfig
from rmstudio.core.store.project import Project


def test_win_rate_counts_ties_half_with_a_wilson_interval():
    rate = win_rate(wins=6, losses=2, ties=2)
    assert rate.n == 10 and rate.rate == pytest.approx(0.7)
    # Wilson by hand: centre (p + z²/2n) / (1 + z²/n), half z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)
    z = 1.959963984540054
    centre = (0.7 + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(0.7 * 0.3 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (rate.low, rate.high) == pytest.approx((centre - half, centre + half))
    assert (rate.low, rate.high) == pytest.approx((0.3968, 0.8922), abs=1e-4)
    # at the edges the interval stays inside [0, 1] and is not empty
    low, high = wilson_interval(1.0, 5)
    assert high == 1.0 and low == pytest.approx(0.5655, abs=1e-4)
    assert wilson_interval(0.0, 5) == pytest.approx((0.0, 1 - 0.5655), abs=1e-4)
    assert win_rate(0, 0, 0).rate is None and wilson_interval(0.5, 0) == (0.0, 1.0)
    scored = score_win_rate([1.0, 2.0, 3.0, 0.5], [0.0, 2.0, 4.0, 0.1])
    assert (scored.wins, scored.ties, scored.losses, scored.rate) == (2, 1, 1, 0.625)


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    """A 3-step GRPO run with a large learning rate, so the tuned policy samples differently."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("compare")
    project_path = synthetic_project(tmp, n=20)
    config = PolicyConfig(policy=str(save_policy_model(tmp / "policy")), learning_rate=5e-2, max_steps=3,
                          save_steps=100, held_out_fraction=0.25, **{**GRPO, "per_device_batch": 8})
    try:
        result, _, [record], _ = run(project_path, config)
        sampling = GenerationConfig(max_new_tokens=12, temperature=1.0, seed=3)
        comparison = compare_policies(project_path, record["id"], sampling=sampling, device="cpu")
        yield project_path, record["id"], result, comparison
    finally:
        torch.set_num_threads(threads)


def test_each_held_out_prompt_gets_both_policies_scored(tuned_run):
    project_path, run_id, result, comparison = tuned_run
    held = [json.loads(line)["prompt"] for line in
            (Path(result["model_dir"]).parent / "held_out.jsonl").read_text().splitlines()]
    assert len(held) >= 3 and [r.prompt for r in comparison.rows] == held
    assert all(r.start and r.tuned for r in comparison.rows)
    assert any(r.start != r.tuned for r in comparison.rows)  # the tuning changed what it samples
    assert comparison.reward_spec == "policy_helpers:even_share"
    assert comparison.tuned_name == f"policy run {run_id} step 3" and comparison.start_name == START_NAME
    rows = comparison.rows
    assert comparison.reward.n == len(rows)
    assert comparison.reward.wins == sum(r.reward_tuned > r.reward_start for r in rows)
    assert 0 <= comparison.reward.low <= comparison.reward.rate <= comparison.reward.high <= 1
    assert comparison.check is None
    saved = json.loads((Path(result["model_dir"]).parent / "comparison.json").read_text())
    assert saved["reward"]["rate"] == comparison.reward.rate and len(saved["rows"]) == len(rows)


def test_the_same_seed_gives_the_same_responses_and_a_check_scores_too(tuned_run):
    project_path, run_id, _, comparison = tuned_run

    def length(prompts, completions, **kwargs):
        return [float(len(c)) for c in completions]

    folder = Path(comparison.run_folder)  # the run named by its folder this time
    # the same prompts and seed (prompts are sampled in batches, so the same batches too)
    again = compare_policies(project_path, folder, device="cpu", check=length,
                             sampling=GenerationConfig(max_new_tokens=12, temperature=1.0, seed=3))
    assert again.run_id == run_id and again.tuned_name == comparison.tuned_name
    assert [(r.start, r.tuned) for r in again.rows] == [(r.start, r.tuned) for r in comparison.rows]
    assert [r.check_tuned for r in again.rows] == [float(len(r.tuned)) for r in again.rows]
    assert again.check is not None and again.check.n == len(comparison.rows) and again.check_spec == "length"


def test_sent_pairs_carry_the_model_names_and_human_labels_count(tuned_run):
    project_path, run_id, _, comparison = tuned_run
    differing = [r for r in comparison.rows if r.start.strip() != r.tuned.strip()]
    with Project.open(project_path) as project:
        assert human_win_rate(project, run_id).comparisons == 0
        sent = send_comparisons_to_labeling(project, comparison)
        assert sent["sent"] == len(differing) and sent["skipped"] == len(comparison.rows) - len(differing)
        assert sent["added"] == len(differing)
        assert send_comparisons_to_labeling(project, comparison)["added"] == 0  # deduplicated
        tuned_side = {}
        for cid in sent["comparison_ids"]:
            c = project.comparison(cid)
            models = [project.conn.execute("SELECT model FROM responses WHERE id = ?", (i,)).fetchone()[0]
                      for i in (c.response_a_id, c.response_b_id)]
            assert sorted(models) == sorted([START_NAME, comparison.tuned_name])
            tuned_side[cid] = "a" if models[0] == comparison.tuned_name else "b"
        verdict = human_win_rate(project, run_id)
        assert (verdict.comparisons, verdict.labeled, verdict.win.rate) == (len(differing), 0, None)

        ids = sent["comparison_ids"]
        other = {"a": "b", "b": "a"}
        project.set_label(ids[0], "ann", tuned_side[ids[0]])        # tuned wins
        project.set_label(ids[0], "bob", "tie")                     # a second annotator: a tie
        project.set_label(ids[1], "ann", other[tuned_side[ids[1]]])  # start wins
        if len(ids) > 2:
            project.set_label(ids[2], "ann", "both_bad")            # no preference: left out
        verdict = human_win_rate(project, run_id)
        assert (verdict.win.wins, verdict.win.ties, verdict.win.losses) == (1, 1, 1)
        assert verdict.win.rate == pytest.approx(0.5) and verdict.labeled == 2
        assert verdict.both_bad == (1 if len(ids) > 2 else 0)
        assert human_win_rate(project, run_id + 1).comparisons == 0  # another run's are apart


def test_a_folder_that_is_no_policy_run_is_refused(tmp_path):
    project_path = synthetic_project(tmp_path, n=4)
    with pytest.raises(CompareError, match="not the folder of a policy run"):
        compare_policies(project_path, 99)
    with pytest.raises(CompareError, match="not the folder of a policy run"):
        compare_policies(project_path, tmp_path)
    # a DPO run optimised no reward: without one in the project, nothing can score the pairs
    folder = project_path.with_name("syn.runs") / "run-3"
    folder.mkdir(parents=True)
    (folder / "policy.json").write_text(json.dumps({"base": "x", "lora": True, "method": "dpo"}))
    (folder / "held_out.jsonl").write_text("")
    with pytest.raises(CompareError, match="run 3 held out no prompts"):
        compare_policies(project_path, 3)
    with pytest.raises(CompareError, match="optimised no reward model and the project has none"):
        compare_policies(project_path, 3, prompts=["a question"], device="cpu")


def test_held_out_prompts_are_listed_once_with_their_turns_from_the_project(tmp_path):
    from rmstudio.core.policy.compare import held_out_prompts

    project_path = synthetic_project(tmp_path, n=3)
    with Project.open(project_path) as project:
        ids = [r[0] for r in project.conn.execute("SELECT id FROM prompts ORDER BY id")]
    folder = tmp_path / "run-5"
    folder.mkdir()
    rows = [{"prompt_id": ids[1], "prompt": "question 1"}, {"prompt_id": ids[1], "prompt": "question 1"},
            {"prompt_id": 999, "prompt": "gone from the project"}]  # a DPO run lists a prompt per pair
    (folder / "held_out.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    held = held_out_prompts(project_path, folder)
    assert [pid for pid, _ in held] == [ids[1], 999]
    assert held[0][1].text.startswith("question 1:") and held[1][1].text == "gone from the project"


def test_a_full_fine_tune_is_compared_against_its_base(tmp_path, policy_model):
    project_path = synthetic_project(tmp_path, n=12)
    config = PolicyConfig(policy=str(policy_model), learning_rate=1e-2, max_steps=2, save_steps=100,
                          held_out_fraction=0.25, lora=False, **{**GRPO, "per_device_batch": 8})
    _, _, [record], _ = run(project_path, config)
    comparison = compare_policies(project_path, record["id"], n_prompts=2, device="cpu",
                                  sampling=GenerationConfig(max_new_tokens=8, temperature=1.0))
    assert len(comparison.rows) == 2 and comparison.tuned_name == f"policy run {record['id']} step 2"
    assert any(r.start != r.tuned for r in comparison.rows)


def test_a_cancelled_run_is_named_by_the_step_of_its_checkpoint(tmp_path):
    """Cancelled at step 7 with its last checkpoint at step 5: the weights compared are step 5's,
    and so is the name the pairs get in the label queue."""
    from rmstudio.core.policy.compare import policy_step, tuned_name
    from rmstudio.core.policy.export import _source

    folder = tmp_path / "run-4"
    for step in (3, 5):
        checkpoint = folder / "checkpoints" / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "trainer_state.json").write_text("{}")
    (folder / "result.json").write_text(json.dumps({"status": "cancelled", "steps": 7}))
    source = _source(folder)
    assert source.name == "checkpoint-5"
    assert policy_step(folder, source) == 5
    assert tuned_name(4, policy_step(folder, source)) == "policy run 4 step 5"
    # a finished run's model/ is its final step; the guard's best is its own step
    (folder / "model").mkdir()
    (folder / "model" / "adapter_config.json").write_text("{}")
    assert policy_step(folder, _source(folder)) == 7
    (folder / "guard_best").mkdir()
    (folder / "guard_best" / "guard_best.json").write_text(json.dumps({"step": 2}))
    assert policy_step(folder, _source(folder, "best")) == 2
