"""Saved tiny reward models of both kinds, built offline (never downloaded), as fixtures.

Not a conftest.py: tests import ``conftest`` by name (``from conftest import write_jsonl``), and
a second conftest module would shadow tests/conftest.py for them. A test module takes the
fixtures ``finetuned_dir`` and ``instant_dir`` by assigning them to module names
(``instant_dir = reward_folders.instant_dir``); the folders are built once per session (cached
on the tmp_path_factory), however many modules use them.
"""

from __future__ import annotations

import pytest

_built: dict = {}


def finetuned_folder(tmp_path_factory):
    """A tiny fine-tuned reward folder as finetune_export writes it (reward stats in config.json)."""
    if ("finetuned", id(tmp_path_factory)) in _built:
        return _built["finetuned", id(tmp_path_factory)]
    from tiny_models import tiny_reward_classifier

    from rmstudio.core.reward.finetune_export import save_reward_stats

    model, tokenizer = tiny_reward_classifier()
    folder = tmp_path_factory.mktemp("finetuned") / "model"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    save_reward_stats(folder, 0.25, 2.0)
    _built["finetuned", id(tmp_path_factory)] = folder
    return folder


def instant_folder(tmp_path_factory):
    """A tiny instant reward folder: a random linear head on a tiny backbone, mean+last pooling
    over two layers (so every pooling path of the explainer is used)."""
    if ("instant", id(tmp_path_factory)) in _built:
        return _built["instant", id(tmp_path_factory)]
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
    _built["instant", id(tmp_path_factory)] = model.save(tmp_path_factory.mktemp("instant") / "model")
    return _built["instant", id(tmp_path_factory)]


def hf_rewards(folder, prompt, responses):
    """Rewards as TRL's GRPOTrainer computes them from a reward_funcs path: prompt + completion,
    no special tokens, read at the last non-pad token."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer(text=[prompt + r for r in responses], return_tensors="pt", padding=True,
                       padding_side="right", add_special_tokens=False)
    with torch.no_grad():
        return model(**inputs).logits[:, 0].numpy()


@pytest.fixture(scope="session")
def finetuned_dir(tmp_path_factory):
    return finetuned_folder(tmp_path_factory)


@pytest.fixture(scope="session")
def instant_dir(tmp_path_factory):
    return instant_folder(tmp_path_factory)
