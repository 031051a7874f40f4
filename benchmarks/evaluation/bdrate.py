"""Bjøntegaard delta rate and PSNR (VCEG-M33), piecewise-cubic (PCHIP) variant.

The original VCEG-M33 fits one cubic polynomial per curve, which overshoots between
points when a curve has more than four of them or bends sharply; the JVET/AOM common
test conditions replaced it by monotone piecewise-cubic Hermite interpolation
(Fritsch–Carlson slopes, the same curve as MATLAB's/SciPy's ``pchip``).  Both
interpolate log-rate as a function of PSNR and average the gap between the two curves
over the PSNR range they share.  The integral of each Hermite piece is taken in closed
form, so the only error is the interpolation model itself: two curves whose rates
differ by one constant factor give exactly that factor.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


class NoOverlapError(ValueError):
    """The two curves share no PSNR (or rate) interval, so no difference is defined."""


def pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch–Carlson derivatives at the knots: zero at local extrema, a weighted
    harmonic mean of the neighbouring secants elsewhere, and the shape-preserving
    three-point formula at both ends (what keeps the curve monotone where the data are)."""
    h = np.diff(x)
    delta = np.diff(y) / h
    n = len(x)
    if n == 2:
        return np.array([delta[0], delta[0]])
    d = np.zeros(n)
    for k in range(1, n - 1):
        if delta[k - 1] * delta[k] > 0:
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
    d[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    d[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _end_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > abs(3 * m0):
        return 3 * m0
    return d


def _pieces(x: np.ndarray, y: np.ndarray) -> list[np.polynomial.Polynomial]:
    """The Hermite piece between knots k and k+1 as a cubic in t = (s - x_k) / h_k."""
    d = pchip_slopes(x, y)
    pieces = []
    for k in range(len(x) - 1):
        h = x[k + 1] - x[k]
        c2 = 3 * (y[k + 1] - y[k]) - (2 * d[k] + d[k + 1]) * h
        c3 = 2 * (y[k] - y[k + 1]) + (d[k] + d[k + 1]) * h
        pieces.append(np.polynomial.Polynomial([y[k], d[k] * h, c2, c3]))
    return pieces


def pchip_integral(x: Sequence[float], y: Sequence[float], lo: float, hi: float) -> float:
    """∫ from ``lo`` to ``hi`` of the PCHIP interpolant through (x, y), x increasing."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    total = 0.0
    for k, piece in enumerate(_pieces(x, y)):
        a, b = max(lo, x[k]), min(hi, x[k + 1])
        if b <= a:
            continue
        h = x[k + 1] - x[k]
        antiderivative = piece.integ()
        total += h * (antiderivative((b - x[k]) / h) - antiderivative((a - x[k]) / h))
    return total


def pchip_value(x: Sequence[float], y: Sequence[float], at: float) -> float:
    """The PCHIP interpolant through (x, y), x increasing, at ``at`` within [x_0, x_-1]."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if not x[0] <= at <= x[-1]:
        raise ValueError(f"{at:.4g} is outside the curve's range [{x[0]:.4g}, {x[-1]:.4g}]")
    k = min(int(np.searchsorted(x, at, side="right")) - 1, len(x) - 2)
    return float(_pieces(x, y)[k]((at - x[k]) / (x[k + 1] - x[k])))


def _curve(x: Sequence[float], y: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) sorted by x; x must be strictly increasing for y to be a function of it."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"a curve needs at least 2 (rate, PSNR) points, got {len(xs)} and {len(ys)}")
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if np.any(np.diff(xs) <= 0):
        raise ValueError(f"{what} values must be distinct, got {xs.tolist()}")
    return xs, ys


def _mean_gap(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], what: str) -> float:
    """Mean of test − anchor over the x range both curves cover."""
    (xa, ya), (xt, yt) = anchor, test
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if hi <= lo:
        raise NoOverlapError(f"{what} ranges [{xa[0]:.4g}, {xa[-1]:.4g}] and [{xt[0]:.4g}, {xt[-1]:.4g}] "
                             "do not overlap")
    return (pchip_integral(xt, yt, lo, hi) - pchip_integral(xa, ya, lo, hi)) / (hi - lo)


def _log_rates(rates: Sequence[float]) -> np.ndarray:
    r = np.asarray(rates, dtype=np.float64)
    if np.any(r <= 0):
        raise ValueError("rates must be positive")
    return np.log(r)


def bd_rate(anchor_rates: Sequence[float], anchor_psnrs: Sequence[float],
            test_rates: Sequence[float], test_psnrs: Sequence[float]) -> float:
    """Average rate difference (%) of *test* against *anchor* at equal PSNR; negative
    means the test codec needs fewer bits.  Raises :class:`NoOverlapError` when the
    PSNR ranges do not overlap."""
    gap = _mean_gap(_curve(anchor_psnrs, _log_rates(anchor_rates), "PSNR"),
                    _curve(test_psnrs, _log_rates(test_rates), "PSNR"), "PSNR")
    return float((np.exp(gap) - 1) * 100)


def bd_psnr(anchor_rates: Sequence[float], anchor_psnrs: Sequence[float],
            test_rates: Sequence[float], test_psnrs: Sequence[float]) -> float:
    """Average PSNR difference (dB) of *test* against *anchor* at equal rate, over the
    log-rate range both cover: still defined when codecs are too far apart in quality
    to share a PSNR range (where BD-rate is not)."""
    return float(_mean_gap(_curve(_log_rates(anchor_rates), anchor_psnrs, "log-rate"),
                           _curve(_log_rates(test_rates), test_psnrs, "log-rate"), "log-rate"))


def psnr_gaps(anchor_rates: Sequence[float], anchor_psnrs: Sequence[float],
              test_rates: Sequence[float], test_psnrs: Sequence[float], count: int = 5) -> list[tuple[float, float]]:
    """(rate, test − anchor PSNR in dB) at ``count`` log-spaced rates across the shared
    rate range: where along the curve BD-PSNR's average gap comes from."""
    anchor = _curve(_log_rates(anchor_rates), anchor_psnrs, "log-rate")
    test = _curve(_log_rates(test_rates), test_psnrs, "log-rate")
    lo, hi = max(anchor[0][0], test[0][0]), min(anchor[0][-1], test[0][-1])
    if hi <= lo:
        raise NoOverlapError(f"rate ranges [{np.exp(anchor[0][0]):.4g}, {np.exp(anchor[0][-1]):.4g}] and "
                             f"[{np.exp(test[0][0]):.4g}, {np.exp(test[0][-1]):.4g}] do not overlap")
    return [(float(np.exp(r)), pchip_value(*test, r) - pchip_value(*anchor, r)) for r in np.linspace(lo, hi, count)]
