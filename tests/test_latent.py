"""The torch latent codec against an independent NumPy reference, and the golden stream.

The reference below is the stream format's first implementation, written directly
in NumPy: the masks are float32, so every product with a mask (and all that follows)
is float32 even for fp16 networks; residuals round half to even; a folded scale at
or under the skip threshold makes a symbol skipped (index −1 here).  The torch codec
must match it symbol for symbol, index for index and bit for bit in y_hat.

The golden stream pins the whole bitstream: the shipped weights on the shipped clip
must give the committed SHA-256, so no change to the format, the latent codec, the
tables or the weights can pass silently (update the hash deliberately, with the
change that explains it).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from ui2c.entropy.tables import scale_index
from ui2c.export.feeds import demo_clip
from ui2c.entropy import latent
from ui2c.runtime.api import decode_frames, encode_file
from ui2c.runtime.model import load_codec

GOLDEN_SHA256 = "ef656a53de96bb8f7af06260ae380a99ed630f1fec55b0c664f21666213110af"


def _reference(ys, scales, means, mask, skip=latent.SKIP_THRESHOLD):
    half = mask.shape[1] // 2
    fold = lambda x: x[0, :half] + x[0, half:]  # noqa: E731
    folded_scales = fold(scales * mask)
    coded = folded_scales > skip
    indexes = np.where(coded, scale_index(np.where(coded, folded_scales, 1.0)).astype(np.int32), -1)
    q = fold(np.rint((ys - means) * mask))
    q[~coded] = 0.0
    y_hat = (np.concatenate([q, q])[None] * mask + means) * mask
    return indexes.reshape(-1), q.astype(np.int32).reshape(-1), y_hat


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_latent_codec_equals_the_numpy_reference(dtype):
    rng = np.random.default_rng(1)
    c, h, w = 8, 6, 10
    ys = (rng.normal(size=(1, c, h, w)) * 5).astype(dtype)
    means = rng.normal(size=(1, c, h, w)).astype(dtype)
    scales = (rng.random((1, c, h, w)) * 2).astype(dtype)
    scales.flat[:4] = [latent.SKIP_THRESHOLD, 0.11, 16.0, 6e4]  # boundary, table ends, beyond
    ties = (0, 1, 1, slice(0, 4))  # coded (scale 1) in whichever step covers them; ys - means is an exact tie
    ys[ties], means[ties], scales[ties] = [0.5, 2.5, -1.5, 2048.0], 0.0, 1.0  # to even: 0, 2, -2 (not 1, 3, -1)
    for mask_t in latent.checkerboard_masks(c, h, w):
        mask = mask_t.numpy()
        ref_idx, ref_sym, ref_y_hat = _reference(ys, scales, means, mask)
        t = lambda a: torch.from_numpy(a)  # noqa: E731
        idx = latent.step_indexes(t(scales), mask_t)
        sym, y_hat = latent.quantize_step(t(ys), t(means), mask_t, idx)
        np.testing.assert_array_equal(idx.numpy(), ref_idx)
        np.testing.assert_array_equal(sym.numpy(), ref_sym)
        assert y_hat.dtype == torch.float32 and np.array_equal(y_hat.numpy(), ref_y_hat)
        decoded = latent.dequantize_step(sym, t(means), mask_t)
        assert np.array_equal(decoded.numpy(), ref_y_hat)
        assert (ref_idx < 0).any() and (ref_idx >= 0).any()


def test_z_indexes_are_qp_row_times_channels_plus_channel():
    idx = latent.z_indexes((1, 3, 2, 2), qp_row=5)
    assert idx.tolist() == [15] * 4 + [16] * 4 + [17] * 4


def test_golden_stream(tmp_path):
    """Stages with one torch thread (recorded in the producer, ``-t1``): the same bytes
    on any machine with the same kernels.  The hash changed when a unit's two y steps
    moved into one rANS stream (container version 2; version 1 hashed to 1b2ff959…ed6f),
    for the producer string
    (the stream with the old header hashed to def33f57…bbf2f) and for each new shipped
    weights (now fingerprint fd178188a696738f; with 58785f7b… d0629e3d…8238, with 6f56ca22…
    6c86c3eb…7aa3, with f20b1d28… 9782b8e5…72ed, with 7e99cc5f…
    64512d6b…7ed9, with c149ba8d… 5dfbf6ce…74c9, with 0465c03a… 2bf068f9…c888, with the
    first, 6eaea68c…, 87305413…68d47)."""
    codec = load_codec("ui2c-s", backend="torch", threads=1)
    stream = tmp_path / "golden.ui2c"
    res = encode_file(codec, demo_clip(), stream, qp=32, max_frames=8, keep_recon=True, progress=False)
    assert hashlib.sha256(stream.read_bytes()).hexdigest() == GOLDEN_SHA256
    decoded = [f for _, _, f in decode_frames(codec, stream)]
    assert len(decoded) == len(res.recon) == 8
    assert all(np.array_equal(a, b) for a, b in zip(decoded, res.recon))
