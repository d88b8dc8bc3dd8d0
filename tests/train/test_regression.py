"""The regression objective: a reward that predicts ratings (rankings imported with ratings)."""

import numpy as np
import pytest
from builders import rated_project, synthetic_project
from tiny_models import save_tiny_model

from rmstudio.core.errors import RmstudioError
from rmstudio.core.store.project import Project
from rmstudio.core.data.records import Text
from rmstudio.core.reward.data import RatedResponse, snapshot_ratings
from rmstudio.core.reward.evaluate import evaluate_ratings
from rmstudio.core.reward.instant import train_instant_regression
from rmstudio.core.reward.scoring import load_reward_model
from rmstudio.core.reward.train import RewardTrainConfig, split_preview, train_reward_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_ratings_are_snapshotted_and_orders_are_not(tmp_path):
    path = rated_project(tmp_path, n=10)
    ranked = tmp_path / "ranked.jsonl"
    ranked.write_text('{"prompt": "q?", "responses": ["x", "y"], "ranks": [1, 2]}\n')
    from rmstudio.core.data.importer import import_files

    with Project.open(path) as project:
        import_files(project, [ranked])
        ratings = snapshot_ratings(project)
        assert len(ratings) == 30 and {r.prompt.text for r in ratings} == {f"question {i}?" for i in range(10)}
        assert all(r.rating == r.response.text.split().count("Paris") for r in ratings)
        preview = split_preview(project, RewardTrainConfig(objective="regression", val_fraction=0.3))
        assert preview["ratings"] == 30 and preview["train"] + preview["val"] == 30


def test_ridge_regression_recovers_a_linear_rating():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    y = (x @ np.arange(8.0) + rng.normal(scale=0.1, size=400)).astype(np.float32)
    y = (y - y.mean()) / y.std()
    fitted = train_instant_regression((x[:300], y[:300]), (x[300:], y[300:]))
    assert fitted.val_metrics["pearson"] > 0.99 and fitted.val_metrics["mse"] < 0.02
    assert fitted.l2 <= 1.0 and len(fitted.tried) == 6


def test_evaluate_ratings_on_the_rating_scale_and_implied_pairs():
    items = [RatedResponse(1, Text("p"), i, Text("r" * (i + 1)), rating=float(r), annotator="ann")
             for i, r in enumerate([1, 2, 3])]
    report = evaluate_ratings(items, np.array([-1.0, 0.0, 1.5]), rating_mean=2.0, rating_std=1.0)
    assert report["mse"] == pytest.approx(0.5 ** 2 / 3)  # predicted ratings 1, 2, 3.5
    assert report["pairs"] == 3 and report["accuracy"] == 1.0 and report["spearman"] == pytest.approx(1.0)
    assert report["baseline_longer"] == 1.0  # the longer response is rated higher here
    tied = [RatedResponse(1, Text("p"), i, Text("r"), rating=float(r)) for i, r in enumerate([1, 1, 2, 2])]
    assert evaluate_ratings(tied, np.array([0.0, 0.0, 1.0, 1.0]))["spearman"] == pytest.approx(1.0)


def test_instant_regression_learns_ratings_and_scores_on_their_scale(tmp_path, tiny_dir):
    path = rated_project(tmp_path, n=80)
    config = RewardTrainConfig(method="instant", objective="regression", base=str(tiny_dir),
                               val_fraction=0.25, device="cpu")
    result = train_reward_model(path, config)
    assert result["status"] == "finished" and result["objective"] == "regression"
    evaluation = result["evaluation"]
    assert evaluation["responses"] == result["val_pairs"] > 20
    assert evaluation["pearson"] > 0.8 and evaluation["accuracy"] > 0.8
    assert result["metrics"]["val/pearson"] == pytest.approx(evaluation["pearson"], abs=1e-4)
    mean, std = result["rating_mean"], result["rating_std"]
    assert 1.0 < mean < 3.0 and std > 0.5
    scorer = load_reward_model(result["model_dir"], device="cpu")
    low, high = scorer.score(Text("question 3?"), [Text("dog fox sea egg"), Text("Paris Paris Paris Paris")])
    assert low * std + mean < 2 < high * std + mean  # on the rating's own scale
    assert "rating ≈ reward ×" in (tmp_path / "rated.runs" / f"run-{result['run_id']}" / "model" / "README.md").read_text()


def test_regression_without_ratings_says_what_it_needs(tmp_path, tiny_dir):
    path = synthetic_project(tmp_path, n=20)
    with pytest.raises(RmstudioError, match="no ratings to regress on"):
        train_reward_model(path, RewardTrainConfig(objective="regression", base=str(tiny_dir), device="cpu"))
    with pytest.raises(ValueError, match="objective must be one of"):
        RewardTrainConfig(objective="mse")


@pytest.mark.parametrize("method", ["lora", "full"])
def test_fine_tuned_regression_learns_and_exports_its_scale(tmp_path, tiny_dir, method):
    import json

    class Sink:
        def __init__(self):
            self.logs = []

        def log(self, step, metrics):
            self.logs.append((step, dict(metrics)))

        def should_stop(self):
            return False

    path = rated_project(tmp_path, n=80)
    sink = Sink()
    config = RewardTrainConfig(method=method, objective="regression", base=str(tiny_dir), val_fraction=0.25,
                               device="cpu", finetune={"epochs": 2, "batch_size": 8, "max_length": 32,
                                                       "learning_rate": 3e-3 if method == "lora" else 1e-3,
                                                       "eval_every_steps": 5, "bf16": False})
    result = train_reward_model(path, config, sink=sink)
    assert result["status"] == "finished" and not result["distilled"]  # no pairwise teacher for ratings
    val_mse = [(step, m["val/mse"]) for step, m in sink.logs if "val/mse" in m]
    assert val_mse[0][0] == 0 and len(val_mse) >= 3
    train_mse = [m["train/mse"] for _, m in sink.logs if "train/mse" in m]
    assert np.mean(train_mse[-3:]) < np.mean(train_mse[:3])
    evaluation = result["evaluation"]
    assert evaluation["pearson"] > 0.6 and evaluation["accuracy"] > 0.7
    stats = json.loads((tmp_path / "rated.runs" / f"run-{result['run_id']}" / "model" / "config.json")
                       .read_text())["rmstudio"]
    assert stats["rating_mean"] == pytest.approx(result["rating_mean"]) and stats["rating_std"] > 0.5
    scorer = load_reward_model(result["model_dir"], device="cpu")
    low, high = scorer.score(Text("question 3?"), [Text("dog fox sea egg"), Text("Paris Paris Paris Paris")])
    rating = lambda r: r * stats["rating_std"] + stats["rating_mean"]
    assert rating(low) < rating(high)


def test_the_regression_probe_is_the_model_exactly(tmp_path, tiny_dir):
    """The ridge probe folds into the score head and its constant moves the targets, so the
    model's own validation MSE and correlation are the probe's before any step."""
    from rmstudio.core.reward.finetune import (
        FinetuneConfig, encode_rated, _evaluate, fit_probe_head, shift_targets, load_reward_backbone as load_base)
    from rmstudio.core.reward.data import split_by_prompt

    with Project.open(rated_project(tmp_path, n=60)) as project:
        train, val = split_by_prompt(snapshot_ratings(project), 0.25, 0)
    model, tok = load_base(str(tiny_dir))
    scale = (2.0, 1.4)
    rows, _, _ = encode_rated(tok, train, 32, "truncate", scale)
    val_rows, _, _ = encode_rated(tok, val, 32, "truncate", scale)
    config = FinetuneConfig(method="full", objective="regression", bf16=False, device="cpu")

    class Quiet:
        def log(self, step, metrics):
            pass

        def should_stop(self):
            return False

    probe = fit_probe_head(model, rows, val_rows, tok.pad_token_id, False, True, config, Quiet())
    own = _evaluate(model, shift_targets(val_rows, probe["target_offset"]), tok.pad_token_id, 8, False, 0.0,
                    regression=True)
    assert probe["target_offset"] != 0.0
    assert own["mse"] == pytest.approx(probe["val/mse"], rel=1e-3, abs=1e-4)
    assert own["pearson"] == pytest.approx(probe["val/pearson"], abs=1e-3) and own["pearson"] > 0.5
