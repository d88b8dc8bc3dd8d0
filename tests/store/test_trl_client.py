"""A real client reads the export: `datasets` loads it and TRL's RewardTrainer trains on it."""

import itertools
import json

import pytest
from tiny_models import tiny_reward_classifier
from conftest import HH_FILE

from rmstudio.core.data.exporter import export_project
from rmstudio.core.data.importer import import_files


@pytest.fixture
def small_hh(tmp_path):
    import gzip

    with gzip.open(HH_FILE, "rt", encoding="utf-8") as fh:
        lines = list(itertools.islice(fh, 24))
    path = tmp_path / "hh-small.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("schema", ["explicit", "conversational"])
def test_reward_trainer_trains_on_the_export_without_conversion(project, small_hh, tmp_path, schema):
    import torch
    from datasets import load_dataset
    from trl import RewardConfig, RewardTrainer

    import_files(project, [small_hh])
    out = tmp_path / f"prefs-{schema}.jsonl"
    assert export_project(project, out, schema=schema).rows == 24
    dataset = load_dataset("json", data_files=str(out), split="train")
    assert dataset.column_names == ["prompt", "chosen", "rejected"]
    assert len(dataset) == 24

    model, tokenizer = tiny_reward_classifier()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = RewardConfig(output_dir=str(tmp_path / "trl"), max_steps=1, per_device_train_batch_size=4,
                        max_length=512, report_to=[], save_strategy="no", logging_steps=1,
                        use_cpu=True, dataloader_num_workers=0)
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 1
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and all(json.dumps(entry) for entry in logged)
