"""CDF tables versus independent float64 computations and the ranges of spec §3.1–3.5."""
import math

import numpy as np
import pytest
import torch
from scipy.special import expit
from scipy.stats import norm

from ui2c.entropy import tables as T

# Spec §3.2: half-width c of the support per scale index range.
SPEC_CENTERS = [(0, 40, 2), (41, 50, 3), (51, 58, 4), (59, 63, 5), (64, 68, 6), (69, 72, 7), (73, 127, 8)]


def check_valid_rows(t: T.CdfTables) -> None:
    for i in range(t.num_tables):
        row = t.cdf[i, : t.cdf_length[i]]
        assert row[0] == 0 and row[-1] == 65536
        assert np.all(np.diff(row) >= 1), f"row {i} has a zero-width symbol"
        assert np.all(t.cdf[i, t.cdf_length[i]:] == 0)


def test_gaussian_centers_match_spec():
    t = T.gaussian_tables()
    for lo, hi, c in SPEC_CENTERS:
        assert np.all(t.offset[lo : hi + 1] == -c)
        assert np.all(t.cdf_length[lo : hi + 1] == 2 * c + 3)
    assert t.cdf.shape == (128, 19)
    check_valid_rows(t)


def test_gaussian_probabilities_match_float64_normal():
    t = T.gaussian_tables()
    scales = np.exp(np.linspace(math.log(0.11), math.log(16), 128))
    for i, s in enumerate(scales):
        c = -t.offset[i]
        k = np.arange(-c, c + 1)
        pmf = norm.cdf((k + 0.5) / s) - norm.cdf((k - 0.5) / s)
        expected = np.append(pmf, 2 * norm.cdf((-c - 0.5) / s))
        freq = np.diff(t.cdf[i, : t.cdf_length[i]]) / 65536.0
        # rounding, floor renormalisation (its slack lands on the last bin) and the
        # zero-frequency fix-ups move a bin by at most one unit per symbol
        np.testing.assert_allclose(freq, expected, atol=len(freq) / 65536)


def test_quantize_pmf_known_answers():
    # tie on the smallest stealable bin: the first one gives the unit
    assert T.quantize_pmf(np.array([0.5, 0.5, 0.0])).tolist() == [0, 32767, 65535, 65536]
    # zero bins on both sides steal from the only wide bin, shifting entries by +-1
    assert T.quantize_pmf(np.array([1e-9, 1 - 2e-9, 1e-9])).tolist() == [0, 1, 65535, 65536]
    # integer renormalisation (65536 * f) // sum(f) with sum 65537; the slack goes last
    assert T.quantize_pmf(np.array([0.75, 0.25, 1 / 65536])).tolist() == [0, 49151, 65534, 65536]
    with pytest.raises(ValueError):
        T.quantize_pmf(np.array([0.5, -0.1]))


def reference_scale_index(s: np.ndarray) -> np.ndarray:
    clamped = np.clip(s.astype(np.float64), 0.11, 16.0)
    idx = np.floor((np.log(clamped) - math.log(0.11)) * 127 / (math.log(16) - math.log(0.11)))
    return np.clip(idx, 0, 127).astype(np.uint8)


def test_scale_index_is_floor_of_exact_formula():
    rng = np.random.default_rng(1)
    s = np.exp(rng.uniform(math.log(0.01), math.log(40), 200_000)).astype(np.float32)
    got = T.scale_index(s)
    ref = reference_scale_index(s)
    # float64 log may disagree only for inputs within ~1e-15 of a boundary; none here
    assert np.array_equal(got, ref)
    assert T.scale_index(np.array([0.0, 0.11, 16.0, 1e9, np.inf], np.float32)).tolist() == [0, 0, 127, 127, 127]
    thr = T.scale_thresholds()
    for k in range(1, 128):
        assert T.scale_index(thr[k : k + 1])[0] == k
        assert T.scale_index(np.nextafter(thr[k : k + 1], np.float32(0)))[0] == k - 1
    assert torch.equal(T.scale_index_torch(torch.from_numpy(s)), torch.from_numpy(got))


def logistic_cdf_fn(widths: np.ndarray):
    """A stand-in bit estimator: logistic CDF of width w_r per row, in float32."""

    def cdf(x: np.ndarray) -> np.ndarray:
        return expit(x.astype(np.float64) / widths[:, None]).astype(np.float32)

    return cdf


def test_factorized_tables_follow_spec_3_1():
    widths = np.array([0.05, 0.3, 0.6, 1.0, 1.5, 3.0])
    cdf = logistic_cdf_fn(widths)
    t = T.factorized_tables(cdf, len(widths))
    check_valid_rows(t)
    for r, w in enumerate(widths):
        f = lambda v: np.float32(expit(v / w))  # noqa: E731
        minima = next((i for i in range(2, 9) if f(-i) < np.float32(1e-4)), 8)
        maxima = next((i for i in range(2, 9) if f(i) > np.float32(0.9999)), 8)
        assert t.offset[r] == -minima
        assert t.cdf_length[r] == minima + maxima + 3
        k = np.arange(-minima, maxima + 1)
        pmf = expit((k + 0.5) / w) - expit((k - 0.5) / w)
        tail = expit((-minima - 0.5) / w) + 1 - expit(maxima / w)  # cdf(maxima), not maxima + 0.5
        freq = np.diff(t.cdf[r, : t.cdf_length[r]]) / 65536.0
        expected = np.append(pmf, tail)  # sums to > 1: quantization renormalizes
        np.testing.assert_allclose(freq, expected / expected.sum(), atol=len(freq) / 65536)


def test_factorized_rejects_wrong_shape():
    with pytest.raises(ValueError):
        T.factorized_tables(lambda x: x[:, :1], 3)


def test_fingerprint_tracks_every_integer():
    t = T.gaussian_tables()
    fp = t.fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert T.gaussian_tables().fingerprint() == fp
    changed = T.CdfTables(t.cdf.copy(), t.cdf_length.copy(), t.offset.copy())
    changed.offset[5] -= 1
    assert changed.fingerprint() != fp


@pytest.mark.parametrize("cdf", [np.int32(3), np.zeros(4), np.zeros((2, 3, 4))])
def test_tables_refuse_a_cdf_that_is_not_2_d(cdf):
    with pytest.raises(ValueError, match="needs cdf"):  # a 0-d cdf raised IndexError
        T.CdfTables(cdf, np.zeros(2), np.zeros(2))
