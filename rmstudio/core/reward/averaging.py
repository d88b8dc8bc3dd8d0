"""A running average of a fine-tune's trainable weights (Polyak-Ruppert averaging, as in
stochastic weight averaging): the export can be the mean of the last steps' weights instead of
the last step's. Weight-averaged reward models generalise and hold up better than any single
checkpoint ("WARM", Ramé et al. 2024, averages whole runs; this averages one run's tail).
"""

from __future__ import annotations

from pathlib import Path

import torch

AVERAGE_FILE = "average.safetensors"


class WeightAverage:
    """The uniform mean of every ``update``'s trainable weights, kept in float32 on the CPU."""

    def __init__(self) -> None:
        self.count = 0
        self.state: dict[str, torch.Tensor] = {}

    def update(self, model) -> None:
        self.count += 1
        with torch.no_grad():
            for name, param in model.named_parameters():
                if not param.requires_grad:
                    continue
                weight = param.detach().to("cpu", torch.float32)
                if name not in self.state:
                    self.state[name] = weight.clone()
                else:
                    self.state[name] += (weight - self.state[name]) / self.count

    def copy_into(self, model) -> None:
        """Put the averaged weights into ``model`` (in its own dtype and device)."""
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, tensor in self.state.items():
                params[name].copy_(tensor.to(params[name].device, params[name].dtype))

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        if self.count:
            save_file({k: v.contiguous() for k, v in self.state.items()}, str(Path(folder) / AVERAGE_FILE),
                      metadata={"count": str(self.count)})

    @classmethod
    def load(cls, folder: Path) -> WeightAverage:
        """The average saved in ``folder``; an empty one when it holds none."""
        from safetensors import safe_open

        average = cls()
        path = Path(folder) / AVERAGE_FILE
        if path.is_file():
            with safe_open(str(path), framework="pt") as fh:
                average.count = int(fh.metadata()["count"])
                average.state = {k: fh.get_tensor(k) for k in fh.keys()}
        return average
