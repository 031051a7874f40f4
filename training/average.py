"""The weights training exports: an exponential moving average of the parameters.

At the small learning rates of fine-tuning, successive checkpoints of one run scatter
around a better point: on cockatoo's first 96 frames two exports 1,500 iterations apart
were −3.5 % and −2.4 % BD-rate against the shipped weights, their mean −6.9 %
(benchmarks/RESULTS.md, Training).  Averaging the trajectory gets that gain without
choosing a checkpoint by its score on an evaluation clip.  The optimizer keeps stepping
the live parameters; only exports (and evaluations of them) use the average.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class WeightAverage:
    """EMA of ``model``'s parameters, keyed by parameter name (anchor tables included).

    With ``ramp`` (training from random weights) the decay grows as ``(1 + n) / (10 + n)``
    over the first updates (capped at ``decay``), so the average follows the live weights
    until it has a history worth keeping instead of staying pinned to random ones.
    Fine-tuning starts from trained weights, a start worth staying near: no ramp."""

    def __init__(self, model: nn.Module, decay: float, values: dict[str, torch.Tensor] | None = None,
                 updates: int = 0, ramp: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the average's decay must be in [0, 1), got {decay}")
        self.decay, self.updates, self.ramp = decay, updates, ramp
        self.names = [n for n, _ in model.named_parameters()]
        live = dict(model.named_parameters())
        values = values or {}
        if values and set(values) != set(live):  # another model's average: start again rather than mix
            values, self.updates = {}, 0
        self.values = [(values[n] if n in values else live[n].detach()).to(live[n].device, torch.float32).clone()
                       for n in self.names]

    def update(self, model: nn.Module) -> None:
        """Move the average towards the live parameters after one optimizer step."""
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.ramp else self.decay
        live = [p.detach().float() for p in model.parameters()]
        torch._foreach_lerp_(self.values, live, 1.0 - decay)
        self.updates += 1

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """``model`` with the averaged parameters for the block, its live ones after."""
        params = list(model.parameters())
        with torch.no_grad():
            live = [p.detach().clone() for p in params]
            for p, value in zip(params, self.values):
                p.copy_(value)
        try:
            yield model
        finally:
            with torch.no_grad():
                for p, value in zip(params, live):
                    p.copy_(value)

    def state(self) -> dict[str, torch.Tensor]:
        """The average in float16 by name (the precision of exported weights; one shard for ``ui2c-s``)."""
        return {n: v.to(torch.float16) for n, v in zip(self.names, self.values)}
