"""Which latent channels carry the code?  (issue 14, RESULTS.md § The latent's width)

    python scripts/probe_latent_use.py [WEIGHTS ...] [--data work_dirs/data/train.zip]

Codes a few 256² training windows (ground-truth reference) as the runtime does (the
model's stages and ``entropy.latent``) at qp 21 / 42 / 63 and prints, per qp, how many
latent channels hold 99 % of the nonzero symbols and of the bits the training rate
estimates for them (both checkerboard steps).  For a latent wider than its preset's (an
export of ``python -m ui2c.training.widen``, or weights trained from one) it splits the
same figures into the old channels and the added ones: a widening has worked only once the added channels code something.
"""
from __future__ import annotations

import argparse
import dataclasses

import torch

from ui2c.entropy import latent
from ui2c.models.checkpoint import load_weights, read_checkpoint, unwrap_state_dict
from ui2c.models.conditional import ConditionalCodec
from ui2c.models.presets import RANDOM_SEED, build_model, fixed_seed
from ui2c.shipped import default_weights
from ui2c.training.data import WindowSampler, load_dataset
from ui2c.training.unit import _gaussian_bits
from ui2c.training.widen import half_major_positions

QPS = (21, 42, 63)


def build(path: str) -> tuple[ConditionalCodec, torch.Tensor | None]:
    """The network of the export at ``path`` and, if its latent is wider than its preset's
    (a ``training.widen`` export, trained on or not), a mask of the added channels."""
    blob = read_checkpoint(path)
    base = build_model(blob["preset"]).cfg
    ch_y = unwrap_state_dict(blob)["encoder.down.weight"].shape[0]
    with fixed_seed(RANDOM_SEED):
        model = ConditionalCodec(dataclasses.replace(base, ch_y=ch_y)).eval()
    load_weights(model, path)
    if ch_y == base.ch_y:
        return model, None
    added = torch.ones(ch_y, dtype=torch.bool)
    added[half_major_positions(base.ch_y, ch_y)] = False
    return model, added


def symbols_and_bits(model: ConditionalCodec, window: torch.Tensor, qp: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel count of nonzero symbols and estimated bits of the pair after the window's
    first frame, as the runtime codes it (its stages and latent codec: skipped elements are 0
    and cost nothing)."""
    qps = torch.tensor([qp, qp])
    ctx, temporal = model.run_stage("context", model.adapt_frame(window[:1]), qps)
    y, z_hat = model.run_stage("encoder", window[1:3].flatten(0, 1)[None], ctx, qps)
    q_dec, scales, means, params = model.run_stage("prior", z_hat, temporal)
    ys = y / q_dec
    nonzero = bits = y_hat0 = 0
    for step, mask in enumerate(latent.checkerboard_masks(*y.shape[1:])):
        if step == 1:
            scales, means = model.run_stage("spatial_prior", y_hat0, params)
        indexes = latent.step_indexes(scales, mask)
        symbols, y_hat0 = latent.quantize_step(ys, means, mask, indexes)
        unfolded = latent.unfold(symbols.view(-1, *y.shape[2:]).float(), mask)
        coded = latent.unfold((indexes >= 0).view(-1, *y.shape[2:]).float(), mask)
        nonzero = nonzero + (unfolded != 0).sum((0, 2, 3))
        bits = bits + (_gaussian_bits(unfolded, scales) * coded).sum((0, 2, 3))
    return nonzero.double(), bits.double()


def channels_for(share: float, per_channel: torch.Tensor) -> int:
    """How many channels it takes to hold ``share`` of the total."""
    ordered = per_channel.sort(descending=True).values.cumsum(0)
    return int((ordered < share * ordered[-1]).sum()) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="*", help="pair-model exports (default: the shipped ui2c-s weights)")
    parser.add_argument("--data", default="work_dirs/data/train.zip")
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    sampler = WindowSampler(load_dataset(args.data), 256, seed=args.seed)
    windows = [sampler.window(3) for _ in range(args.windows)]
    for path in args.weights or [str(default_weights("ui2c-s"))]:
        model, added = build(path)
        for qp in QPS:
            with torch.no_grad():
                nonzero, bits = map(sum, zip(*(symbols_and_bits(model, w, qp) for w in windows)))
            line = (f"{path} qp {qp}: {model.cfg.ch_y} channels, 99 % of the nonzero symbols in "
                    f"{channels_for(0.99, nonzero)}, of the bits in {channels_for(0.99, bits)}")
            if added is not None:
                line += (f"; added channels: {float(nonzero[added].sum() / nonzero.sum()):.2%} of the nonzero "
                         f"symbols, {float(bits[added].sum() / bits.sum()):.2%} of the bits")
            print(line)


if __name__ == "__main__":
    main()
