"""Widen a trained pair model's latent (``ch_y``) without changing what it codes.

Why: the latent is the codec's narrowest point, and its width is where the high-rate
end stops (benchmarks/RESULTS.md, "The latent's width ...").  Training a wider model
from scratch costs what the demo weights took; widening the trained one keeps all of
it: the wider network codes every input to the same reconstruction and, since its new
latent channels are exactly zero with a zero scale, the runtime skips them and the
bits are the same too.  Training then puts the new channels to use.

How every tensor is laid out in the wider model:

* a latent-sized dimension keeps each checkerboard half's old channels first
  (old channel i of half h goes to the start of the new half h), so each old channel
  is still coded in the same step of the two-step prior;
* weights from new input channels into old outputs are zero wherever those inputs
  are not zero already (so old outputs stay exact), and keep their fresh random
  initialisation where the inputs are the new latent channels (exactly zero at the
  start), so the decoder side passes gradients to the encoder's new filters;
* the encoder's new filters and the priors' new rows are zero, with a q_dec bias of 1
  and zero scales and means: new channels start as exact zeros that cost no bits;
* a block that gains a 1×1 adaptor (``ch_y`` now differs from ``ch_z``) gets the
  identity that the narrower block applied implicitly.

Usable as ``python -m ui2c.training.widen OLD.pt NEW.pt --ch-y 128``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from ..errors import CheckpointError, UI2CError
from ..args import add_overwrite, refuse_existing
from ..fileio import AtomicOutput
from ..models.checkpoint import check_state_dict, read_checkpoint, unwrap_state_dict
from ..models.conditional import ConditionalCodec, ConditionalConfig
from ..models.presets import PAIR_PRESETS, RANDOM_SEED, build_model, fixed_seed

Y = "y"  # a latent-sized segment of a dimension; an int is a segment of that many fixed channels


def half_major_positions(old: int, new: int) -> torch.Tensor:
    """New index of each of ``old`` channels split in two halves, each half's old channels
    at the start of the corresponding new half (the checkerboard's channel layout)."""
    i = torch.arange(old)
    return torch.where(i < old // 2, i, i - old // 2 + new // 2)


def _positions(layout: tuple, old_y: int, new_y: int, hidden: bool = False) -> tuple[torch.Tensor, int]:
    """(new index of every old channel, new size) of a dimension made of ``layout``'s segments."""
    parts, offset = [], 0
    for seg in layout:
        if seg == Y:
            parts.append(offset + half_major_positions(old_y, new_y))
            offset += new_y
        else:
            parts.append(offset + torch.arange(seg))
            offset += seg
    return torch.cat(parts), offset


# key prefix -> (output layout, input layout, new inputs into old outputs: "zero" or "init",
#                new output rows: None (fresh init) or the bias of each output segment with zero weights)
def _rules(cfg: ConditionalConfig) -> dict[str, tuple]:
    z, t, f, s = cfg.ch_z, cfg.ch_temporal, cfg.ch_fusion, cfg.ch_spatial
    last = "hyper_decoder.conv.2"
    return {
        "encoder.down": ((Y,), (cfg.ch_d,), "zero", (0.0,)),
        "hyper_encoder.conv.0.adaptor": ((z,), (Y,), "init", None),
        f"{last}.adaptor": ((Y,), (z,), "zero", None),
        f"{last}.dc.0": ((Y,), (Y,), "zero", None),
        f"{last}.dc.2": ((Y,), (1,), "zero", None),
        f"{last}.dc.3": ((Y,), (Y,), "zero", None),
        f"{last}.ffn.0": (("hidden4",), (Y,), "zero", None),
        f"{last}.ffn.2": ((Y,), ("hidden2",), "zero", None),
        "y_prior_fusion.conv.0.adaptor": ((f,), (Y, t), "zero", None),
        f"y_prior_fusion.conv.{cfg.fusion_blocks}": ((Y, Y, Y), (f,), "zero", (1.0, 0.0, 0.0)),
        "y_spatial_prior.conv.0.adaptor": ((s,), (Y, Y, Y, Y), "zero", None),
        "y_spatial_prior.conv.2": ((Y, Y), (s,), "zero", (0.0, 0.0)),
        "decoder.up.conv.0": ((4 * cfg.ch_d,), (Y,), "init", None),
    }


def _dimension(layout: tuple, old: ConditionalConfig, new: ConditionalConfig) -> tuple[torch.Tensor, int]:
    if layout == ("hidden4",):  # a DCB's FFN expansion: two summed halves of 2·width each
        return half_major_positions(4 * old.ch_y, 4 * new.ch_y), 4 * new.ch_y
    if layout == ("hidden2",):  # the summed halves, read by the projection back
        return torch.arange(2 * old.ch_y), 2 * new.ch_y
    return _positions(layout, old.ch_y, new.ch_y)


def _segment_of_rows(layout: tuple, new: ConditionalConfig) -> torch.Tensor:
    """The output segment index of every row."""
    sizes = [new.ch_y if seg == Y else seg for seg in layout]
    return torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)])


def widen_state_dict(old_state: dict[str, torch.Tensor], old: ConditionalConfig, ch_y: int
                     ) -> dict[str, torch.Tensor]:
    """The state dict of ``old`` widened to ``ch_y`` latent channels (see the module docstring)."""
    if ch_y <= old.ch_y or ch_y % 2:
        raise ValueError(f"the new latent width must be even and above {old.ch_y}, got {ch_y}")
    new = dataclasses.replace(old, ch_y=ch_y)
    with fixed_seed(RANDOM_SEED):
        fresh = ConditionalCodec(new).state_dict()
    rules = _rules(old)
    state = {}
    for key, value in fresh.items():
        module, _, kind = key.rpartition(".")
        if module not in rules:
            if key not in old_state or old_state[key].shape != value.shape:
                raise KeyError(f"{key} changes shape with ch_y but has no widening rule")
            state[key] = old_state[key].clone()
            continue
        out_layout, in_layout, cross, new_rows = rules[module]
        out_pos, _ = _dimension(out_layout, old, new)
        is_new_row = torch.ones(value.shape[0], dtype=torch.bool)
        is_new_row[out_pos] = False
        widened = value.clone()
        if kind == "bias":
            widened[out_pos] = old_state[key] if key in old_state else 0.0
        else:
            in_pos, _ = _dimension(in_layout, old, new)
            if key in old_state:
                previous = old_state[key]
            else:  # the narrower block had no adaptor: it passed its input through
                previous = torch.eye(len(out_pos)).reshape(len(out_pos), len(in_pos), 1, 1)
            is_new_col = torch.ones(value.shape[1], dtype=torch.bool)
            is_new_col[in_pos] = False
            rows = widened[out_pos]
            rows[:, in_pos] = previous
            if cross == "zero":
                rows[:, is_new_col] = 0.0
            widened[out_pos] = rows
        if new_rows is not None:
            if kind == "bias":
                segment_bias = torch.tensor(new_rows, dtype=value.dtype)
                widened[is_new_row] = segment_bias[_segment_of_rows(out_layout, new)][is_new_row]
            else:
                widened[is_new_row] = 0.0
        state[key] = widened
    return state


def widen_export(path: Path, ch_y: int) -> dict:
    """A ui2c weights export of its preset's widths, widened to ``ch_y``; the metadata
    records the widening."""
    blob = read_checkpoint(path)
    if not isinstance(blob, dict) or blob.get("preset") not in PAIR_PRESETS:
        raise CheckpointError(f"{path} is not a ui2c pair-model export (no pair preset recorded)")
    old_state = {k: v.float() for k, v in unwrap_state_dict(blob).items()}
    with fixed_seed(RANDOM_SEED):
        narrow = build_model(blob["preset"])
    check_state_dict(narrow, old_state, str(path))
    base = narrow.cfg
    state = widen_state_dict(old_state, base, ch_y)
    meta = {**blob.get("meta", {}), "widened": {"from": path.name, "ch_y": [base.ch_y, ch_y]}}
    return {"preset": blob["preset"], "state_dict": {k: v.to(torch.float16) for k, v in state.items()}, "meta": meta}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Widen a pair model's latent without changing what it codes.")
    parser.add_argument("weights", type=Path, help="a ui2c-s or ui2c weights export")
    parser.add_argument("output", type=Path, help="widened weights to write (never the input)")
    parser.add_argument("--ch-y", type=int, default=128, help="new latent width (default 128)")
    add_overwrite(parser)
    args = parser.parse_args(argv)
    try:
        refuse_existing(args.output, args.overwrite)
        blob = widen_export(args.weights, args.ch_y)
        with AtomicOutput(args.output, protect=[args.weights]) as out:
            torch.save(blob, out.file)
    except (UI2CError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {blob['preset']} widened to ch_y {args.ch_y}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
