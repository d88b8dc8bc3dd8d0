"""Saved tiny reward models of both kinds, built offline (never downloaded)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def finetuned_dir(tmp_path_factory):
    """A tiny fine-tuned reward folder as finetune_export writes it (reward stats in config.json)."""
    from tiny_models import tiny_reward_classifier

    from rmstudio.core.reward.finetune_export import save_reward_stats

    model, tokenizer = tiny_reward_classifier()
    folder = tmp_path_factory.mktemp("finetuned") / "model"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    save_reward_stats(folder, 0.25, 2.0)
    return folder


@pytest.fixture(scope="session")
def instant_dir(tmp_path_factory):
    """A tiny instant reward folder: a random linear head on a tiny backbone, mean+last pooling
    over two layers (so every pooling path of the explainer is used)."""
    import torch
    from tiny_models import save_tiny_model

    from rmstudio.core.reward.features import FeatureSpec
    from rmstudio.core.reward.instant import InstantHead
    from rmstudio.core.reward.instant_model import InstantRewardModel

    base = save_tiny_model(tmp_path_factory.mktemp("tiny") / "base")
    spec = FeatureSpec(layers=(1, -1), pooling=("mean", "last"), max_prompt_tokens=64, max_response_tokens=64)
    model = InstantRewardModel.from_base(str(base), spec, device="cpu", dtype_name="float32")
    torch.manual_seed(0)
    head = InstantHead(model.extractor.dim)
    head.reward_mean.fill_(0.5)
    head.reward_std.fill_(3.0)
    model.head = head.eval()
    return model.save(tmp_path_factory.mktemp("instant") / "model")
