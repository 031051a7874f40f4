"""Where do ui2c-s weights stop turning rate into quality?  (issue 14, RESULTS.md § Training)

    python scripts/probe_rate_ceiling.py [--weights W] [--data work_dirs/data/train.zip]
    python scripts/probe_rate_ceiling.py --clip ../shared/data/cockatoo.mp4   # the latent's bound only

Codes a few 256² training windows through the training path (``training.unit.code_pair``,
straight-through rounding, the rate as trained) and prints, with YUV-PSNR:

* bpp / PSNR per qp with a ground-truth reference (does quality keep rising with rate?);
* the same with the frame as its own reference (static) and with a blank one (intra);
* the windows coded whole and as four 128² quadrants, the training crop;
* ``q_encoder``'s row means (the encoder-side step scale) and the escape price's share of the rate, scale quantiles and q_dec quantiles (q_dec's floor
  is 0.5);
* the PSNR with nothing rounded (y and z passed on as they are): the transforms' own
  ceiling, whatever the rate;
* the YUV-PSNR of the best k-dimensional linear projection (PCA, YUV-weighted) of a frame
  pair's blocks at the network's two narrowest points: 8×8×3×2 blocks into k = ``ch_d``
  (the feature width at 1/8) and 16×16×3×2 blocks into k = ``ch_y`` (the latent at 1/16,
  all that an intra pair, coded from a blank reference, has to carry its detail in), and
  into 2·``ch_y``: what a latent twice as wide could hold.  ``--clip`` measures only this
  bound, on pairs of adjacent frames of a clip as ``ui2c eval --downscale 2`` codes them.
"""
from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F

from ui2c.benchmarks.evaluation.evaluate import downscale
from ui2c.entropy.tables import gaussian_support
from ui2c.models.checkpoint import load_weights
from ui2c.models.conditional import ConditionalConfig
from ui2c.models.presets import UI2C_S, build_model
from ui2c.shipped import default_weights
from ui2c.training.data import WindowSampler, load_dataset
from ui2c.training.trainer import yuv_mse
from ui2c.training.unit import ESCAPE_BITS, code_pair
from ui2c.video_io import frame_to_array, open_video, to_444

QPS = (0, 21, 42, 52, 63, 71)


def psnr(mse: float) -> float:
    return 10 * np.log10(1 / mse)


class Probe:
    """The model with its fusion output and scales recorded on every call."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.params, self.scales = model, [], []
        fusion, spatial = model.prior, model.spatial_prior

        def prior(*args):
            self.params.append(out := fusion(*args))
            self.scales.append(out.chunk(3, 1)[1])
            return out

        def spatial_prior(*args):
            self.scales.append((out := spatial(*args))[0])
            return out

        model.prior, model.spatial_prior = prior, spatial_prior

    def code(self, windows: list[torch.Tensor], qp: int, reference: str) -> tuple[float, float, float]:
        """(bpp, YUV-PSNR, escape share of the rate) of the pair after each window's first frame."""
        self.params.clear()
        self.scales.clear()
        bits = mse = escape_bits = pixels = 0.0
        for w in windows:
            frames = torch.stack([w[1], w[1]]) if reference == "static" else w[1:3]
            ref = {"static": w[1:2], "intra": torch.zeros_like(w[:1]), "ground truth": w[:1]}[reference]
            out = code_pair(self.model, frames.flatten(0, 1)[None], self.model.adapt_frame(ref), torch.tensor([[qp, qp]]))
            bits += float(out["bits"])
            pixels += 2 * w.shape[-1] * w.shape[-2]
            mse += sum(float(yuv_mse(r.clamp(0, 1), frames[i : i + 1])) for i, r in enumerate(out["recon"])) / 2
        for s in self.scales:  # each step codes half of the elements (checkerboard)
            s = s.clamp(0.11, 16.0)
            escape_bits += 0.5 * ESCAPE_BITS * float((2 * torch.distributions.Normal(0.0, 1.0).cdf(
                -(gaussian_support(s) + 0.5) / s)).sum())
        return bits / pixels, psnr(mse / len(windows)), escape_bits / bits

    def quantiles(self, which: str) -> list[float]:
        values = torch.cat([(p.chunk(3, 1)[0] if which == "q_dec" else p).flatten()
                            for p in (self.params if which == "q_dec" else self.scales)])
        values = values.clamp(0.11, 16.0) if which == "scale" else values
        return [round(float(values.quantile(q)), 2) for q in (0.5, 0.9, 0.99)]


def pca_psnr(windows: list[torch.Tensor], block: int, dims: int) -> float:
    """YUV-PSNR of the best ``dims``-dimensional linear code of the pairs' block×block blocks.

    Coordinates are scaled by √(plane weight) first, so the projection minimises the
    YUV-weighted error (6:1:1) that YUV-PSNR measures, not the plain one."""
    weights = torch.tensor([6.0, 1.0, 1.0]).repeat_interleave(block * block).repeat(2).sqrt().double()  # 2 frames
    blocks = torch.cat([F.pixel_unshuffle(w[1:3], block).flatten(0, 1).flatten(1).T for w in windows]).double()
    centred = (blocks - blocks.mean(0)) * weights
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    basis = vectors[:, vectors.shape[1] - dims :]  # the top dims (a plain -dims would take all at 0)
    # mean over coordinates of the scaled error is Σ w·MSE / 3; YUV-MSE is Σ w·MSE / 8
    return psnr(float(((centred @ basis @ basis.T - centred) ** 2).mean()) * 3 / 8)


def clip_pairs(path: str, every: int = 10) -> list[torch.Tensor]:
    """Pairs of adjacent frames (t, t+1) every ``every`` frames, 2× downscaled as ``ui2c eval``
    codes them, cropped to whole 16×16 blocks; shaped like windows (frame 0 unused)."""
    pairs, first = [], None
    with open_video(path) as reader:
        for index, frame in enumerate(reader):
            if index % every > 1:
                continue
            x = torch.from_numpy(frame_to_array(to_444(downscale(frame, 2)))).float()
            if index % every == 0:
                first = x
            else:
                pair = torch.stack([first, first, x])
                pairs.append(pair[..., : pair.shape[-2] // 16 * 16, : pair.shape[-1] // 16 * 16])
    return pairs


def print_bounds(windows: list[torch.Tensor], cfg: ConditionalConfig) -> None:
    """The linear bounds at the feature width (1/8) and at the latent width (1/16), and twice it."""
    for block, dims, where in ((8, cfg.ch_d, "ch_d"), (16, cfg.ch_y, "ch_y"), (16, 2 * cfg.ch_y, "2·ch_y")):
        print(f"PCA of {block}×{block} pair blocks into {dims} dims ({where}): {pca_psnr(windows, block, dims):.2f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="default: the shipped ui2c-s weights")
    parser.add_argument("--data", default="work_dirs/data/train.zip")
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--clip", default=None, help="only the linear bounds, on this clip's frame pairs")
    args = parser.parse_args()
    if args.clip:
        print_bounds(clip_pairs(args.clip), UI2C_S)  # widths only: no network to build
        return
    torch.manual_seed(args.seed)  # the rate's training noise: the same numbers on every run
    model = build_model("ui2c-s").eval()
    load_weights(model, args.weights or default_weights("ui2c-s"))
    sampler = WindowSampler(load_dataset(args.data), 256, seed=args.seed)
    windows = [sampler.window(3) for _ in range(args.windows)]
    quadrants = [w[..., i : i + 128, j : j + 128] for w in windows for i in (0, 128) for j in (0, 128)]
    probe = Probe(model)
    print("q_encoder row means by qp:", {qp: round(float(model.q_encoder[qp].detach().mean()), 3) for qp in QPS})
    with torch.no_grad():
        for qp in QPS:
            bpp, quality, escapes = probe.code(windows, qp, "ground truth")
            print(f"qp {qp:2d} ground truth: {bpp:.4f} bpp {quality:.2f} dB, escapes {100 * escapes:.1f} % of the rate, "
                  f"scale q50/q90/q99 {probe.quantiles('scale')}, q_dec q50/q90/q99 {probe.quantiles('q_dec')}, "
                  f"q_dec at the 0.5 floor {float(torch.cat([p.chunk(3, 1)[0].flatten() for p in probe.params]).le(0.5).float().mean()):.2f}")
        for qp in (21, 42, 63):
            line = ", ".join("{} {:.4f} bpp {:.2f} dB".format(ref, *probe.code(windows, qp, ref)[:2])
                             for ref in ("static", "intra"))
            whole, quads = probe.code(windows, qp, "ground truth"), probe.code(quadrants, qp, "ground truth")
            with mock.patch("ui2c.training.unit._ste_round", lambda v: v):  # no quantisation anywhere
                unrounded = probe.code(windows, qp, "ground truth")[1]
            print(f"qp {qp:2d} {line}; 256² whole {whole[0]:.4f} bpp {whole[1]:.2f} dB, "
                  f"as 128² quadrants {quads[0]:.4f} bpp {quads[1]:.2f} dB, nothing rounded {unrounded:.2f} dB")
    print_bounds(windows, model.cfg)


if __name__ == "__main__":
    main()
