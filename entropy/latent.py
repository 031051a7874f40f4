"""The latent codec: the work between the network stages, in torch on any device.

This is the part of DCVC-RT's ``compress_prior_2x`` / ``decompress_prior_2x`` that
sits *between* graphs (spec §3.3–3.4).  It is written once, on torch tensors, so the
CPU and CUDA sessions, the export feeds and the tests run the same arithmetic, and
a CUDA session never brings a latent to the host: only the flat int32 symbols and
CDF indexes of each step reach the entropy coder (``ui2c.entropy.coder``).

Per step k (checkerboard mask over channel halves): the residual (y/q_dec − μ)·mask
is rounded half-to-even; symbols whose folded scale ≤ ``skip_threshold`` are forced
to zero and never enter the stream (their index is −1); the two disjoint channel
halves are folded into one dense (C/2, H, W) tensor, coded in raster order.  The
decoder derives the same indexes from its own scales, so both sides must compute
bit-identical scales (same backend, device kind, precision and compile mode).

The masks are float32, so every product with them — and everything downstream of
it — is float32 whatever the network precision: the fp16 sessions keep the exact
arithmetic of the stream format's first (NumPy) implementation.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from .tables import scale_index_torch
from ..models import ops

SKIP_THRESHOLD = 0.12  # DCVC-RT's README value for force_zero_thres


@lru_cache(maxsize=16)
def checkerboard_masks(channels: int, height: int, width: int,
                       device: torch.device = torch.device("cpu")) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's two-step masks (``models.ops.checkerboard_masks``), float32
    (1, C, H, W) on ``device``, cached per latent size.  Treat them as read-only."""
    return ops.checkerboard_masks(channels, height, width, device)


def fold(x: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) masked tensor → dense (C/2, H, W): the halves are disjoint."""
    half = x.shape[1] // 2
    return x[0, :half] + x[0, half:]


def unfold(folded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.cat((folded, folded))[None] * mask


def step_indexes(scales: torch.Tensor, mask: torch.Tensor, skip_threshold: float = SKIP_THRESHOLD) -> torch.Tensor:
    """Flat int32 CDF index of every folded position of one step; −1 where skipped."""
    folded = fold(scales * mask)
    index = scale_index_torch(folded).to(torch.int32)
    return torch.where(folded > skip_threshold, index, -1).reshape(-1)


def quantize_step(ys: torch.Tensor, means: torch.Tensor, mask: torch.Tensor,
                  indexes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder side of one step → (flat int32 symbols, 0 where skipped; this step's
    contribution to y_hat, float32 (1, C, H, W))."""
    q = fold(torch.round((ys - means) * mask))
    q = torch.where(indexes.view(q.shape) >= 0, q, 0.0)
    return q.to(torch.int32).reshape(-1), (unfold(q, mask) + means) * mask


def dequantize_step(symbols: torch.Tensor, means: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Decoder side of one step: decoded flat symbols → this step's y_hat contribution."""
    half = mask.shape[1] // 2
    q = symbols.view(half, *mask.shape[2:]).to(torch.float32)
    return (unfold(q, mask) + means) * mask


def z_indexes(shape: tuple[int, ...], qp_row: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """CDF row of each z element, flattened in (C, H, W) order: qp·C + channel."""
    _, c, h, w = shape
    channel = torch.arange(c, dtype=torch.int32, device=device).repeat_interleave(h * w)
    return channel + qp_row * c
