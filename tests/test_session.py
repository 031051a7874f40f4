"""Codec sessions on the shipped clip (no ../shared needed): the one-unit pipeline of
the encoder and the encoder-side drift guard, judged by a host-side recomputation."""
from __future__ import annotations

import dataclasses
import math
import os
import threading

import numpy as np
import pytest
import torch

from ui2c.entropy.coder import CpuCoder, SegmentDecoder, make_coder
from ui2c.export.feeds import clip_frames
from ui2c.errors import CorruptStreamError, EngineError, InputFormatError, TruncatedStreamError
from ui2c.models import checkpoint
from ui2c.models.ops import QP_ROWS
from ui2c.runtime import session
from ui2c.runtime.backends import aoti_backend
from ui2c.runtime.backends.cuda_graph import CudaGraphRunner
from ui2c.runtime.backends.torch_backend import TorchBackend, TorchRunner, torch_threads
from ui2c.runtime.container import pack_substreams, unpack_substreams
from ui2c.runtime.model import load_codec
from ui2c.runtime.session import Decoder, Encoder


@pytest.fixture(scope="module")
def codec():
    return load_codec("ui2c-s", backend="torch")


@pytest.fixture(scope="module")
def frames():
    return clip_frames(12)


@pytest.fixture(scope="module")
def small(frames):
    """64x64 crops: the cheapest size a session codes, for tests of its bookkeeping."""
    return [np.ascontiguousarray(f[:, :64, :64]) for f in frames]


def _code(enc: Encoder, frames) -> list:
    units = [u for f in frames for u in enc.push(f)] + enc.flush()
    enc.close()
    return units


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
    assert len(recon[16]) == len(recon[8192]) == 4 and all(torch.equal(a, b) for a, b in zip(recon[16], recon[8192]))
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
    z, y = unpack_substreams(units[1].packet.payload)
    y = y[: len(y) // 2] + bytes([y[len(y) // 2] ^ 0x5A]) + y[len(y) // 2 + 1:]
    bad = dataclasses.replace(units[1].packet, payload=pack_substreams([z, y]))
    decoder = Decoder(codec, 192, 320, entropy="triton")
    assert decoder.decode(units[0].packet) == []
    assert decoder.decode(bad)[0].first_frame == 0  # unit 0's frames, checked
    with pytest.raises(CorruptStreamError, match="packet 1: the entropy decoder's consistency checks failed"):
        decoder.decode(units[2].packet)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


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
    for k, unit in enumerate(units):  # the guard's rule: the PSNR of the unit's mean MSE
        mse = np.mean([_mse(r.numpy(), frames[unit.packet.first_frame + s]) for s, r in enumerate(unit.recon)])
        psnr = -10 * math.log10(max(mse, 1e-10))
        if unit.packet.reset:
            reset_psnr = psnr
        if k + 1 < len(units):
            assert resets[k + 1] == (psnr < reset_psnr - guard_db - 1e-3) or abs(psnr - reset_psnr + guard_db) < 1e-3
    decoder = Decoder(codec, 192, 320)  # guarded streams are ordinary streams
    decoded = [d for u in units for d in decoder.decode(u.packet)] + decoder.flush()
    assert [d.first_frame for d in decoded] == [u.packet.first_frame for u in units]
    for d, unit in zip(decoded, units):
        assert len(d.frames) == len(unit.recon) > 0
        assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(d.frames, unit.recon))


def test_drift_guard_off_keeps_the_only_reset_at_the_start(codec, frames):
    enc = Encoder(codec, 192, 320, qp=8, scene_cut_threshold=None)
    units = [u for f in frames for u in enc.push(f)] + enc.flush()
    assert [u.packet.reset for u in units] == [True] + [False] * (len(units) - 1)


@pytest.mark.parametrize("interval, resets", [(3, [0, 2, 6, 8]), (5, [0, 4, 10])])
def test_reset_interval_resets_each_unit_holding_a_multiple_of_it(codec, small, interval, resets):
    """Units start on even frames, so an odd interval's multiples (3, 9, 5) are often a
    unit's second frame: that unit is the reset point, not the next multiple's."""
    enc = Encoder(codec, 64, 64, qp=30, scene_cut_threshold=None, reset_interval=interval)
    units = _code(enc, small[:11])
    assert [u.packet.first_frame for u in units if u.packet.reset] == resets


@pytest.mark.parametrize("setting, mentions", [
    (dict(qp=64), "qp must be in"),
    (dict(qp=-1), "qp must be in"),
    (dict(qp=8.5), "qp must be in"),
    (dict(reset_interval=-2), "reset_interval"),
    (dict(scene_cut_threshold=-0.1), "scene_cut_threshold"),
    (dict(scene_cut_threshold=0.0), "scene_cut_threshold"),
    (dict(scene_cut_threshold=float("nan")), "scene_cut_threshold"),
    (dict(drift_guard_db=-1.0), "drift_guard_db"),
    (dict(drift_guard_db=float("nan")), "drift_guard_db"),
])
def test_bad_encoder_settings_are_refused_before_any_buffer(codec, monkeypatch, setting, mentions):
    def allocate(*args):
        raise AssertionError("buffers were allocated before the settings were checked")

    monkeypatch.setattr(session, "UnitBuffers", allocate)
    with pytest.raises(InputFormatError, match=mentions):
        Encoder(codec, 64, 64, **{"qp": 8, **setting})


def test_a_flush_that_codes_an_odd_last_frame_ends_the_stream(codec, small):
    enc = Encoder(codec, 64, 64, qp=30, scene_cut_threshold=None)
    units = [u for f in small[:3] for u in enc.push(f)] + enc.flush()
    assert [u.packet.num_frames for u in units] == [2, 1]
    with pytest.raises(InputFormatError, match="odd last frame"):
        enc.push(small[3])
    enc.close()


def test_push_copies_the_frame_and_refuses_integer_samples(codec, small):
    """A caller refilling one buffer for every frame gets the stream of distinct frames
    (the encoder keeps a pair's first frame, and the last luma, after push returns)."""
    buffer = np.empty_like(small[0])

    def refilled():
        for f in small[:5]:
            buffer[...] = f
            yield buffer

    distinct, reused = ([u.packet.payload for u in _code(Encoder(codec, 64, 64, qp=30), feed)]
                        for feed in (small[:5], refilled()))
    assert distinct == reused
    enc = Encoder(codec, 64, 64, qp=30)
    with pytest.raises(InputFormatError, match="floats in"):
        enc.push((small[0] * 255).astype(np.uint8))
    enc.close()


def test_decoder_refuses_a_qp_beyond_the_tables_before_any_stage_runs(codec, small):
    """Benchmarks feed packets to ``Decoder.decode`` without a container reader; the
    refused packet leaves the decoder as it was, so the real one decodes bit-exactly."""
    units = _code(Encoder(codec, 64, 64, qp=30, scene_cut_threshold=None, reconstruct=True), small[:4])
    decoder = Decoder(codec, 64, 64)
    assert decoder.decode(units[0].packet) == []
    bad = dataclasses.replace(units[1].packet, qps=(units[1].packet.qps[0], QP_ROWS))
    with pytest.raises(CorruptStreamError, match=f"packet 1: qp {QP_ROWS} is beyond the model's {QP_ROWS} qp rows"):
        decoder.decode(bad)
    decoded = [f for d in decoder.decode(units[1].packet) + decoder.flush() for f in d.frames]
    recon = [r for u in units for r in u.recon]
    assert len(decoded) == 4 and all(torch.equal(a, b) for a, b in zip(decoded, recon))


def test_entropy_errors_name_their_packet(codec, small):
    """A damaged y stream, a y stream cut short and an empty z stream: each error names
    the packet it is in, and its type says what kind of damage it is."""
    units = _code(Encoder(codec, 64, 64, qp=30, scene_cut_threshold=None), small[:4])
    z, y = unpack_substreams(units[1].packet.payload)
    cases = [([z, y[:-1]], TruncatedStreamError), ([z, y + b"\0"], CorruptStreamError),
             ([b"", y], TruncatedStreamError)]
    for streams, error in cases:
        decoder = Decoder(codec, 64, 64)
        decoder.decode(units[0].packet)
        with pytest.raises(error, match=r"^packet 1: rANS stream"):
            decoder.decode(dataclasses.replace(units[1].packet, payload=pack_substreams(streams)))


class _FlaggingCoder(CpuCoder):
    """The Triton coder as the decoder drives it (``check`` off): corrupt data is
    reported in ``last_error``, on the device, not raised; a stream too short for its
    header still raises on the host."""

    name = "triton"
    check = True
    last_error: torch.Tensor | None = None

    def __init__(self, tables, threads: int, flags: list[int]):
        super().__init__(tables, threads)
        self.flags = flags  # every decode's flag, in order (shared by the y and z coders)

    def decoder(self, data: bytes) -> SegmentDecoder:
        return _FlaggingSegments(super().decoder(data), self)


class _FlaggingSegments(SegmentDecoder):
    def __init__(self, segments: SegmentDecoder, coder: _FlaggingCoder):
        self.segments, self.coder = segments, coder

    def next(self, indexes: torch.Tensor) -> torch.Tensor:
        try:
            return self.segments.next(indexes)
        except CorruptStreamError:  # asked for more symbols than the stream holds: flagged at finish
            self.segments = None
            return torch.zeros_like(indexes)

    def finish(self) -> None:
        bad = 0
        try:
            if self.segments is None:
                raise CorruptStreamError("segments asked for too many symbols")
            self.segments.finish()
        except CorruptStreamError:
            bad = 1
        self.coder.flags.append(bad)
        self.coder.last_error = torch.tensor(bad, dtype=torch.int32)


def test_a_unit_that_raised_midway_leaves_no_device_flags_to_the_next(codec, small, monkeypatch):
    """A unit whose z decode flagged corruption and whose y stream then raised: the
    next unit's deferred check must judge that unit's own flags only."""
    units = _code(Encoder(codec, 64, 64, qp=30, scene_cut_threshold=None), small[:6])
    flags: list[int] = []
    monkeypatch.setattr(codec, "entropy_coder", lambda device, kind, latent, threads=1, bits_per_lane=None:
                        _FlaggingCoder(codec.y_tables if latent == "y" else codec.z_tables, threads, flags))
    decoder = Decoder(codec, 64, 64)
    assert decoder.decode(units[0].packet) == []
    z, _ = unpack_substreams(units[1].packet.payload)
    z = z[:-3] + bytes([z[-3] ^ 0x5A]) + z[-2:]
    decoded_before = len(flags)
    with pytest.raises(TruncatedStreamError):
        decoder.decode(dataclasses.replace(units[1].packet, payload=pack_substreams([z, b""])))
    assert flags[decoded_before:] == [1]  # the damaged z was flagged (then y raised): a stale flag to leak
    assert [d.first_frame for d in decoder.decode(units[1].packet)] == [0]
    assert [d.first_frame for d in decoder.decode(units[2].packet) + decoder.flush()] == [2, 4]


def _fresh_thread_count() -> int:
    """The intra-op thread count a thread starts with (torch keeps one per thread)."""
    counts = []
    thread = threading.Thread(target=lambda: counts.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return counts[0]


def test_torch_threads_keeps_its_count_from_threads_that_start_meanwhile():
    """A thread takes its first count from the last one set anywhere: without the lock,
    a thread starting inside another thread's block keeps that block's count."""
    default = _fresh_thread_count()
    inside, done = threading.Event(), threading.Event()
    after = []

    def holder() -> None:
        with torch_threads(default + 1):
            inside.set()
            done.wait(0.5)  # with the lock the newcomer cannot enter meanwhile

    def newcomer() -> None:
        inside.wait()
        with torch_threads(default + 2):
            pass
        after.append(torch.get_num_threads())
        done.set()

    threads = [threading.Thread(target=f) for f in (holder, newcomer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert after == [default] and _fresh_thread_count() == default
    with torch_threads(1), torch_threads(2):  # re-entrant on one thread
        assert torch.get_num_threads() == 2


def test_the_one_off_adaptor_is_not_captured_in_a_cuda_graph(codec):
    backend = TorchBackend(codec.network, cuda_graphs=True)  # wrapping needs no GPU; capturing would
    assert type(backend.runner("adaptor")) is TorchRunner and type(backend.runner("context")) is CudaGraphRunner


def test_load_codec_leaves_the_callers_random_state_alone(monkeypatch):
    """Random weights are seeded (the same in every process) on a forked generator."""
    monkeypatch.setattr(checkpoint, "default_weights", lambda preset: None)
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    fingerprints = {load_codec("ui2c-s", backend="torch", allow_random=True).weights_fingerprint for _ in range(2)}
    assert torch.equal(torch.rand(4), expected) and len(fingerprints) == 1


def test_load_codec_builds_the_aoti_backend_on_the_asked_device(monkeypatch, tmp_path):
    asked = {}

    def backend(*args, **kwargs):
        asked.update(kwargs)
        raise EngineError("recorded")

    monkeypatch.setattr(aoti_backend, "AotiBackend", backend)
    with pytest.raises(EngineError, match="recorded"):
        load_codec("ui2c-s", backend="aoti", engine_dir=tmp_path, device="cuda:1")
    assert asked["device"] == "cuda:1"


def test_the_triton_coder_needs_cuda_or_the_interpreter(codec, monkeypatch):
    """Refused when made, with a typed error, not at its first kernel launch."""
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(EngineError, match="needs a CUDA device"):
        make_coder(codec.y_tables, "cpu", "triton")


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


def test_compiled_stages_stay_compiled_at_a_second_size(monkeypatch, frames):
    """Dynamo keeps at most ``recompile_limit`` (8) graphs per code object and runs the
    frame eagerly after that.  Every stage once compiled the same function, so a second
    size pushed stages past the limit: eager kernels under an "inductor" producer string.
    (Dynamo's eager backend stands in for inductor: same cache, none of the compile time.)"""
    from torch._dynamo.utils import counters

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real_compile(fn, backend="eager", **kw))
    torch._dynamo.reset()
    counters.clear()
    codec = load_codec("ui2c-s", backend="torch", compile=True, threads=1)
    for width in (64, 128):
        enc = Encoder(codec, 64, width, qp=30, scene_cut_threshold=None, reconstruct=True)
        _code(enc, [np.ascontiguousarray(f[:, :64, :width]) for f in frames[:3]])
    total, ok = counters["frames"]["total"], counters["frames"]["ok"]
    torch._dynamo.reset()
    assert total >= 14 and ok == total, (ok, total)


def test_a_compiled_stage_stays_compiled_past_the_recompile_limit(monkeypatch, codec):
    """Ten input sizes through one compiled stage: more than Dynamo's ``recompile_limit``
    (8) graphs of one code object, after which it would run the stage eagerly."""
    from torch._dynamo.utils import counters

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real_compile(fn, backend="eager", **kw))
    torch._dynamo.reset()
    counters.clear()
    backend = TorchBackend(codec.network, compile=True, threads=1)
    runner = backend.runner("context")
    ref_channels = codec.network.cfg.ch_d
    for width in range(1, 11):
        feed = {"ref": torch.zeros(1, ref_channels, 2, 2 * width), "qp": torch.tensor([3, 4], dtype=torch.int32)}
        runner.infer(feed)
    total, ok = counters["frames"]["total"], counters["frames"]["ok"]
    torch._dynamo.reset()
    assert total >= 10 and ok == total, (ok, total)
