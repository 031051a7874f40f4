"""Metrics against hand-computed values (255² = 65025)."""
import numpy as np
import pytest

from ui2c.runtime.metrics import FramePSNR, bpp, frame_psnr, mean_psnr, plane_psnr

REF = np.full((2, 2), 100, np.uint8)


def test_plane_psnr_by_hand():
    # one pixel off by 4: MSE = 16 / 4 = 4, PSNR = 10·log10(65025 / 4) = 10·log10(16256.25)
    rec = np.array([[100, 100], [100, 104]], np.float32)
    assert plane_psnr(REF, rec) == pytest.approx(42.1102037, abs=1e-6)


def test_psnr_uses_the_unrounded_reconstruction():
    # every pixel off by 0.4: MSE = 0.16 -> 56.0896 dB, although rounding would give 99.9
    assert plane_psnr(REF, np.full((2, 2), 100.4)) == pytest.approx(56.0896038, abs=1e-6)


def test_psnr_clamps_to_8_bit_range_and_caps():
    ref = np.array([[0, 255]], np.uint8)
    assert plane_psnr(ref, np.array([[-7.0, 300.0]])) == 99.9
    assert plane_psnr(REF, REF) == 99.9
    assert plane_psnr(REF, REF + 1e-4) == 99.9  # 128 dB is capped too


def test_yuv_weighting_and_mean():
    assert FramePSNR(40.0, 48.0, 56.0).yuv == 43.0  # (240 + 48 + 56) / 8
    frames = [FramePSNR(40.0, 48.0, 56.0), FramePSNR(30.0, 40.0, 40.0)]
    mean = mean_psnr(frames)
    assert (mean.y, mean.u, mean.v) == (35.0, 44.0, 48.0)
    assert mean.yuv == pytest.approx((43.0 + 32.5) / 2)
    with pytest.raises(ValueError):
        mean_psnr([])


def test_frame_psnr_per_plane():
    y = np.zeros((4, 4), np.uint8)
    c = np.zeros((2, 2), np.uint8)
    rec = (np.zeros((4, 4)), np.array([[0, 0], [0, 2.0]]), c.astype(float))  # U: MSE = 1
    got = frame_psnr((y, c, c), rec)
    assert (got.y, got.v) == (99.9, 99.9)
    assert got.u == pytest.approx(48.1308036, abs=1e-6)  # 10·log10(65025)
    with pytest.raises(ValueError, match="shapes differ"):
        frame_psnr((y, c, c), (y, y, c))


def test_bpp_counts_bytes_over_original_pixels():
    assert bpp(1000, 2, 180, 320) == pytest.approx(8000 / 115200)
    with pytest.raises(ValueError):
        bpp(1, 0, 180, 320)
