"""Codec sessions on the shipped clip (no ../shared needed): the one-unit pipeline of
the encoder and the encoder-side drift guard, judged by a host-side recomputation."""
from __future__ import annotations

import dataclasses
import math
import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported (the Triton decoder test)

import numpy as np
import pytest
import torch

from ui2c.export.feeds import clip_frames
from ui2c.errors import CorruptStreamError
from ui2c.runtime.container import pack_substreams, unpack_substreams
from ui2c.runtime.model import load_codec
from ui2c.runtime.session import Decoder, Encoder


@pytest.fixture(scope="module")
def codec():
    return load_codec("ui2c-s", backend="torch")


@pytest.fixture(scope="module")
def frames():
    return clip_frames(12)


def test_decoded_units_come_back_one_packet_later(codec, frames):
    enc = Encoder(codec, 192, 320, qp=30, scene_cut_threshold=None, reconstruct=True)
    units = [u for f in frames[:6] for u in enc.push(f)] + enc.flush()
    decoder = Decoder(codec, 192, 320)
    returned = [[d.first_frame for d in decoder.decode(u.packet)] for u in units]
    assert returned == [[], [0], [2]] and [d.first_frame for d in decoder.flush()] == [4]
    assert decoder.flush() == []


def test_units_come_back_one_push_later_and_flush_returns_the_rest(codec, frames):
    enc = Encoder(codec, 192, 320, qp=30, scene_cut_threshold=None)
    returned = [len(enc.push(f)) for f in frames[:5]]
    assert returned == [0, 0, 0, 1, 0]  # unit 0 comes back when unit 1 has been queued
    rest = enc.flush()
    assert [u.packet.first_frame for u in rest] == [2, 4] and rest[-1].packet.num_frames == 1
    assert enc.flush() == []


def _lanes(step: bytes) -> int:
    """P of a format-2 stream, read straight from its header (rans_format.hpp §5)."""
    assert step[0] == 0xB6
    fields, value, shift = [], 0, 0
    for byte in step[1:]:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            fields.append(value)
            if len(fields) == 2:
                return fields[1]
            value, shift = 0, 0
    raise AssertionError("header ended early")


def test_denser_lanes_cost_bits_and_decode_over_threads(codec, frames):
    """bits_per_lane trades rate for decoder parallelism: more lanes (several groups of
    32 here), a larger stream, the same pixels, and the same frames when decoded on two
    threads."""
    packets, recon = {}, {}
    for bits in (8192, 16):
        enc = Encoder(codec, 192, 320, qp=48, scene_cut_threshold=None, reconstruct=True, bits_per_lane=bits)
        units = [u for f in frames[:4] for u in enc.push(f)] + enc.flush()
        enc.close()
        packets[bits] = [u.packet for u in units]
        recon[bits] = [r for u in units for r in u.recon]
    steps = {bits: [unpack_substreams(p.payload) for p in packets[bits]] for bits in packets}
    y_lanes = {bits: [_lanes(y) for subs in steps[bits] for y in subs[1:]] for bits in steps}
    assert max(y_lanes[8192]) <= 32 < min(y_lanes[16])
    assert sum(len(p.payload) for p in packets[16]) > sum(len(p.payload) for p in packets[8192])
    assert all(torch.equal(a, b) for a, b in zip(recon[16], recon[8192]))
    decoder = Decoder(codec, 192, 320, threads=2)
    out = [f for p in packets[16] for d in decoder.decode(p) for f in d.frames] + \
        [f for d in decoder.flush() for f in d.frames]
    assert len(out) == 4 and all(torch.equal(a, b) for a, b in zip(out, recon[16]))


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
                    reason="the Triton coder needs CUDA or TRITON_INTERPRET=1")
def test_triton_sessions_match_cpp_and_check_each_unit_before_its_frames_leave(codec, frames):
    """With the Triton coder the decoder reads the device's consistency flags one unit
    late (no wait per decode), yet never hands out a corrupt unit's frames: unit 0
    comes back, then the call that would return unit 1 raises, naming its packet.
    The Triton encoder's packets equal the C++ coder's.  (Dense lanes keep the
    interpreter's rows few.)"""
    payloads = {}
    for kind in ("cpu", "triton"):  # the Triton encoder in a session writes the C++ coder's bytes
        enc = Encoder(codec, 192, 320, qp=48, scene_cut_threshold=None, reconstruct=True, bits_per_lane=16,
                      entropy=kind)
        units = [u for f in frames[:6] for u in enc.push(f)] + enc.flush()
        enc.close()
        payloads[kind] = [u.packet.payload for u in units]
    assert payloads["cpu"] == payloads["triton"]
    decoder = Decoder(codec, 192, 320, entropy="triton")
    decoded = [f for u in units for d in decoder.decode(u.packet) for f in d.frames] + \
        [f for d in decoder.flush() for f in d.frames]
    recon = [r for u in units for r in u.recon]
    assert len(decoded) == len(recon) == 6 and all(torch.equal(a, b) for a, b in zip(decoded, recon))
    z, y0, y1 = unpack_substreams(units[1].packet.payload)
    y1 = y1[: len(y1) // 2] + bytes([y1[len(y1) // 2] ^ 0x5A]) + y1[len(y1) // 2 + 1:]
    bad = dataclasses.replace(units[1].packet, payload=pack_substreams([z, y0, y1]))
    decoder = Decoder(codec, 192, 320, entropy="triton")
    assert decoder.decode(units[0].packet) == []
    assert decoder.decode(bad)[0].first_frame == 0  # unit 0's frames, checked
    with pytest.raises(CorruptStreamError, match="packet 1: the entropy decoder's consistency checks failed"):
        decoder.decode(units[2].packet)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return -10 * math.log10(max(float(np.mean((a.astype(np.float64) - b) ** 2)), 1e-10))


@pytest.mark.parametrize("guard_db", [0.0, 0.3])
def test_drift_guard_resets_when_quality_falls_under_the_last_reset(codec, frames, guard_db):
    """A flat grey first unit codes far better than the clip after it (scene cuts are
    off), so the guard must act; every decision is checked against PSNRs recomputed on
    the host."""
    frames = [np.full_like(frames[0], 0.5)] * 2 + list(frames[2:])
    enc = Encoder(codec, 192, 320, qp=8, scene_cut_threshold=None, reconstruct=True, drift_guard_db=guard_db)
    units = [u for f in frames for u in enc.push(f)] + enc.flush()
    resets = [u.packet.reset for u in units]
    assert resets[:3] == [True, False, True]
    reset_psnr = None
    for k, unit in enumerate(units):
        psnr = np.mean([_psnr(r.numpy(), frames[unit.packet.first_frame + s])
                        for s, r in enumerate(unit.recon)])
        if unit.packet.reset:
            reset_psnr = psnr
        if k + 1 < len(units):
            assert resets[k + 1] == (psnr < reset_psnr - guard_db - 1e-3) or abs(psnr - reset_psnr + guard_db) < 1e-3
    decoder = Decoder(codec, 192, 320)  # guarded streams are ordinary streams
    decoded = [d for u in units for d in decoder.decode(u.packet)] + decoder.flush()
    assert [d.first_frame for d in decoded] == [u.packet.first_frame for u in units]
    for d, unit in zip(decoded, units):
        assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(d.frames, unit.recon))


def test_drift_guard_off_keeps_the_only_reset_at_the_start(codec, frames):
    enc = Encoder(codec, 192, 320, qp=8, scene_cut_threshold=None)
    units = [u for f in frames for u in enc.push(f)] + enc.flush()
    assert [u.packet.reset for u in units] == [True] + [False] * (len(units) - 1)
    with pytest.raises(ValueError, match="drift_guard_db"):
        Encoder(codec, 192, 320, qp=8, drift_guard_db=-1.0)


FRESH_DECODE = """
import sys, numpy as np
from ui2c.runtime.api import decode_frames
from ui2c.runtime.model import load_codec
np.save(sys.argv[2], np.stack([f for _, _, f in decode_frames(load_codec("ui2c-s", backend="torch"), sys.argv[1])]))
"""


def test_a_fresh_process_decodes_the_stream_bit_exactly(codec, tmp_path):
    """No kernel choice may depend on timing or process state: the stream decodes to
    the encoder's reconstruction in a process that never saw the encoder."""
    import subprocess
    import sys

    from ui2c.runtime.api import encode_file
    from ui2c.shipped import DEMO_CLIP

    stream, out = tmp_path / "s.ui2c", tmp_path / "fresh.npy"
    res = encode_file(codec, DEMO_CLIP, stream, qp=20, max_frames=4, keep_recon=True, progress=False)
    subprocess.run([sys.executable, "-c", FRESH_DECODE, str(stream), str(out)], check=True, timeout=600)
    assert np.array_equal(np.load(out), np.stack(res.recon))


def test_torch_cpu_streams_decode_with_any_thread_count(tmp_path):
    """torch's CPU kernels round differently per thread count (a stream encoded with 2
    threads once failed its rANS checks when decoded with 1).  The count is part of the
    producer, and the CLI's decoder runs the stages with it whatever its own count."""
    import os
    import subprocess
    import sys

    from ui2c.shipped import DEMO_CLIP

    def cli(threads: int, *args) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run([sys.executable, "-m", "ui2c.cli", *map(str, args)], check=True, timeout=600, env=env,
                       capture_output=True)

    stream = tmp_path / "s.ui2c"
    cli(2, "encode", DEMO_CLIP, "-o", stream, "--qp", "32", "--frames", "8", "--backend", "torch")
    from ui2c.runtime.container import ContainerReader

    with ContainerReader(stream) as reader:
        assert reader.header.backend == "torch/cpu/fp32/eager-t2"
    for threads in (1, 2):
        cli(threads, "decode", stream, "-o", tmp_path / f"t{threads}.y4m")
    assert (tmp_path / "t1.y4m").read_bytes() == (tmp_path / "t2.y4m").read_bytes()
