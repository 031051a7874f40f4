"""Differentiable coding of one pair with a qp per sample (training only).

The model's own table lookups (``slot_scale``, ``reconstruct``) select one qp for the
whole batch, which is what a codec session needs.  Training draws a qp per sample so a
batch covers the whole rate range at every step; this module therefore looks the
tables up per sample and otherwise runs the networks as the codec's stages do, with
DCVC's training quantisation: additive uniform noise for the rate, straight-through
rounding for the reconstruction (so the networks see the values they will see at
inference), the two-step checkerboard prior.  The loss pieces (bits under the priors,
a lower bound that keeps gradients) are training-only and live here too.
"""
from __future__ import annotations

import torch

from ..entropy.tables import gaussian_support
from ..models.conditional import ConditionalCodec
from ..models.layers import replicate_pad_to
from ..models.ops import checkerboard_masks


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient still flows where it would raise ``x``.

    A plain clamp would freeze every value that starts below the bound: scales that
    start under the table's 0.11 would never learn to grow, so the model would learn
    to send nothing (CompressAI's ``LowerBound`` solves the same problem)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return torch.clamp_min(x, bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)).to(grad.dtype), None


def _bits(p: torch.Tensor) -> torch.Tensor:
    return -torch.log2(_LowerBound.apply(p, 1e-9))


# What an escape costs beyond its slot: the rANS format stores its value as a raw int32.
ESCAPE_BITS = 32.0


def _gaussian_bits(residual: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """-log2 P(residual) under a zero-mean Gaussian of ``scales`` (scale table range), plus
    the expected price of the escapes the runtime's tables will code.

    The tables stop at ±8 (smaller for small scales); a value outside costs its escape
    slot plus ``ESCAPE_BITS``.  Without that price a large scale looks cheap, and the
    top qps learned latents whose escapes added 13–23 % to the real rate of an intra unit."""
    s = torch.clamp_max(_LowerBound.apply(scales, 0.11), 16.0)
    normal = torch.distributions.Normal(0.0, 1.0)
    escape = 2 * normal.cdf(-(gaussian_support(s.detach()) + 0.5) / s)
    return _bits(normal.cdf((0.5 - residual.abs()) / s) - normal.cdf((-0.5 - residual.abs()) / s)) + ESCAPE_BITS * escape


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def sample_scale(table: torch.Tensor, qps: torch.Tensor) -> torch.Tensor:
    """Per-sample ``slot_scale``: ``qps`` is (N, slots); channel group s reads row qps[:, s].

    Returns (N, C, 1, 1)."""
    slots = qps.shape[1]
    group = table.shape[1] // slots
    return torch.cat([table.index_select(0, qps[:, s])[:, s * group : (s + 1) * group] for s in range(slots)], dim=1)


def code_pair(codec: ConditionalCodec, frames: torch.Tensor, ref: torch.Tensor, qps: torch.Tensor) -> dict:
    """Code ``frames`` (N, 3·slots, H, W) against ``ref`` with per-sample slot qps (N, slots).

    Returns the per-slot reconstructions (unclamped), the next reference and the
    estimated bits per sample."""
    x1 = codec.feature_extractor.conv1(ref)
    ctx = codec.feature_extractor.conv2(x1)
    temporal = codec.temporal_prior_encoder(x1 * sample_scale(codec.q_feature, qps))
    y = codec.encoder(frames, ctx, sample_scale(codec.q_encoder, qps))
    # Training crops are multiples of 64, so the pad is empty; skipping it also avoids an
    # inductor stride bug in the backward of an empty replication pad (torch 2.13).
    z = codec.hyper_encoder.conv(y if y.shape[-2] % 4 == 0 and y.shape[-1] % 4 == 0 else replicate_pad_to(y, 4))
    bits_z = _bits(codec.bit_estimator_z.likelihood(z + torch.empty_like(z).uniform_(-0.5, 0.5), qps[:, 0]))
    params = codec.prior(_ste_round(z), temporal)
    q_dec, scales, means = params.chunk(3, 1)
    q_dec = _LowerBound.apply(q_dec, 0.5)
    ys = y / q_dec
    mask0, mask1 = checkerboard_masks(ys.shape[1], ys.shape[2], ys.shape[3], ys.device)
    bits_y = 0.0
    y_hat = torch.zeros_like(ys)
    for step, mask in enumerate((mask0, mask1)):
        if step == 1:
            scales, means = codec.spatial_prior(y_hat, params)
        residual = (ys - means) * mask
        noisy = residual + torch.empty_like(residual).uniform_(-0.5, 0.5)
        bits_y = bits_y + (_gaussian_bits(noisy, scales) * mask).flatten(1).sum(1)
        y_hat = y_hat + (_ste_round(residual) + means) * mask
    feature = codec.decoder(y_hat * q_dec, ctx, sample_scale(codec.q_decoder, qps))
    q_recon = [codec.q_recon[s].index_select(0, qps[:, s]) for s in range(qps.shape[1])]
    recon = codec.recon_generation_net(feature, q_recon, clamp=False)
    return {"recon": recon, "ref": codec.feature_adaptor_p(feature), "bits": bits_y + bits_z.flatten(1).sum(1)}
