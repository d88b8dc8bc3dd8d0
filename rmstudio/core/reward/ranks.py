"""Several training processes (``accelerate launch --num_processes N``): who does what.

One process (``SINGLE``, the default) does everything and calls no collective at all, so a plain
run pays nothing for this. Under ``accelerate launch`` (``WORLD_SIZE`` > 1 in the environment)
``current()`` builds one ``Accelerator`` and every rank trains on its share of each batch:

- rank 0 (the main process) alone opens the project, writes the run (its recorder), the
  checkpoints, the best weights and the export; the others get a no-op ``RunRecorder`` and the
  data from rank 0 (``share``), so they never open the project file at all;
- a step's gradients are summed over the ranks (one all-reduce of a flat buffer per optimizer
  step) after each rank weighted its loss by its share of the pairs: the same gradient as one
  process on the whole batch, up to float summation order;
- metrics are combined over the ranks, weighted by pairs, before rank 0 logs them;
- ``should_stop`` is rank 0's answer, broadcast, so a cancel stops every rank at the same point
  and none waits forever in a collective.

The model is not wrapped in DDP: the loop reads the score head through hooks and the model's
attributes (``pair_outputs``), which a wrapper hides, and it has no DataLoader to prepare; the
explicit all-reduce is what DDP with ``no_sync`` over the accumulated micro-batches does.
A failure on one rank only (out of memory, a full disk) ends that process with an error, and
``accelerate launch`` (torchrun) then ends the others.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch

# How long a rank waits in a collective for the others: rank 0 alone fits the instant teacher
# (a feature pass over every pair) and exports the model while the others wait.
COLLECTIVE_TIMEOUT = timedelta(hours=6)


class Ranks:
    """One process: rank 0 of 1, every collective a no-op."""

    rank, world = 0, 1
    device: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world > 1

    def share(self, obj=None):
        """Rank 0's ``obj`` on every rank (picklable)."""
        return obj

    def barrier(self) -> None:
        pass

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank (picklable)."""
        return [obj]

    def sum_grads(self, params) -> None:
        pass

    def part(self, items: list) -> list:
        """This rank's contiguous share of ``items`` (sizes differ by at most one)."""
        return items

    def sink(self, sink):
        return sink


SINGLE = Ranks()


class AccelerateRanks(Ranks):
    def __init__(self, cpu: bool):
        from accelerate import Accelerator
        from accelerate.utils import InitProcessGroupKwargs

        waits = InitProcessGroupKwargs(timeout=COLLECTIVE_TIMEOUT)
        self.accelerator = Accelerator(cpu=cpu, kwargs_handlers=[waits])
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        self.device = str(self.accelerator.device)

    def share(self, obj=None):
        from accelerate.utils import broadcast_object_list

        box = [obj if self.is_main else None]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def gather(self, obj) -> list:
        from accelerate.utils import gather_object

        return gather_object([obj])

    def sum_grads(self, params) -> None:
        """Sum the gradients of ``params`` over the ranks (a missing gradient counts as zero)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        flat = self.accelerator.reduce(flat, reduction="sum")
        offset = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[offset:offset + n].view_as(p).to(p.dtype)
            offset += n

    def part(self, items: list) -> list:
        size, extra = divmod(len(items), self.world)
        start = self.rank * size + min(self.rank, extra)
        return items[start:start + size + (self.rank < extra)]

    def sink(self, sink):
        return _RankSink(sink, self)


class _RankSink:
    """Logs on rank 0 only; ``should_stop`` is rank 0's answer on every rank (a collective: every
    rank must ask at the same points, which the loop's identical control flow gives)."""

    def __init__(self, sink, ranks: AccelerateRanks):
        self.inner, self.ranks = sink, ranks

    def log(self, step: int, metrics: dict) -> None:
        if self.ranks.is_main:
            self.inner.log(step, metrics)

    def should_stop(self) -> bool:
        from accelerate.utils import broadcast

        flag = torch.tensor([1 if self.ranks.is_main and self.inner.should_stop() else 0],
                            device=self.ranks.device)
        return bool(broadcast(flag, from_process=0).item())


_current: Ranks | None = None


def launched_world() -> int:
    """How many processes ``accelerate launch`` / torchrun started (1 when run plainly)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def current(cpu: bool = False) -> Ranks:
    """This process's place: ``SINGLE`` unless several processes were launched (then one
    Accelerator for the process's lifetime; ``cpu`` is read only when it is created)."""
    global _current
    if _current is None:
        _current = AccelerateRanks(cpu or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")) \
            if launched_world() > 1 else SINGLE
    return _current


def main_saves(ranks, save, *args):
    """``save(*args)`` on rank 0 only (checkpoints, best weights, the export: every rank holds the
    same weights); the others wait for it and get the same return value (a path)."""
    saved = save(*args) if ranks.is_main else None
    if not ranks.several:
        return saved
    return ranks.share(saved)
