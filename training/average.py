"""The weights training exports: an exponential moving average of the parameters.

At the small learning rates of fine-tuning, successive checkpoints of one run scatter
around a better point: on cockatoo's first 96 frames two exports 1,500 iterations apart
were −3.5 % and −2.4 % BD-rate against the shipped weights, their mean −6.9 %
(benchmarks/RESULTS.md, Training).  Averaging the trajectory gets that gain without
choosing a checkpoint by its score on an evaluation clip.  The optimizer keeps stepping
the live parameters; only exports (and evaluations of them) use the average.

The same holds across runs: exports of two fine-tunes of one ancestor (other crops, other
back-propagation depth) average to weights better than either (a "model soup";
RESULTS.md, Training).  ``python -m ui2c.training.average OUT IN1 IN2 ...`` writes that
plain mean as an export, with every input's provenance in its ``meta``.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

from ..args import add_overwrite, refuse_existing
from ..errors import CheckpointError, UI2CError
from ..fileio import AtomicOutput
from ..models.checkpoint import check_state_dict, read_checkpoint
from ..models.presets import build_model


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


def _read_export(path: Path) -> dict:
    blob = read_checkpoint(path)
    if not isinstance(blob, dict) or not {"preset", "state_dict", "meta"} <= blob.keys():
        raise CheckpointError(f"{path} is not a ui2c weights export (no preset, state_dict and meta)")
    return blob


def mean_of_exports(paths: Sequence[Path]) -> dict:
    """The parameter-wise mean of exported weight files, as an export of its own.

    The inputs must be one preset, each matching its network's keys and shapes, with one
    qp-table layout (a mean of
    unrelated networks is noise, so they should also share an ancestor: the caller's
    judgement, recorded in ``meta["mean_of"]``).  Float tensors are averaged in float32 and
    stored in the inputs' dtype; other tensors must be equal.  The result's ``meta`` keeps
    what all inputs agree on (preset, data, λ, table layout: what a fine-tune from it
    reads) and lists every input's file name and provenance under ``mean_of``; what
    differs (iterations, runs) is only there, so no branch's counts pass as the whole's."""
    if len(paths) < 2:
        raise CheckpointError("a mean needs at least two weights files")
    blobs = [_read_export(Path(p)) for p in paths]
    first = blobs[0]
    for path, blob in zip(paths[1:], blobs[1:]):
        if blob["preset"] != first["preset"]:
            raise CheckpointError(f"{path} holds {blob['preset']} weights, {paths[0]} {first['preset']}: no mean")
        if blob["meta"].get("qp_tables") != first["meta"].get("qp_tables"):
            raise CheckpointError(f"{path} and {paths[0]} have different qp-table layouts: no mean")
    network = build_model(first["preset"])
    for path, blob in zip(paths, blobs):  # the loader's own check: keys and shapes of the preset
        check_state_dict(network, blob["state_dict"], str(path))
    state = {}
    for key, value in first["state_dict"].items():
        values = [b["state_dict"][key] for b in blobs]
        if value.is_floating_point():
            state[key] = (sum(v.float() for v in values) / len(values)).to(value.dtype)
        elif all(torch.equal(value, v) for v in values):
            state[key] = value
        else:
            raise CheckpointError(f"{key} is an integer tensor that differs between the inputs: no mean")
    metas = [b["meta"] for b in blobs]
    common = {k: v for k, v in metas[0].items() if all(k in m and m[k] == v for m in metas[1:])}
    inputs = [{"weights": Path(p).name, **{k: v for k, v in m.items() if k != "sources"}} for p, m in zip(paths, metas)]
    return {"preset": first["preset"], "state_dict": state, "meta": {**common, "mean_of": inputs}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the parameter-wise mean of ui2c weights exports.")
    parser.add_argument("output", type=Path, help="weights file to write (never one of the inputs)")
    parser.add_argument("inputs", type=Path, nargs="+", help="two or more exports of one preset")
    add_overwrite(parser)
    args = parser.parse_args(argv)
    try:
        refuse_existing(args.output, args.overwrite)
        blob = mean_of_exports(args.inputs)
        with AtomicOutput(args.output, protect=args.inputs) as out:
            torch.save(blob, out.file)
    except UI2CError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: mean of {len(args.inputs)} exports of {blob['preset']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
