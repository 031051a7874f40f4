"""Probability tables of DCVC-RT (spec §3.1, §3.2, §3.5), built bit-exactly.

The coder only ever sees integer CDF rows, so encoder and decoder agree as long as
both build the same integers.  The official code builds them in float32 with
``torch.distributions.Normal`` (Gaussian) and with the model's float32 bit estimator
(factorized z), then quantizes with ``pmf_to_quantized_cdf`` (16-bit precision).
We follow that exactly: float32 evaluation, float32 thresholds (0.9999 and 1e-4 are
compared as float32 like ``torch.zeros_like(x) + 0.9999``), and the integer
quantization of §3.5.  The tail of the factorized prior is evaluated left to right in
float32, ``(cdf(-minima - 0.5) + 1) - cdf(maxima)``, as written in §3.1.
"""
from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

PRECISION = 16
TOTAL = 1 << PRECISION
SCALE_MIN = 0.11
SCALE_MAX = 16.0
NUM_SCALES = 128
_SUPPORT_SEARCH = range(2, 9)  # candidate half-widths / minima / maxima, §3.1–3.2
_HIGH = np.float32(0.9999)
_LOW = np.float32(1e-4)


@dataclass
class CdfTables:
    """Integer CDF rows registered with the coder (spec §3.5).

    ``cdf[i, :cdf_length[i]]`` is strictly increasing from 0 to 65536; symbol value
    ``v`` is coded with slot ``v - offset[i]`` and slot ``cdf_length[i] - 2`` is the
    escape.  Rows are zero-padded to a common width.
    """

    cdf: np.ndarray
    cdf_length: np.ndarray
    offset: np.ndarray
    _native: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.cdf = np.ascontiguousarray(self.cdf, dtype=np.int32)
        self.cdf_length = np.ascontiguousarray(self.cdf_length, dtype=np.int32)
        self.offset = np.ascontiguousarray(self.offset, dtype=np.int32)
        n = self.cdf.shape[0] if self.cdf.ndim == 2 else -1
        if n < 0 or self.cdf_length.shape != (n,) or self.offset.shape != (n,):
            raise ValueError("CdfTables needs cdf [N, width], cdf_length [N], offset [N]")

    @property
    def num_tables(self) -> int:
        return int(self.cdf.shape[0])

    def fingerprint(self) -> str:
        """First 16 hex digits of a SHA-256 over the integer arrays.

        A container stores it so a decoder can refuse a stream built with other tables
        (which would otherwise decode to garbage without any error).
        """
        h = hashlib.sha256()
        for arr in (self.cdf, self.cdf_length, self.offset):
            h.update(np.asarray(arr.shape, dtype="<i8").tobytes())
            h.update(arr.astype("<i4").tobytes())
        return h.hexdigest()[:16]


def quantize_pmf(pmf: np.ndarray) -> np.ndarray:
    """Quantize one float32 pmf (tail included) to a 16-bit CDF (spec §3.5).

    Integer steps mirror ``pmf_to_quantized_cdf``: round half away from zero of the
    exactly scaled float32 value, renormalize with integer division, prefix sum, force
    the last entry to 2^16, then give every zero-width symbol one unit stolen from the
    smallest bin wider than one (first such bin on ties).
    """
    p = np.asarray(pmf, dtype=np.float32).astype(np.float64)
    if np.any(~np.isfinite(p)) or np.any(p < 0):
        raise ValueError("pmf must be finite and non-negative")
    freq = np.floor(p * TOTAL + 0.5).astype(np.int64)
    total = int(freq.sum())
    if total == 0:
        raise ValueError("pmf sums to zero")
    freq = (TOTAL * freq) // total
    cdf = np.concatenate([[0], np.cumsum(freq)]).astype(np.int64)
    cdf[-1] = TOTAL
    for i in range(len(cdf) - 1):
        if cdf[i] != cdf[i + 1]:
            continue
        widths = np.diff(cdf)
        candidates = np.flatnonzero(widths > 1)
        steal = int(candidates[np.argmin(widths[candidates])])
        if steal < i:
            cdf[steal + 1 : i + 1] -= 1
        else:
            cdf[i + 1 : steal + 1] += 1
    return cdf.astype(np.int32)


def _stack_rows(rows: list[np.ndarray], offsets: np.ndarray) -> CdfTables:
    width = max(len(r) for r in rows)
    cdf = np.zeros((len(rows), width), dtype=np.int32)
    for i, r in enumerate(rows):
        cdf[i, : len(r)] = r
    lengths = np.array([len(r) for r in rows], dtype=np.int32)
    return CdfTables(cdf=cdf, cdf_length=lengths, offset=np.asarray(offsets, dtype=np.int32))


def scale_table() -> torch.Tensor:
    """The 128 Gaussian scales, float32 as ``torch.exp(torch.linspace(...))``."""
    return torch.exp(torch.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), NUM_SCALES))


def scale_thresholds() -> np.ndarray:
    """Float32 lower bounds of each scale index (entry k = smallest float32 with index k).

    The index is floor((ln s - ln 0.11) * 127 / ln(16/0.11)) of the exact real value of
    the float32 input.  Comparing against these thresholds gives exactly that floor
    without a float32 ``log``, whose last bit differs between libm/SIMD builds and GPUs;
    encoder and decoder must agree bit for bit (spec §3.4).
    """
    step = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (NUM_SCALES - 1)
    out = np.empty(NUM_SCALES, dtype=np.float32)
    for k in range(NUM_SCALES):
        real = SCALE_MAX if k == NUM_SCALES - 1 else SCALE_MIN * math.exp(k * step)
        f = np.float32(real)
        out[k] = f if float(f) >= real else np.nextafter(f, np.float32(np.inf))
    out[0] = -np.inf  # everything below 0.11 clamps to index 0
    return out


_THRESHOLDS = scale_thresholds()


def scale_index(scales: np.ndarray) -> np.ndarray:
    """Scale index (uint8 in [0, 127]) of float32 scales: clamp, log-map, floor (§3.2).

    NaN maps to 127 (sorted last), the same as +inf.
    """
    s = np.asarray(scales, dtype=np.float32)
    return (np.searchsorted(_THRESHOLDS, s, side="right") - 1).astype(np.uint8)


@lru_cache(maxsize=8)
def _device_thresholds(device: torch.device) -> torch.Tensor:
    """The thresholds on ``device``, uploaded once: a copy per call would make every
    latent step of a CUDA session wait for a host-to-device transfer."""
    return torch.from_numpy(_THRESHOLDS[1:]).to(device)


def scale_index_torch(scales: torch.Tensor) -> torch.Tensor:
    """Same as :func:`scale_index` for a float32 torch tensor on any device (uint8)."""
    return torch.bucketize(scales.float(), _device_thresholds(scales.device), right=True).to(torch.uint8)


def gaussian_support(scales: torch.Tensor) -> torch.Tensor:
    """Half-width of the Gaussian table of each scale (float32, spec §3.2): the smallest
    candidate whose CDF exceeds 0.9999, else the largest.  Values beyond it are escapes;
    training prices them with the same rule (``training/unit.py``)."""
    normal = torch.distributions.Normal(torch.zeros_like(scales), scales, validate_args=False)
    center = torch.full_like(scales, float(max(_SUPPORT_SEARCH)))
    for i in reversed(_SUPPORT_SEARCH):  # keep the smallest i that passes
        probs = normal.cdf(torch.full_like(scales, float(i)))
        center = torch.where(probs > float(_HIGH), torch.full_like(scales, float(i)), center)
    return center


def gaussian_tables() -> CdfTables:
    """The 128 Gaussian-conditional tables of spec §3.2, in float32 like the official code."""
    scales = scale_table()
    center_i = gaussian_support(scales).to(torch.int64)
    max_length = int((2 * center_i + 1).max())
    samples = (torch.arange(max_length)[None, :] - center_i[:, None]).float()
    normal2 = torch.distributions.Normal(
        torch.zeros_like(samples), scales[:, None].expand_as(samples), validate_args=False
    )
    upper = normal2.cdf(samples + 0.5)
    lower = normal2.cdf(samples - 0.5)
    pmf = (upper - lower).numpy()
    tail = (2 * lower[:, 0]).numpy()
    rows = []
    for k in range(NUM_SCALES):
        length = 2 * int(center_i[k]) + 1
        rows.append(quantize_pmf(np.append(pmf[k, :length], tail[k])))
    return _stack_rows(rows, -center_i.numpy())


def factorized_tables(cdf_fn: Callable[[np.ndarray], np.ndarray], num_rows: int) -> CdfTables:
    """Tables of the factorized z prior (spec §3.1) from its CDF.

    ``cdf_fn(x)`` evaluates the bit estimator for a float32 array ``x[rows, k]`` and
    returns the float32 CDF with the same shape; row ``r`` is the (qp, channel) pair
    ``r = qp * C + c``.  One call is made per evaluation point set, as the official
    ``update()`` evaluates whole tensors.
    """
    cands = np.array(list(_SUPPORT_SEARCH), dtype=np.float32)

    def cdf(x: np.ndarray) -> np.ndarray:
        out = np.asarray(cdf_fn(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32)
        if out.shape != x.shape:
            raise ValueError(f"cdf_fn returned shape {out.shape}, expected {x.shape}")
        return out

    def smallest(ok: np.ndarray) -> np.ndarray:
        first = np.argmax(ok, axis=1)
        return np.where(ok.any(axis=1), cands[first], cands[-1]).astype(np.int64)

    grid = np.broadcast_to(cands, (num_rows, len(cands)))
    minima = smallest(cdf(-grid) < _LOW)
    maxima = smallest(cdf(grid) > _HIGH)
    lengths = minima + maxima + 1
    samples = (np.arange(lengths.max())[None, :] - minima[:, None]).astype(np.float32)
    pmf = cdf(samples + np.float32(0.5)) - cdf(samples - np.float32(0.5))
    low = cdf((-minima.astype(np.float32) - np.float32(0.5))[:, None])[:, 0]
    high = cdf(maxima.astype(np.float32)[:, None])[:, 0]
    tail = (low + np.float32(1.0)) - high
    rows = [quantize_pmf(np.append(pmf[r, : lengths[r]], tail[r])) for r in range(num_rows)]
    return _stack_rows(rows, -minima)



def z_tables(model: torch.nn.Module) -> CdfTables:
    """Integer tables of a model's hyper-latent prior, one row per (qp row, channel)."""
    estimator = model.bit_estimator_z

    def cdf(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return estimator.cdf_rows(torch.from_numpy(x)).numpy()

    return factorized_tables(cdf, estimator.rows * estimator.channels)
