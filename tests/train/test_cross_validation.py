"""Validation on small projects: the held-out share is honoured as a count, the preview says what
the run uses, and an instant run cross-validates by prompt when the share would hold out too few."""

import random

import numpy as np
import pytest
from builders import synthetic_project
from tiny_models import save_tiny_model

from rmstudio.core.data.records import Text
from rmstudio.core.reward import instant as instant_module
from rmstudio.core.reward.cross_validation import MIN_VAL_PAIRS, plan_split, prompt_folds
from rmstudio.core.reward.data import TrainingPair, held_out_count, split_by_prompt
from rmstudio.core.reward.instant_solver import fit_linear_newton, one_thread
from rmstudio.core.reward.train import RewardTrainConfig, split_preview, train_reward_model
from rmstudio.core.store.project import Project


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _pairs(prompts: int, per_prompt: int = 1) -> list[TrainingPair]:
    return [TrainingPair(i * 10 + j, i, Text(f"prompt {i}"), 2 * (i * 10 + j), Text("a"),
                         2 * (i * 10 + j) + 1, Text("b")) for i in range(prompts) for j in range(per_prompt)]


def test_held_out_prompts_track_the_share_on_any_size():
    rng = random.Random(0)
    for prompts in range(0, 80):
        pairs = _pairs(prompts, per_prompt=rng.choice([1, 2, 3]))
        smaller: set = set()
        for share in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.9):
            train, val = split_by_prompt(pairs, share, seed=prompts)
            held = {p.prompt_id for p in val}
            expected = 0 if share == 0 or prompts < 2 else min(prompts - 1, max(1, round(share * prompts)))
            assert len(held) == expected == held_out_count(prompts, share), (prompts, share)
            assert held.isdisjoint({p.prompt_id for p in train})
            assert len(train) + len(val) == len(pairs)
            assert smaller <= held  # a larger share holds out a superset
            smaller = held
            # the order of the pairs changes nothing
            assert sorted(p.comparison_id for p in split_by_prompt(pairs[::-1], share, prompts)[1]) == \
                sorted(p.comparison_id for p in val)
    # the numbers: 15 prompts at 10/20/30/50% hold out 2/3/4/8 (was 0, 0, 1, 4)
    assert [held_out_count(15, s) for s in (0.1, 0.2, 0.3, 0.5)] == [2, 3, 4, 8]


def test_folds_are_by_prompt_and_balanced():
    pairs = _pairs(23, per_prompt=2)
    fold_of = prompt_folds(pairs, 5, seed=1)
    by_prompt: dict = {}
    for pair, fold in zip(pairs, fold_of):
        by_prompt.setdefault(pair.prompt_id, set()).add(fold)
    assert all(len(folds) == 1 for folds in by_prompt.values())  # a prompt sits in one fold
    sizes = np.bincount([next(iter(f)) for f in by_prompt.values()], minlength=5)
    assert sizes.max() - sizes.min() <= 1
    assert plan_split(_pairs(3), 0.1, 0).folds == 3  # fewer folds with fewer prompts
    assert not plan_split(_pairs(1), 0.1, 0).cross_validated  # one prompt: nothing to hold out
    assert not plan_split(_pairs(40), 0.1, 0, method="lora").cross_validated
    assert not plan_split(_pairs(40), 0.1, 0, mode="off").cross_validated
    assert not plan_split(_pairs(400), 0.1, 0).cross_validated  # 40 validation pairs: enough
    assert plan_split(_pairs(250), 0.1, 0).cross_validated and 250 * 0.1 < MIN_VAL_PAIRS


def test_newton_solver_reaches_the_lbfgs_optimum():
    import torch

    from rmstudio.core.reward.losses import bradley_terry_loss

    gen = torch.Generator().manual_seed(0)
    x_c, x_r = torch.randn(30, 200, generator=gen), torch.randn(30, 200, generator=gen)
    target, margin = torch.ones(30), torch.zeros(30)
    target[:4], margin[4:8] = 0.5, 1.0

    def objective_tensor(w, l2):
        return bradley_terry_loss(x_c @ w, x_r @ w, target, margin) + l2 * (w ** 2).sum()

    def objective(w, l2):
        return objective_tensor(w, l2).item()

    for l2 in (1e-3, 1e-1):
        with one_thread():
            w_newton = fit_linear_newton(x_c, x_r, target, margin, l2)
        w = torch.zeros(200, requires_grad=True)
        optimizer = torch.optim.LBFGS([w], max_iter=3000, line_search_fn="strong_wolfe",
                                      tolerance_grad=1e-12)

        def closure(w=w, optimizer=optimizer, l2=l2):
            optimizer.zero_grad()
            loss = objective_tensor(w, l2)
            loss.backward()
            return loss

        optimizer.step(closure)
        assert objective(w_newton, l2) <= objective(w.detach(), l2) + 1e-6


def test_preview_counts_are_the_run_counts(tmp_path, tiny_dir):
    path = synthetic_project(tmp_path, n=60)
    for mode in ("off", "auto"):
        config = RewardTrainConfig(base=str(tiny_dir), device="cpu", val_fraction=0.2, cross_validation=mode)
        with Project.open(path) as project:
            preview = split_preview(project, config)
        result = train_reward_model(path, config)
        assert (preview["train"], preview["val"]) == (result["train_pairs"], result["val_pairs"])
        assert preview["folds"] == (result.get("cross_validation") or {}).get("folds", 0)
    assert preview["folds"] == 5 and preview["train"] == 60  # 12 validation pairs: it cross-validated


def test_instant_run_cross_validates_in_k_folds_and_fits_the_final_model_on_all(tmp_path, tiny_dir,
                                                                                 monkeypatch):
    path = synthetic_project(tmp_path, n=40)
    fits = []
    original = instant_module.train_instant
    monkeypatch.setattr(instant_module, "train_instant",
                        lambda train, val, config=None: fits.append((len(train[0]), val is None)) or
                        original(train, val, config))
    result = train_reward_model(path, RewardTrainConfig(base=str(tiny_dir), device="cpu"))
    cv = result["cross_validation"]
    assert cv["folds"] == 5 and len(cv["per_fold"]) == 5
    assert sum(f["pairs"] for f in cv["per_fold"]) == 40 and all(f["pairs"] == 8 for f in cv["per_fold"])
    assert cv["accuracy_mean"] > 0.8 and cv["accuracy_std"] >= 0
    assert cv["accuracy_mean"] == pytest.approx(np.mean([f["accuracy"] for f in cv["per_fold"]]))
    # each fold's head trains on the other 32 pairs, and the saved one on all 40
    assert [n for n, no_val in fits if no_val] == [32] * 5 + [40]
    assert result["train_pairs"] == 40 and result["val_pairs"] == 0
    # every pair has one out-of-fold score, and the evaluation is made of them
    evaluation = result["evaluation"]
    assert evaluation["pairs"] == 40 and len(evaluation["rewards_chosen"]) == 40
    assert evaluation["accuracy"] == pytest.approx(result["metrics"]["val/accuracy"])
    assert result["metrics"]["cv/accuracy"] == pytest.approx(cv["accuracy_mean"])
    assert evaluation["cross_validation"]["folds"] == 5


def test_cli_says_cross_validated_and_warns_on_a_tiny_split(tmp_path, tiny_dir, capsys):
    from rmstudio.cli import main

    path = synthetic_project(tmp_path, n=30)
    assert main(["train-rm", str(path), "--base", str(tiny_dir), "--device", "cpu"]) == 0
    printed = capsys.readouterr()
    assert "5-fold cross-validation by prompt" in printed.out
    assert "cross-validated accuracy" in printed.out and "per fold" in printed.out
    assert "warning" not in printed.err
    assert main(["train-rm", str(path), "--base", str(tiny_dir), "--device", "cpu",
                 "--cross-validation", "off"]) == 0
    printed = capsys.readouterr()
    assert "27 train / 3 validation pairs" in printed.out
    assert "rmstudio: warning: only 3 validation pairs" in printed.err
    assert main(["train-rm", str(path), "--base", str(tiny_dir), "--device", "cpu",
                 "--cross-validation", "off", "--val-fraction", "0"]) == 0
    assert "rmstudio: warning: no validation pairs" in capsys.readouterr().err


def test_live_model_reports_a_validation_figure_on_a_small_project(tmp_path, tiny_dir):
    from rmstudio.core.reward.live import LiveInstantModel

    path = synthetic_project(tmp_path, n=12)  # the 20% share would hold out 2 pairs (0 before the fix)
    live = LiveInstantModel(base=str(tiny_dir), device="cpu")
    status = live.refresh(path)
    assert status.folds == 5 and status.val_pairs == 12
    assert status.val_accuracy is not None and 0 <= status.val_accuracy <= 1
    assert status.val_accuracy_std is not None
    assert {"read", "load", "features", "fit"} <= set(status.timings)
    again = live.refresh(path)  # warm: nothing to load or embed
    assert "load" not in again.timings and again.timings["features"] < again.seconds
