"""The instant reward model on tiny random backbones: features, training, runs, save/load."""


import numpy as np
import pytest
import torch
from builders import synthetic_project
from conftest import write_jsonl
from tiny_models import save_tiny_model, tiny_model_and_tokenizer

from rmstudio.core.errors import RmstudioError
from rmstudio.core.data.importer import import_files
from rmstudio.core.store.project import Project
from rmstudio.core.data.records import Text
from rmstudio.core.reward.features import FeatureExtractor, FeatureSpec
from rmstudio.core.reward.instant_model import InstantRewardModel
from rmstudio.core.reward.train import RewardTrainConfig, split_preview, train_reward_model
from rmstudio.core.runs.store import list_runs, run_metrics



@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")




def test_shared_prompt_cache_gives_the_same_features_as_full_passes():
    model, tokenizer = tiny_model_and_tokenizer()
    spec = FeatureSpec(layers=(1, -1), pooling=("mean", "last"), max_prompt_tokens=64, max_response_tokens=64)
    extractor = FeatureExtractor(model, tokenizer, spec, "tiny")
    groups = [(Text("What is the capital of France?"), [Text(" Paris."), Text(" I do not know, sorry.")]),
              (Text("Boil an egg"), [Text(" eight minutes in water")])]
    shared = extractor.extract(groups)
    decoder = model.model
    with torch.no_grad():
        for row, (prompt, response) in enumerate([(g[0], r) for g in groups for r in g[1]]):
            p = tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
            r = tokenizer(response.text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            states = decoder(input_ids=torch.tensor([p + r]), output_hidden_states=True).hidden_states
            parts = []
            for layer in spec.layers:
                h = states[layer][0, len(p):]
                parts += [h.mean(0), h[-1]]
            np.testing.assert_allclose(shared[row], torch.cat(parts).numpy(), atol=1e-4)


def test_instant_training_learns_records_the_run_and_reloads(tmp_path, tiny_dir):
    path = synthetic_project(tmp_path)
    config = RewardTrainConfig(method="instant", base=str(tiny_dir), val_fraction=0.25, device="cpu")
    with Project.open(path) as project:
        preview = split_preview(project, config)
    assert preview["train"] + preview["val"] == 120 and preview["val"] > 10
    result = train_reward_model(path, config)
    assert result["status"] == "finished"
    assert result["metrics"]["val/accuracy"] > 0.9
    assert result["evaluation"]["accuracy"] == pytest.approx(result["metrics"]["val/accuracy"])
    with Project.open(path) as project:
        [run] = list_runs(project, "reward")
        assert run["status"] == "finished" and run["config"]["method"] == "instant"
        assert "val/accuracy" in run_metrics(project, run["id"])
        cached = project.conn.execute("SELECT count(*) FROM feature_cache").fetchone()[0]
        assert cached == 240
    loaded = InstantRewardModel.load(result["model_dir"], device="cpu")
    scores = loaded.score(Text("question 0: sea?"), [Text("sea Paris Paris capital"), Text("sea dog fox night")])
    assert scores[0] > scores[1]


def test_retraining_reuses_cached_features(tmp_path, tiny_dir, monkeypatch):
    path = synthetic_project(tmp_path, n=40)
    config = RewardTrainConfig(method="instant", base=str(tiny_dir), device="cpu")
    train_reward_model(path, config)
    calls = []
    original = FeatureExtractor.extract
    monkeypatch.setattr(FeatureExtractor, "extract", lambda self, groups, *a, **k: calls.append(len(groups))
                        or original(self, groups, *a, **k))
    second = train_reward_model(path, config)
    assert calls == []  # nothing recomputed
    assert second["status"] == "finished"


def test_cancel_during_features_keeps_finished_batches(tmp_path, tiny_dir):
    path = synthetic_project(tmp_path, n=60)

    class StopAfterFirstBatch:
        def __init__(self):
            self.batches = 0

        def log(self, step, metrics):
            if metrics.get("stage") == "features":
                self.batches += 1

        def should_stop(self):
            return self.batches >= 1

    config = RewardTrainConfig(method="instant", base=str(tiny_dir), device="cpu")
    result = train_reward_model(path, config, sink=StopAfterFirstBatch())
    assert result["status"] == "cancelled"
    with Project.open(path) as project:
        kept = project.conn.execute("SELECT count(*) FROM feature_cache").fetchone()[0]
        assert 0 < kept < 120
        assert list_runs(project, "reward")[0]["status"] == "cancelled"


def test_no_labels_is_a_clear_error(tmp_path, tiny_dir):
    path = tmp_path / "empty.rmstudio"
    Project.create(path).close()
    with pytest.raises(RmstudioError, match="no labeled pairs"):
        train_reward_model(path, RewardTrainConfig(base=str(tiny_dir)))


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="method"):
        RewardTrainConfig(method="magic")
    with pytest.raises(ValueError, match="val_fraction"):
        RewardTrainConfig(val_fraction=1.5)


def test_cli_train_rm_writes_the_model_and_tests_on_a_file(tmp_path, tiny_dir, capsys):
    from rmstudio.cli import main

    path = synthetic_project(tmp_path, n=60)
    test_rows = [{"prompt": f"held out {i}?", "chosen": "sea Paris Paris capital", "rejected": "sea dog fox"}
                 for i in range(10)]
    test_file = write_jsonl(tmp_path / "test.jsonl", test_rows)
    out = tmp_path / "exported"
    code = main(["train-rm", str(path), "--method", "instant", "--base", str(tiny_dir), "--out", str(out),
                 "--test-file", str(test_file), "--device", "cpu", "--cross-validation", "off"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "validation accuracy" in printed  # a held-out share (cross-validation off)
    assert "test file" in printed and "on 10 pairs" in printed
    assert (out / "rmstudio_reward.json").is_file() and (out / "README.md").is_file()
    assert main(["train-rm", str(path), "--base", str(tmp_path / "missing-model")]) == 1
    assert "missing-model" in capsys.readouterr().err


def test_live_model_refits_as_labels_arrive(tmp_path, tiny_dir):
    from rmstudio.core.reward.live import LiveInstantModel

    path = tmp_path / "live.rmstudio"
    with Project.create(path) as project:
        import_files(project, [write_jsonl(tmp_path / "pairs.jsonl", [
            {"prompt": f"q{i} sea?", "response_a": "sea Paris Paris capital", "response_b": f"dog fox {i}"}
            for i in range(40)])])
        ids = [r[0] for r in project.conn.execute("SELECT id FROM comparisons ORDER BY id")]
        live = LiveInstantModel(base=str(tiny_dir), device="cpu")
        for cid in ids[:4]:
            project.set_label(cid, "ann", "a")
        assert live.refresh(path) is None  # too few pairs to say anything
        for cid in ids[4:]:
            project.set_label(cid, "ann", "a")
    status = live.refresh(path)
    assert status.pairs == 40 and status.val_accuracy > 0.8
    with Project.open(path) as project:
        before = project.conn.execute("SELECT count(*) FROM feature_cache").fetchone()[0]
    again = live.refresh(path)  # warm cache: nothing new to embed
    with Project.open(path) as project:
        assert project.conn.execute("SELECT count(*) FROM feature_cache").fetchone()[0] == before
    assert again.pairs == 40
