"""The LoRA / full reward-model trainer on tiny random Llamas (CPU, a few seconds each)."""

from __future__ import annotations

import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

import pytest  # noqa: E402
import torch  # noqa: E402

import tiny_models  # noqa: E402
from rmstudio.core.data.records import Text  # noqa: E402
from rmstudio.core.reward.data import TrainingPair  # noqa: E402
from rmstudio.core.reward.finetune import (  # noqa: E402
    FinetuneConfig, encode_pair_text, list_checkpoints, load_reward_backbone, score_texts, train_finetune,
)

WORDS = "the quick brown fox jumps over lazy dog sea wind poem tips sleep night egg water".split()


def make_pairs(n: int, seed: int = 0, prompt_words: int = 4) -> list[TrainingPair]:
    """Chosen responses end with ' Paris', rejected ones do not: learnable from the last token."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(prompt_words)) + "?"
        body = " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
        pairs.append(TrainingPair(
            comparison_id=i, prompt_id=i, prompt=Text(prompt), chosen_id=2 * i, chosen=Text(body + " Paris"),
            rejected_id=2 * i + 1, rejected=Text(body + " egg")))
    return pairs


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return str(tiny_models.save_tiny_model(tmp_path_factory.mktemp("tiny")))


class RecordingSink:
    def __init__(self, stop_after: int | None = None):
        self.logs: list[tuple[int, dict]] = []
        self.stop_after = stop_after
        self.step = 0

    def log(self, step, metrics):
        self.step = step
        self.logs.append((step, dict(metrics)))

    def should_stop(self):
        return self.stop_after is not None and self.step >= self.stop_after

    def series(self, key):
        return [m[key] for _, m in self.logs if key in m]


def config(**kw) -> FinetuneConfig:
    # A random head by default, so the tests below see the training loop learn from chance.
    base = dict(epochs=3, batch_size=8, max_length=32, eval_every_steps=5, save_every_steps=5, bf16=False,
                device="cpu", head_init="random")
    return FinetuneConfig(**(base | kw))


@pytest.mark.parametrize("method,lr", [("lora", 2e-2), ("full", 2e-3)])
def test_loss_decreases_and_params_change(base_dir, tmp_path, method, lr):
    sink = RecordingSink()
    before, _ = load_reward_backbone(base_dir)
    result = train_finetune(base_dir, make_pairs(64), make_pairs(16, seed=1),
                            config(method=method, learning_rate=lr),
                            tmp_path, sink)
    assert result["status"] == "finished" and result["steps"] == 24
    losses = sink.series("train/loss")
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.05
    assert result["val"]["accuracy"] > 0.8
    for key in ("train/accuracy", "train/margin", "train/mean_reward", "train/num_tokens", "epoch",
                "total_steps", "val/loss", "val/accuracy", "val/margin"):
        assert sink.series(key), key
    assert list_checkpoints(tmp_path), "no checkpoint written"
    meta = json.loads((list_checkpoints(tmp_path)[-1] / "meta.json").read_text())
    assert meta["config"]["method"] == method and meta["config"]["learning_rate"] == lr
    from transformers import AutoModelForSequenceClassification

    after = AutoModelForSequenceClassification.from_pretrained(result["model_dir"])
    changed = [n for n, p in after.state_dict().items() if not torch.equal(p, before.state_dict()[n])]
    assert any("score" in n for n in changed)
    assert any("layers.0" in n for n in changed)
    assert result["tokens_per_s"] > 0


def test_cancel_leaves_checkpoint_and_resume_finishes(base_dir, tmp_path):
    train, val = make_pairs(48), make_pairs(8, seed=1)
    cfg = config(method="lora", learning_rate=1e-2, save_every_steps=100, eval_every_steps=0)
    sink = RecordingSink(stop_after=2)
    result = train_finetune(base_dir, train, val, cfg, tmp_path / "run", sink)
    assert result["status"] == "cancelled" and result["steps"] == 2 and result["model_dir"] is None
    checkpoints = list_checkpoints(tmp_path / "run")
    assert [p.name for p in checkpoints] == ["step-2"]
    assert (checkpoints[0] / "adapter" / "adapter_config.json").is_file()
    assert (checkpoints[0] / "state.pt").is_file()

    resumed = train_finetune(base_dir, train, val, cfg, tmp_path / "run", RecordingSink(), resume=True)
    assert resumed["status"] == "finished" and resumed["steps"] == 18
    straight = train_finetune(base_dir, train, val, cfg, tmp_path / "straight", RecordingSink())
    assert resumed["val"]["loss"] == pytest.approx(straight["val"]["loss"], abs=1e-5)
    assert resumed["train"]["num_tokens"] == straight["train"]["num_tokens"]


def test_export_reload_scores_match(base_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    pairs, val = make_pairs(32), make_pairs(8, seed=1)
    result = train_finetune(base_dir, pairs, val, config(epochs=1, learning_rate=1e-2), tmp_path,
                            RecordingSink())
    model_dir = result["model_dir"]
    cfg = json.loads(open(os.path.join(model_dir, "config.json")).read())
    assert cfg["pad_token_id"] is not None and len(cfg["id2label"]) == 1
    assert "reward_std" in cfg["rmstudio"]
    assert "How to score" in open(os.path.join(model_dir, "README.md")).read()
    # Loaded as TRL's GRPOTrainer loads a reward_funcs path, and called as it calls it.
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    prompts = [p.prompt.text for p in pairs[:6]]
    responses = [p.chosen.text for p in pairs[:6]]
    scores = score_texts(model, tok, prompts, responses, max_length=32)
    inputs = tok(text=[p + r for p, r in zip(prompts, responses)], return_tensors="pt", padding=True,
                 padding_side="right", add_special_tokens=False)
    with torch.no_grad():
        trl_style = model(**inputs).logits[:, 0]
    assert torch.allclose(trl_style, torch.from_numpy(scores), atol=1e-4)
    assert float(scores.std()) > 0
    # The merged, reloaded model reproduces the validation loss of the trained (LoRA) model.
    r_chosen = score_texts(model, tok, [p.prompt.text for p in val], [p.chosen.text for p in val], 32)
    r_rejected = score_texts(model, tok, [p.prompt.text for p in val], [p.rejected.text for p in val], 32)
    loss = -torch.nn.functional.logsigmoid(torch.from_numpy(r_chosen - r_rejected)).mean().item()
    assert loss == pytest.approx(result["val"]["loss"], abs=1e-4)


def test_overlong_pairs_truncated_or_skipped(base_dir, tmp_path):
    _, tok = load_reward_backbone(base_dir)
    long_pairs = make_pairs(4, seed=3, prompt_words=40)
    pairs = make_pairs(12) + long_pairs
    encoded = encode_pair_text(tok, [long_pairs[0].prompt.text], [long_pairs[0].chosen.text], 16)
    ids, cut = encoded[0]
    assert cut and len(ids) == 16
    full = tok(long_pairs[0].prompt.text + long_pairs[0].chosen.text, add_special_tokens=False).input_ids
    assert ids == full[-16:]  # a short response survives whole, the prompt loses its start

    truncated = train_finetune(base_dir, pairs, [], config(epochs=1, max_length=24), tmp_path / "t",
                               RecordingSink())
    assert truncated["truncated"] == 4 and truncated["skipped"] == 0
    skipped = train_finetune(base_dir, pairs, [], config(epochs=1, max_length=24, overlong="skip"),
                             tmp_path / "s", RecordingSink())
    assert skipped["skipped"] == 4 and skipped["truncated"] == 0 and skipped["steps"] == 2


@pytest.mark.parametrize("kwargs,message", [
    ({"method": "qlora"}, "method must be one of"),
    ({"batch_size": 0}, "batch_size must be a whole number >= 1"),
    ({"learning_rate": -1.0}, "learning_rate must be"),
    ({"overlong": "wrap"}, "overlong must be one of"),
    ({"max_length": 2}, "max_length must be"),
    ({"lora_target_modules": []}, "lora_target_modules"),
    ({"head_init": "zeros"}, "head_init must be one of"),
    ({"probe_pairs": 0}, "probe_pairs must be a whole number >= 1"),
])
def test_bad_config_is_a_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FinetuneConfig(**kwargs)


def test_default_learning_rate_per_method():
    assert FinetuneConfig(method="lora").lr == 1e-4
    assert FinetuneConfig(method="full").lr == 3e-5


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_shared_prompt_rewards_equal_separate_sequences(base_dir, attention):
    from rmstudio.core.reward.finetune import encode_pairs, pair_rewards

    model, tok = load_reward_backbone(base_dir)
    model.set_attn_implementation(attention)
    model.eval()
    pairs = make_pairs(6, seed=5) + make_pairs(2, seed=6, prompt_words=30)  # two truncated ones
    pairs.append(TrainingPair(99, 99, Text("same?"), 1, Text(" same"), 2, Text(" same")))
    rows, truncated, _ = encode_pairs(tok, pairs, 24, "truncate")
    assert truncated == 2
    with torch.no_grad():
        packed = pair_rewards(model, rows, tok.pad_token_id, False, pack=True)
        padded = pair_rewards(model, rows, tok.pad_token_id, False, pack=False)
    for a, b in zip(packed, padded):
        assert torch.allclose(a, b, atol=1e-5)
    plain = score_texts(model, tok, [p.prompt.text for p in pairs], [p.chosen.text for p in pairs], 24)
    assert torch.allclose(packed[0], torch.from_numpy(plain), atol=1e-5)


def test_unshared_batches_train_too(base_dir, tmp_path):
    result = train_finetune(base_dir, make_pairs(32), make_pairs(8, seed=1),
                            config(epochs=1, learning_rate=1e-2, share_prompt=False), tmp_path,
                            RecordingSink())
    assert result["status"] == "finished" and result["steps"] == 4


def test_probe_head_scores_as_the_probe_fitted_it(base_dir):
    """The probe's standardisation folds into the head exactly: the model's own rewards give
    the probe's validation accuracy and margin, and a learnable preference is learned at once."""
    from rmstudio.core.reward.finetune import encode_pairs, _evaluate, fit_probe_head

    model, tok = load_reward_backbone(base_dir)
    rows, _, _ = encode_pairs(tok, make_pairs(64), 32, "truncate")
    val_rows, _, _ = encode_pairs(tok, make_pairs(16, seed=1), 32, "truncate")
    before = _evaluate(model, val_rows, tok.pad_token_id, 8, False, 0.0)
    sink = RecordingSink()
    probe = fit_probe_head(model, rows, val_rows, tok.pad_token_id, False, True,
                            config(head_init="probe", probe_pairs=48), sink)
    after = _evaluate(model, val_rows, tok.pad_token_id, 8, False, 0.0)
    assert probe["pairs"] == 48 and probe["val_pairs"] == 16 and probe["covers_val"]
    assert after["accuracy"] == pytest.approx(probe["val/accuracy"])
    assert after["margin"] == pytest.approx(probe["val/margin"], rel=1e-3, abs=1e-4)
    assert after["accuracy"] > 0.9 and after["loss"] < before["loss"] - 0.05
    assert sink.series("done")[-1] == 64 and "fit" in sink.series("stage")


def test_the_probe_head_does_not_depend_on_the_validation_pairs(base_dir):
    """Its L2 strength comes from folds of the training pairs, so validation only measures it:
    the same training pairs with any validation pairs give the same head."""
    from rmstudio.core.reward.finetune import encode_pairs, fit_probe_head, head_name

    heads = []
    for val_seed in (1, 2):
        model, tok = load_reward_backbone(base_dir)
        rows, _, _ = encode_pairs(tok, make_pairs(64), 32, "truncate")
        val_rows, _, _ = encode_pairs(tok, make_pairs(16, seed=val_seed)[:8 * val_seed], 32, "truncate")
        fit_probe_head(model, rows, val_rows, tok.pad_token_id, False, True,
                        config(head_init="probe", probe_pairs=64), RecordingSink())
        heads.append(getattr(model, head_name(model)).weight.detach().clone())
    assert torch.equal(heads[0], heads[1]) and heads[0].abs().sum() > 0


def test_l2_by_folds_prefers_strong_l2_for_noise_and_weak_l2_for_signal():
    """Held-out loss over folds of the training pairs: pure-noise features want the strongest
    L2 of the grid; one clean, strong feature wants a weak one. A prompt's pairs share a fold."""
    import numpy as np

    from rmstudio.core.reward.instant import l2_by_folds
    from rmstudio.core.reward.instant_config import InstantConfig

    rng = np.random.default_rng(0)
    n, dim = 120, 40
    x_c, x_r = rng.normal(size=(n, dim)), rng.normal(size=(n, dim))
    ones, zeros = np.ones(n, np.float32), np.zeros(n, np.float32)
    grid = InstantConfig(l2_grid=(1e-4, 1e-2, 1.0))
    noise_l2, losses = l2_by_folds((x_c, x_r, ones, zeros), [i // 2 for i in range(n)], grid)
    assert noise_l2 == 1.0 and losses[1.0] < losses[1e-4]
    x_c[:, 0] += 3.0  # the chosen response is told apart by one feature
    signal_l2, _ = l2_by_folds((x_c, x_r, ones, zeros), [i // 2 for i in range(n)], grid)
    assert signal_l2 < 1.0
    assert l2_by_folds((x_c, x_r, ones, zeros), [0] * n, grid)[0] == 1e-2  # one group: the middle


def test_watched_test_pairs_are_logged_and_choose_nothing(base_dir, tmp_path):
    """A monitor set gets its own test/* curve at every validation; the run, its chosen step
    and its weights are the same as without it."""
    settings = config(method="lora", learning_rate=2e-2, epochs=2, eval_every_steps=2)
    plain = train_finetune(base_dir, make_pairs(32), make_pairs(8, seed=1), settings, tmp_path / "plain",
                           RecordingSink())
    sink = RecordingSink()
    watched = train_finetune(base_dir, make_pairs(32), make_pairs(8, seed=1), settings, tmp_path / "watched",
                             sink, monitor_pairs=make_pairs(12, seed=5))
    val_steps = [step for step, m in sink.logs if "val/accuracy" in m]
    test_steps = [step for step, m in sink.logs if "test/accuracy" in m]
    assert test_steps == val_steps and len(test_steps) >= 3
    assert sink.series("test/accuracy")[-1] > 0.8  # the learnable rule holds on the watched pairs too
    assert watched["best_step"] == plain["best_step"]
    assert watched["val"]["loss"] == pytest.approx(plain["val"]["loss"], abs=1e-6)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_probe_initialised_run_starts_where_the_probe_left_it(base_dir, tmp_path, method):
    sink = RecordingSink()
    result = train_finetune(base_dir, make_pairs(64), make_pairs(16, seed=1),
                            config(method=method, head_init="probe", epochs=1, learning_rate=1e-3),
                            tmp_path, sink)
    first_val = [(step, m["val/accuracy"]) for step, m in sink.logs if "val/accuracy" in m][0]
    assert first_val[0] == 0 and first_val[1] > 0.9  # validated before the first step
    assert result["probe"]["val/accuracy"] == first_val[1]
    assert result["val"]["accuracy"] > 0.9
    assert result["train_seconds"] > 0 and result["tokens_per_s"] > 0
    meta = json.loads((list_checkpoints(tmp_path)[-1] / "meta.json").read_text()) if list_checkpoints(tmp_path) else None
    assert meta is None or meta["config"]["head_init"] == "probe"


def test_cancel_during_the_probe_stops_before_any_step_and_keeps_nothing(base_dir, tmp_path):
    class StopInProbe(RecordingSink):
        def should_stop(self):
            return any(m.get("stage") == "probe" for _, m in self.logs)

    result = train_finetune(base_dir, make_pairs(64), make_pairs(16, seed=1),
                            config(head_init="probe", batch_size=4), tmp_path, StopInProbe())
    assert result["status"] == "cancelled" and result["steps"] == 0
    assert result["checkpoint"] is None and result["model_dir"] is None
    assert not list_checkpoints(tmp_path)


def _val_loss_of_export(model_dir, val):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    prompts = [p.prompt.text for p in val]
    r_c = score_texts(model, tok, prompts, [p.chosen.text for p in val], 32)
    r_r = score_texts(model, tok, prompts, [p.rejected.text for p in val], 32)
    return -torch.nn.functional.logsigmoid(torch.from_numpy(r_c - r_r)).mean().item()


def test_the_best_validation_is_exported_and_survives_a_resume(base_dir, tmp_path):
    """Validation pairs that prefer what training learns to disprefer: validation only gets worse
    after the first check, so the export must be step 2's weights, even across a cancel and a
    resume; keep_best=False exports the last step."""
    train = make_pairs(64)
    flipped = [TrainingPair(comparison_id=p.comparison_id, prompt_id=p.prompt_id, prompt=p.prompt,
                            chosen_id=p.rejected_id, chosen=p.rejected, rejected_id=p.chosen_id,
                            rejected=p.chosen) for p in make_pairs(16, seed=1)]
    settings = dict(method="lora", learning_rate=2e-2, epochs=2, eval_every_steps=2, save_every_steps=2)
    cancelled = train_finetune(base_dir, train, flipped, config(**settings), tmp_path / "run",
                               RecordingSink(stop_after=3))
    assert cancelled["status"] == "cancelled"
    assert json.loads((tmp_path / "run" / "best" / "meta.json").read_text())["step"] == 2
    result = train_finetune(base_dir, train, flipped, config(**settings), tmp_path / "run", RecordingSink(),
                            resume=True)
    assert result["status"] == "finished" and result["steps"] == 16 and result["best_step"] == 2
    assert result["last_val"]["loss"] > result["val"]["loss"] + 0.5
    assert _val_loss_of_export(result["model_dir"], flipped) == pytest.approx(result["val"]["loss"], abs=1e-3)
    assert "step 2's: its validation loss beat the last step's" in (tmp_path / "run" / "model" / "README.md").read_text()
    assert not (tmp_path / "run" / "best").exists()  # the export is the best now

    last = train_finetune(base_dir, train, flipped, config(**settings, keep_best=False), tmp_path / "last",
                          RecordingSink())
    assert last["best_step"] == last["steps"] == 16
    assert _val_loss_of_export(last["model_dir"], flipped) == pytest.approx(last["val"]["loss"], abs=1e-3)
    assert last["val"]["loss"] > result["val"]["loss"] + 0.5


def test_an_earlier_step_within_the_validation_noise_does_not_replace_the_last(base_dir, tmp_path):
    """Flipped validation pairs and a learning rate so small that validation worsens by less than
    its standard error: the earliest step has the lowest loss, yet the last step is exported."""
    train = make_pairs(64)
    flipped = [TrainingPair(comparison_id=p.comparison_id, prompt_id=p.prompt_id, prompt=p.prompt,
                            chosen_id=p.rejected_id, chosen=p.rejected, rejected_id=p.chosen_id,
                            rejected=p.chosen) for p in make_pairs(16, seed=1)]
    sink = RecordingSink()
    result = train_finetune(base_dir, train, flipped, config(method="lora", learning_rate=2e-6, epochs=2,
                                                            eval_every_steps=2), tmp_path, sink)
    losses, errors = sink.series("val/loss"), sink.series("val/loss_se")
    assert min(losses) < losses[-1] < min(losses) + errors[-1]  # worse, but within the noise
    assert result["best_step"] == result["steps"] == 16
    assert result["val"]["loss"] == pytest.approx(losses[-1])


def test_distillation_trains_on_the_teacher_and_measures_on_the_label(base_dir, tmp_path):
    """A teacher that prefers every rejected response, at full weight: the model learns the
    teacher (its accuracy against the labels falls), though train/val accuracy count labels."""
    import dataclasses

    contrary = [dataclasses.replace(p, teacher=0.0) for p in make_pairs(64)]
    sink = RecordingSink()
    result = train_finetune(base_dir, contrary, make_pairs(16, seed=1),
                            config(method="lora", learning_rate=2e-2, distill_weight=1.0, keep_best=False),
                            tmp_path, sink)
    assert result["val"]["accuracy"] < 0.2 and sink.series("train/accuracy")[-1] < 0.5
    half = train_finetune(base_dir, contrary, make_pairs(16, seed=1),
                          config(method="lora", learning_rate=2e-2, distill_weight=0.0), tmp_path / "none",
                          RecordingSink())
    assert half["val"]["accuracy"] > 0.8  # weight 0: the teacher is ignored


def test_encoded_rows_mix_label_and_teacher():
    from rmstudio.core.reward.finetune import encode_pairs

    class Tok:
        eos_token_id = 0
        is_fast = False

        def __call__(self, texts, add_special_tokens=False, **_):
            return {"input_ids": [[ord(c) for c in t] for t in texts]} if isinstance(texts, list) else \
                {"input_ids": [ord(c) for c in texts]}

    import dataclasses

    pairs = make_pairs(3)
    pairs = [dataclasses.replace(pairs[0], teacher=0.2), dataclasses.replace(pairs[1], target=0.5, teacher=1.0),
             pairs[2]]
    rows, _, _ = encode_pairs(Tok(), pairs, 1000, "truncate", distill_weight=0.25)
    assert [r[2] for r in rows] == [1.0, 0.5, 1.0]  # the labels, for accuracy
    assert [r[4] for r in rows] == pytest.approx([0.8, 0.625, 1.0])  # what the loss sees


def test_weight_average_is_the_running_mean_and_survives_a_save(tmp_path):
    from rmstudio.core.reward.averaging import WeightAverage

    model = torch.nn.Linear(3, 1, bias=False)
    average, seen = WeightAverage(), []
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            model.weight.fill_(value)
        seen.append(model.weight.detach().clone())
        average.update(model)
    assert average.count == 3 and torch.allclose(average.state["weight"], torch.stack(seen).mean(0))
    average.save(tmp_path)
    loaded = WeightAverage.load(tmp_path)
    assert loaded.count == 3 and torch.equal(loaded.state["weight"], average.state["weight"])
    loaded.copy_into(model)
    assert torch.allclose(model.weight, torch.full((1, 3), 3.0))
    assert WeightAverage.load(tmp_path / "nothing-here").count == 0


@pytest.mark.parametrize("method", ["lora", "full"])
def test_an_averaged_run_exports_the_average_even_across_a_resume(base_dir, tmp_path, method):
    """average_last=0.5 exports the mean of the last 8 of 16 steps: validated as the run's last
    point, named in the model card, and the same when the run was cancelled inside the average."""
    settings = dict(method=method, learning_rate=2e-2 if method == "lora" else 2e-3, epochs=2,
                    eval_every_steps=4, save_every_steps=4, average_last=0.5, keep_best=False)
    whole = train_finetune(base_dir, make_pairs(64), make_pairs(16, seed=1), config(**settings),
                           tmp_path / "whole", RecordingSink())
    assert whole["averaged_steps"] == 8 and whole["best_step"] == 16
    assert _val_loss_of_export(whole["model_dir"], make_pairs(16, seed=1)) == pytest.approx(
        whole["val"]["loss"], abs=1e-3)
    assert "mean of the last 8 steps' weights" in (tmp_path / "whole" / "model" / "README.md").read_text()
    plain = train_finetune(base_dir, make_pairs(64), make_pairs(16, seed=1), config(**{**settings, "average_last": 0.0}),
                           tmp_path / "plain", RecordingSink())
    assert "averaged_steps" not in plain and plain["val"]["loss"] != pytest.approx(whole["val"]["loss"], abs=1e-6)

    cancelled = train_finetune(base_dir, make_pairs(64), make_pairs(16, seed=1), config(**settings),
                               tmp_path / "split", RecordingSink(stop_after=11))
    assert cancelled["status"] == "cancelled" and cancelled["steps"] == 11
    resumed = train_finetune(base_dir, make_pairs(64), make_pairs(16, seed=1), config(**settings),
                             tmp_path / "split", RecordingSink(), resume=True)
    assert resumed["averaged_steps"] == 8
    assert resumed["val"]["loss"] == pytest.approx(whole["val"]["loss"], abs=1e-4)
