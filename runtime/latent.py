"""Latent coding between the network stages: quantize, skip, fold, entropy-code.

This is the part of DCVC-RT's ``compress_prior_2x`` / ``decompress_prior_2x`` that
sits *between* graphs (spec §3.3–3.4): the runtime owns it so every backend shares
one implementation, and a GPU backend replaces it with the plugin kernels that use
the same bitstream format.

Per step k (checkerboard mask over channel halves): residual r = (y/q_dec − μ)·mask
is rounded half-to-even; symbols whose folded scale ≤ ``skip_threshold`` are forced
to zero and never enter the stream; the two disjoint channel halves are folded into
one dense tensor and written in raster order.  The decoder derives the same skip
mask and CDF indexes from its own scales, so both sides must compute bit-identical
scales (same backend and precision).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..entropy import rans
from ..entropy.tables import CdfTables, scale_index
from ..models import ops

SKIP_THRESHOLD = 0.12  # DCVC-RT's README value for force_zero_thres


@lru_cache(maxsize=8)
def checkerboard_masks(channels: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The model's two-step masks (``models.ops.checkerboard_masks``) as read-only
    float32 arrays (1, C, H, W), cached per latent size."""
    masks = tuple(m.numpy() for m in ops.checkerboard_masks(channels, height, width))
    for m in masks:
        m.setflags(write=False)
    return masks


def fold(x: np.ndarray) -> np.ndarray:
    """(1, C, H, W) masked tensor → dense (C/2, H, W): the halves are disjoint."""
    half = x.shape[1] // 2
    return x[0, :half] + x[0, half:]


def unfold(folded: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.concatenate([folded, folded])[None] * mask


@dataclass
class StepSymbols:
    """What one step puts into (or takes out of) the stream."""

    coded: np.ndarray  # bool (C/2, H, W): not skipped
    indexes: np.ndarray  # int32 CDF row per coded symbol


def step_symbols(scales: np.ndarray, mask: np.ndarray, skip_threshold: float) -> StepSymbols:
    folded_scales = fold(scales * mask)
    coded = folded_scales > skip_threshold
    return StepSymbols(coded, scale_index(folded_scales[coded]).astype(np.int32))


def encode_step(ys: np.ndarray, scales: np.ndarray, means: np.ndarray, mask: np.ndarray,
                tables: CdfTables, skip_threshold: float, threads: int) -> tuple[bytes, np.ndarray]:
    """Code one step; returns (stream, y_hat contribution of this step)."""
    sym = step_symbols(scales, mask, skip_threshold)
    q = fold(np.rint((ys - means) * mask))
    q[~sym.coded] = 0.0
    stream = rans.encode(q[sym.coded].astype(np.int32), sym.indexes, tables, threads)
    return stream, (unfold(q, mask) + means) * mask


def decode_step(stream: bytes, scales: np.ndarray, means: np.ndarray, mask: np.ndarray,
                tables: CdfTables, skip_threshold: float, threads: int) -> np.ndarray:
    sym = step_symbols(scales, mask, skip_threshold)
    q = np.zeros(sym.coded.shape, dtype=np.float32)
    q[sym.coded] = rans.decode(stream, sym.indexes, tables, threads)
    return (unfold(q, mask) + means) * mask


def z_indexes(shape: tuple[int, ...], qp_row: int) -> np.ndarray:
    """CDF row of each z element, flattened in (C, H, W) order: qp·C + channel."""
    _, c, h, w = shape
    return (qp_row * c + np.repeat(np.arange(c, dtype=np.int32), h * w)).astype(np.int32)


def encode_z(z_hat: np.ndarray, qp_row: int, tables: CdfTables, threads: int) -> bytes:
    return rans.encode(z_hat.reshape(-1).astype(np.int32), z_indexes(z_hat.shape, qp_row), tables, threads)


def decode_z(stream: bytes, shape: tuple[int, ...], qp_row: int, tables: CdfTables, threads: int) -> np.ndarray:
    values = rans.decode(stream, z_indexes(shape, qp_row), tables, threads)
    return values.astype(np.float32).reshape(shape)
