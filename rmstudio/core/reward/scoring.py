"""Load any reward model rmstudio makes and score with it.

An instant model folder holds ``rmstudio_reward.json``; a fine-tuned one is a plain Hugging Face
sequence-classification folder (``config.json``), scored on ``prompt + response`` text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rmstudio.core.errors import RmstudioError
from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.data.records import Text
from rmstudio.core.reward.data import TrainingPair
from rmstudio.core.reward.instant_model import CONFIG_FILE, InstantRewardModel


class RewardModelError(RmstudioError):
    pass


class RewardScorer:
    def __init__(self, folder: Path, instant: InstantRewardModel | None = None, hf=None):
        self.folder = folder
        self.instant = instant
        self.hf = hf  # (model, tokenizer, max_length)

    def score(self, prompt: Text, responses: Sequence[Text]) -> np.ndarray:
        if self.instant is not None:
            return self.instant.score(prompt, responses)
        from rmstudio.core.reward.finetune import score_texts

        model, tokenizer, max_length = self.hf
        return score_texts(model, tokenizer, [prompt.text] * len(responses), [r.text for r in responses],
                           max_length)

    def score_texts(self, prompts: Sequence[Text], responses: Sequence[Text], batch: int = 64,
                    sink: ProgressSink | None = None) -> np.ndarray:
        """Rewards of many (prompt, response) rows, in batches (each row its own prompt). When
        ``sink.should_stop()`` turns true the rest is skipped (zeros for an instant model, left
        out for a fine-tuned one): the caller must not use a stopped result."""
        sink = sink or NullSink()
        if self.instant is not None:
            groups = [(p, [r]) for p, r in zip(prompts, responses)]
            features = self.instant.extractor.extract(groups, sink).astype("<f2").astype(np.float32)
            import torch

            with torch.no_grad():
                return self.instant.head(torch.as_tensor(features)).numpy()
        from rmstudio.core.reward.finetune import score_texts

        model, tokenizer, max_length = self.hf
        out = []
        for k in range(0, len(prompts), batch):
            if sink.should_stop():
                break
            out.append(score_texts(model, tokenizer, [p.text for p in prompts[k:k + batch]],
                                   [r.text for r in responses[k:k + batch]], max_length))
        return np.concatenate(out) if out else np.zeros(0)

    def score_pairs(self, pairs: Sequence[TrainingPair], sink: ProgressSink | None = None,
                    batch_pairs: int = 32) -> tuple[np.ndarray, np.ndarray]:
        sink = sink or NullSink()
        if self.instant is not None:
            features = self.instant.extractor.extract([(p.prompt, [p.chosen, p.rejected]) for p in pairs], sink)
            features = features.astype("<f2").astype(np.float32)
            import torch

            with torch.no_grad():
                rewards = self.instant.head(torch.as_tensor(features)).numpy()
            return rewards[0::2], rewards[1::2]
        from rmstudio.core.reward.finetune import score_texts

        model, tokenizer, max_length = self.hf
        chosen, rejected = [], []
        for start in range(0, len(pairs), batch_pairs):
            if sink.should_stop():  # a cancel skips the rest: the caller must not use the partial result
                break
            batch = pairs[start:start + batch_pairs]
            prompts = [p.prompt.text for p in batch]
            rewards = score_texts(model, tokenizer, prompts + prompts,
                                  [p.chosen.text for p in batch] + [p.rejected.text for p in batch], max_length)
            chosen.extend(rewards[:len(batch)])
            rejected.extend(rewards[len(batch):])
            sink.log(min(start + batch_pairs, len(pairs)), {"total": len(pairs)})
        return np.array(chosen), np.array(rejected)


def load_reward_model(folder: str | Path, device: str | None = None) -> RewardScorer:
    folder = Path(folder)
    if not folder.is_dir():
        raise RewardModelError(f"{folder} is not a folder holding a reward model")
    if (folder / CONFIG_FILE).is_file():
        return RewardScorer(folder, instant=InstantRewardModel.load(folder, device=device))
    if (folder / "config.json").is_file():
        import json

        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from rmstudio.core.models.loading import pick_device

        config = json.loads((folder / "config.json").read_text())
        if config.get("num_labels", len(config.get("id2label", {}) or [0])) != 1:
            raise RewardModelError(f"{folder} is a classifier with several labels, not a reward model")
        model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
        model.to(pick_device(device)).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        max_length = (config.get("rmstudio") or {}).get("max_length", 1024)
        return RewardScorer(folder, hf=(model, tokenizer, max_length))
    raise RewardModelError(f"{folder} holds neither an rmstudio instant model ({CONFIG_FILE}) "
                           "nor a Hugging Face model (config.json)")
