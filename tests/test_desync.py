"""The desync measurement: a backend decoding its own stream never desynchronises,
and a stream decoded by a decoder with other probabilities is caught and counted."""
from __future__ import annotations

from ui2c.benchmarks.desync import measure
from ui2c.runtime.model import load_codec
from ui2c.video_io import frame_to_array, open_video, pad
from ui2c.shipped import DEMO_CLIP


def test_same_backend_is_in_sync_and_perturbed_decoder_is_not():
    frames = [pad(frame_to_array(f)) for f in open_video(DEMO_CLIP)][:4]
    codec = load_codec("ui2c-s", backend="torch")
    same = measure(codec, codec, frames, qp=30)
    assert same["index_mismatch_fraction"] == 0 and same["frame_mismatch_fraction"] == 0 and not same["failed_units"]
    other = load_codec("ui2c-s", backend="torch")
    other.backend.model.y_prior_fusion.conv[-1].bias.data += 0.05  # the decoder's scales and means drift
    drifted = measure(codec, other, frames, qp=30)
    assert drifted["index_mismatch_fraction"] > 0 and drifted["frame_mismatch_fraction"] == 1.0
