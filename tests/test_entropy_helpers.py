"""Shared inputs for the entropy tests (a plain module: tests/conftest.py belongs to the lead)."""
from __future__ import annotations

import functools

import numpy as np

from ui2c.entropy import tables as T

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@functools.lru_cache(maxsize=None)
def gaussian() -> T.CdfTables:
    return T.gaussian_tables()


def random_symbols(
    rng: np.random.Generator, n: int, escape_rate: float = 0.01, tables: T.CdfTables | None = None, lo: int = 0, hi: int = 128
):
    """Gaussian residuals at random scale indexes in [lo, hi), some out of range.

    Escapes include values just outside the support and the int32 extremes, so both
    escape directions and the largest raw values are exercised.
    """
    tables = tables or gaussian()
    idx = rng.integers(lo, min(hi, tables.num_tables), n).astype(np.int32)
    sigma = T.scale_table().numpy()[np.minimum(idx, 127)]
    sym = np.round(rng.normal(0.0, sigma)).astype(np.int64)
    esc = rng.random(n) < escape_rate
    choices = np.array([INT32_MIN, INT32_MAX, -9, 9, 100, -100000, 123456789])
    sym[esc] = rng.choice(choices, int(esc.sum()))
    return sym.astype(np.int32), idx


def ideal_bits(symbols: np.ndarray, indexes: np.ndarray, tables: T.CdfTables) -> float:
    """Sum of -log2 p under the quantized CDFs (escape raw values not counted)."""
    off = tables.offset[indexes].astype(np.int64)
    esc_slot = tables.cdf_length[indexes].astype(np.int64) - 2
    v = symbols.astype(np.int64) - off
    slot = np.where((v >= 0) & (v < esc_slot), v, esc_slot)
    freq = tables.cdf[indexes, slot + 1] - tables.cdf[indexes, slot]
    return float(np.sum(16 - np.log2(freq.astype(np.float64))))
