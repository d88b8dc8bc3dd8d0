"""An instant reward model as a thing you can save, load and score with.

Saved as a folder: ``instant_head.safetensors`` (the head and its normalisation),
``rmstudio_reward.json`` (kind, backbone, feature recipe, dtype, metrics) and a README model
card. The backbone is referenced, not copied (the embedded model or a local folder), so a saved
instant model is a few kilobytes and gives the same scores wherever that backbone is available.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rmstudio.core.models.loading import ModelSource, fast_bf16, load_causal_lm, pick_device
from rmstudio.core.data.records import Text
from rmstudio.core.reward.features import FeatureExtractor, FeatureSpec, cached_vectors, store_vectors
from rmstudio.core.reward.instant import InstantHead

CONFIG_FILE = "rmstudio_reward.json"
HEAD_FILE = "instant_head.safetensors"


class InstantRewardModel:
    def __init__(self, base: str, spec: FeatureSpec, model, tokenizer, dtype_name: str):
        self.base = base
        self.spec = spec
        self.dtype_name = dtype_name
        self.extractor = FeatureExtractor(model, tokenizer, spec, ModelSource.parse(base).display_name
                                          + f"|{dtype_name}")
        self.head: InstantHead | None = None

    @classmethod
    def from_base(cls, base: str, spec: FeatureSpec, device: str | None = None,
                  dtype_name: str | None = None) -> InstantRewardModel:
        device = pick_device(device)
        if dtype_name is None:
            dtype_name = "bfloat16" if fast_bf16(device) else "float32"
        model, tokenizer = load_causal_lm(base, device=device, dtype=getattr(torch, dtype_name))
        return cls(base, spec, model, tokenizer, dtype_name)

    @property
    def feature_key(self) -> str:
        return self.extractor.key

    def features(self, prompt: Text, responses: Sequence[Text]) -> np.ndarray:
        # Through float16 as the project's feature cache stores them: training and scoring agree.
        return self.extractor.extract([(prompt, list(responses))]).astype("<f2").astype(np.float32)

    def score(self, prompt: Text, responses: Sequence[Text], normalized: bool = False) -> np.ndarray:
        if self.head is None:
            raise RuntimeError("this instant model has no trained head yet")
        with torch.no_grad():
            rewards = self.head(torch.as_tensor(self.features(prompt, responses)))
            if normalized:
                rewards = (rewards - self.head.reward_mean) / self.head.reward_std
        return rewards.numpy()

    def save(self, folder: str | Path, metrics: dict | None = None, evaluation: dict | None = None) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.head.state_dict().items()}
        save_file(state, str(folder / HEAD_FILE))
        head_kind = "linear" if isinstance(self.head.net, torch.nn.Linear) else "mlp"
        hidden = None if head_kind == "linear" else self.head.net[0].out_features
        config = {"kind": "instant", "base": self.base, "feature_spec": asdict(self.spec),
                  "dtype": self.dtype_name, "head": head_kind, "hidden": hidden,
                  "dim": int(self.head.feature_mean.numel()),
                  "reward_mean": float(self.head.reward_mean), "reward_std": float(self.head.reward_std),
                  "metrics": metrics or {}}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1))
        (folder / "README.md").write_text(_model_card(config, evaluation or {}))
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: str | None = None) -> InstantRewardModel:
        from safetensors.torch import load_file

        folder = Path(folder)
        config = json.loads((folder / CONFIG_FILE).read_text())
        spec_fields = config["feature_spec"]
        spec = FeatureSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec_fields.items()})
        model = cls.from_base(config["base"], spec, device=device, dtype_name=config["dtype"])
        head = InstantHead(config["dim"], config["head"], config.get("hidden") or 64)
        head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        head.eval()
        model.head = head
        return model


def response_features(project, model: InstantRewardModel, pairs, sink) -> dict[int, np.ndarray]:
    """Features for every response in ``pairs`` (or rated responses): from the project's cache, computing (and storing,
    batch by batch) only the missing ones. A cancelled extraction keeps what it finished."""
    texts: dict[int, tuple[int, Text, Text]] = {}
    for p in pairs:
        if hasattr(p, "response_id"):  # a rated response (the regression objective)
            texts.setdefault(p.response_id, (p.prompt_id, p.prompt, p.response))
            continue
        texts.setdefault(p.chosen_id, (p.prompt_id, p.prompt, p.chosen))
        texts.setdefault(p.rejected_id, (p.prompt_id, p.prompt, p.rejected))
    vectors = cached_vectors(project, model.feature_key, list(texts))
    missing = [rid for rid in texts if rid not in vectors]
    groups: dict[int, list[int]] = {}
    for rid in missing:
        groups.setdefault(texts[rid][0], []).append(rid)
    group_list = list(groups.values())
    flat_ids = [rid for ids in group_list for rid in ids]

    def store(first: int, batch_vectors: np.ndarray) -> None:
        ids = flat_ids[first:first + len(batch_vectors)]
        store_vectors(project, model.feature_key, list(zip(ids, batch_vectors)))
        vectors.update(zip(ids, batch_vectors))

    class FeatureSink:
        def log(self, step, metrics):
            cached = len(texts) - len(missing)
            sink.log(0, {"stage": "features", "done": step, "total": metrics.get("total", len(flat_ids)),
                         "cached": cached, "unit": "responses",
                         "message": f"Computing the base model's features ({cached:,} responses from the cache)"})

        def should_stop(self):
            return sink.should_stop()

    if group_list:
        model.extractor.extract([(texts[ids[0]][1], [texts[r][2] for r in ids]) for ids in group_list],
                                FeatureSink(), on_batch=store)
    # Round trip through float16 so fresh and cached features give the very same scores.
    return {rid: v.astype("<f2").astype(np.float32) for rid, v in vectors.items()}


def _model_card(config: dict, evaluation: dict) -> str:
    metrics = "\n".join(f"| {k} | {v:.4f} |" for k, v in config["metrics"].items()
                        if isinstance(v, (int, float)))
    accuracy = evaluation.get("accuracy")
    extra = ""
    if config["metrics"].get("objective") == "regression":
        m = config["metrics"]
        extra = (f"\nTrained by regression on ratings: the reward predicts the standardised rating, "
                 f"so rating ≈ reward × {m['rating_std']:.4f} + {m['rating_mean']:.4f}.\n")
        if evaluation.get("responses"):
            extra += (f"Validation: RMSE {evaluation['rmse']:.3f} on {evaluation['responses']} rated responses, "
                      f"Pearson {evaluation['pearson'] or float('nan'):.3f}"
                      + (f", accuracy {accuracy:.3f} on the {evaluation['pairs']} pairs the ratings imply"
                         if accuracy is not None else "") + ".\n")
    elif accuracy is not None:
        extra = (f"\nValidation: accuracy {accuracy:.3f} on {evaluation['pairs']} pairs "
                 f"(prefer-longer baseline {evaluation['baseline_longer']:.3f}), ECE {evaluation['ece']:.3f}.\n")
    return f"""# rmstudio instant reward model

A {config['head']} reward head on frozen features of `{config['base']}` (hidden states of layers
{config['feature_spec']['layers']}, pooled {config['feature_spec']['pooling']} over the response read in
the context of its prompt, {config['dtype']}). Load it with
`rmstudio.core.reward.instant_model.InstantRewardModel.load(folder)`; scores are raw rewards
(normalise with reward_mean {config['reward_mean']:.4f}, reward_std {config['reward_std']:.4f}).
{extra}
| metric | value |
|---|---|
{metrics}
"""
