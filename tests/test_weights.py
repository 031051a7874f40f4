"""The shipped ui2c-s weights load by default and make a working codec.

Floors come from a measurement of the shipped weights (YUV-PSNR 30.89 dB at qp 40 on
these 4 frames with the eighth weights, fingerprint fd178188a696738f, and 26.75 / 31.12 dB
at qp 8 / 56; 0.024 / 0.169 / 0.286 bpp at qp 8 / 40 / 56; 30.82 dB at qp 40 with the
seventh, 30.72 with the sixth, 30.75 with the fifth, 30.6 with the fourth, 30.3 with the
third, 30.1 with the second, 30 with the first, issue 7), minus a margin of at least 2 dB,
and the rate may not exceed the measured one by more than 30 %, so a broken weight file,
loader or runtime (or one that writes bloated streams) fails here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ui2c.runtime.api import encode_file
from ui2c.runtime.metrics import frame_psnr, mean_psnr
from ui2c.runtime.model import load_codec
from ui2c.shipped import default_weights
from ui2c.video_io import array_to_planes, open_video

DEMO = Path(__file__).resolve().parents[1] / "ui2c" / "assets" / "bbb_320x180_16f.y4m"
PSNR_FLOOR_QP40 = 28.0
BPP_CEILING = {8: 0.031, 40: 0.220, 56: 0.372}  # 1.3x the eighth weights' rates


def test_shipped_weights_are_small_float16_with_provenance():
    path = default_weights("ui2c-s")
    assert path is not None and path.stat().st_size <= 20e6
    blob = torch.load(path, weights_only=True)
    runs = blob["meta"].get("mean_of", [blob["meta"]])  # a mean of exports lists each one's provenance
    assert blob["preset"] == "ui2c-s" and all(run["iterations"] > 1000 for run in runs)
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values())


@pytest.fixture(scope="module")
def rd_points(tmp_path_factory) -> dict[int, tuple[float, float]]:
    codec = load_codec("ui2c-s")
    with open_video(DEMO) as reader:
        source = [f for _, f in zip(range(4), reader)]
    points = {}
    for qp in (8, 40, 56):
        res = encode_file(codec, DEMO, tmp_path_factory.mktemp("w") / "s.ui2c", qp, max_frames=4, keep_recon=True,
                          progress=False)
        psnr = mean_psnr(frame_psnr(s.planes, array_to_planes(r, "420")) for s, r in zip(source, res.recon))
        points[qp] = (res.bpp, psnr.yuv)
    return points


def test_quality_floor_and_rate_ceiling(rd_points):
    assert rd_points[40][1] >= PSNR_FLOOR_QP40
    assert all(rd_points[qp][0] <= ceiling for qp, ceiling in BPP_CEILING.items()), rd_points


def test_rate_and_quality_rise_with_qp(rd_points):
    bpp = [rd_points[q][0] for q in (8, 40, 56)]
    psnr = [rd_points[q][1] for q in (8, 40, 56)]
    assert np.all(np.diff(bpp) > 0), bpp
    assert np.all(np.diff(psnr) > 0), psnr
