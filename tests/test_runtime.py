"""End to end on real video: bit-exact decoding, rate vs information content,
random access from reset points, buffer reuse, backend parity, bad input."""
from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from ui2c.entropy import rans
from ui2c.cli import main
from ui2c.errors import (CorruptStreamError, InputFormatError, ModelMismatchError, TruncatedStreamError,
                         UI2CError)
from ui2c.runtime import api
from ui2c.runtime.api import decode_file, decode_frames, encode_file
from ui2c.runtime.container import ContainerReader, unpack_substreams
from ui2c.runtime.model import load_codec
from ui2c.runtime.session import Decoder, Encoder
from ui2c.video_io import Frame, frame_to_array, open_video, open_writer, pad
from ui2c.shipped import DEMO_CLIP

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEMO = DEMO_CLIP


@pytest.fixture(scope="module")
def codec():
    return load_codec("ui2c-s", backend="onnxruntime")


@pytest.fixture(scope="module")
def bikes(tmp_path_factory) -> Path:
    """64 frames of bikes.mp4 (hard cut at frame 30), 2× area-downscaled to 320×136."""
    if not (DATA / "bikes.mp4").is_file():
        pytest.skip(f"needs the shared clips in {DATA} (not part of the package)")
    out = tmp_path_factory.mktemp("clips") / "bikes_320x136.y4m"
    down = lambda p: ((p[0::2, 0::2].astype(np.uint16) + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2] + 2) // 4)  # noqa: E731
    with open_video(DATA / "bikes.mp4") as reader, open_writer(out, fps=reader.fps) as writer:
        for i, f in enumerate(reader):
            if i == 64:
                break
            writer.write(Frame(*(down(p).astype(np.uint8) for p in f.planes), chroma="420"))
    return out


def _information_bits(symbols: np.ndarray, indexes: np.ndarray, tables) -> float:
    """Σ −log2 p under the integer CDFs, computed here from the tables alone."""
    slot = symbols.astype(np.int64) - tables.offset[indexes]
    escape = tables.cdf_length[indexes] - 2
    slot = np.where((slot < 0) | (slot >= escape), escape, slot)
    freq = tables.cdf[indexes, slot + 1] - tables.cdf[indexes, slot]
    return float(np.sum(16 - np.log2(freq)))


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _rans_side_bytes(stream: bytes) -> int:
    """Bytes of a rANS stream that are not renormalisation bytes: header, the final
    lane states and raw escape values (format 2, spec in entropy/csrc/rans_format.hpp)."""
    n, pos = _varint(stream, 1)
    if n == 0:
        return len(stream)
    lanes, pos = _varint(stream, pos)
    escapes = 0
    for _ in range(-(-lanes // 32)):  # groups of 32 lanes
        _, pos = _varint(stream, pos)
        esc, pos = _varint(stream, pos)
        escapes += esc
    return pos + 2 + lanes * 4 + escapes * 4


@pytest.mark.parametrize("clip", ["demo", "bikes"])
def test_roundtrip_is_bit_exact_and_rate_matches_information(codec, clip, request, tmp_path, monkeypatch):
    """The shipped clip always; bikes (real video with a hard cut) where ../shared has it."""
    source = DEMO if clip == "demo" else request.getfixturevalue("bikes")
    count = 16 if clip == "demo" else 64
    calls = []
    real_encode = rans.encode

    def recording_encode(symbols, indexes, tables, threads=1, **options):
        coded = indexes >= 0  # the session marks skipped symbols with index -1
        calls.append(_information_bits(symbols[coded], indexes[coded], tables))
        return real_encode(symbols, indexes, tables, threads, **options)

    monkeypatch.setattr(rans, "encode", recording_encode)
    stream = tmp_path / f"{clip}.ui2c"
    res = encode_file(codec, source, stream, qp=40, keep_recon=True, progress=False)
    assert res.frames == count and len(res.recon) == count and res.resets[0] == 0
    if clip == "bikes":
        assert any(28 <= r <= 30 for r in res.resets), res.resets  # its hard cut is a reset point
    decoded = [f for _, _, f in decode_frames(codec, stream)]
    assert len(decoded) == count
    assert all(np.array_equal(a, b) for a, b in zip(decoded, res.recon)), "decoder drifted from the encoder"

    with ContainerReader(stream) as reader:
        payloads = [unpack_substreams(p.payload) for p in reader]
    side = sum(_rans_side_bytes(s) for subs in payloads for s in subs)
    words = sum(len(s) for subs in payloads for s in subs) - side
    ideal = sum(calls) / 8
    headers = stream.stat().st_size - words
    assert headers > 0
    # The renormalisation words carry the information; the rest (container, packets,
    # sub-stream lengths, rANS headers and flushed states) is header.
    assert stream.stat().st_size <= 1.01 * (ideal + headers)
    assert words <= 1.01 * ideal + 64 * len(payloads)


def test_decoding_from_a_reset_point_equals_decoding_from_the_start(codec, tmp_path):
    stream = tmp_path / "demo.ui2c"
    res = encode_file(codec, DEMO, stream, qp=20, reset_interval=6, scene_cut_threshold=None, progress=False)
    assert res.resets == [0, 6, 12]
    full = {i: f for _, i, f in decode_frames(codec, stream)}
    with ContainerReader(stream) as reader:
        points = reader.reset_points()
    tail = {i: f for _, i, f in decode_frames(codec, stream, from_reset=1)}
    assert min(tail) == points[1].first_frame == res.resets[1]
    assert sorted(tail) == [i for i in sorted(full) if i >= points[1].first_frame]
    assert all(np.array_equal(tail[i], full[i]) for i in tail)


def test_odd_frame_count_and_cli_roundtrip(tmp_path):
    stream, out = tmp_path / "demo.ui2c", tmp_path / "demo.y4m"
    assert main(["encode", str(DEMO), "-o", str(stream), "--qp", "30", "--frames", "7"]) == 0
    assert main(["decode", str(stream), "-o", str(out)]) == 0
    with open_video(out) as reader:
        frames = list(reader)
    assert len(frames) == 7 and (reader.width, reader.height) == (320, 180)


def test_chroma_siting_survives_encode_and_decode(tmp_path):
    """A C420mpeg2 source decodes to a C420mpeg2 file, not a relabelled C420jpeg one."""
    data = DEMO.read_bytes()
    head, _, body = data.partition(b"\n")
    src = tmp_path / "mpeg2.y4m"
    src.write_bytes(head.replace(b"C420jpeg", b"C420mpeg2") + b"\n" + body)
    assert b"C420mpeg2" in src.read_bytes()[:80]
    stream, out = tmp_path / "s.ui2c", tmp_path / "out.y4m"
    assert main(["encode", str(src), "-o", str(stream), "--qp", "30", "--frames", "2"]) == 0
    assert main(["decode", str(stream), "-o", str(out)]) == 0
    assert out.read_bytes().partition(b"\n")[0].split(b" ")[-1] == b"C420mpeg2"


def test_reference_buffers_are_reused(codec):
    frames = [pad(frame_to_array(f)) for f in open_video(DEMO)][:12]
    enc = Encoder(codec, 192, 320, qp=30, scene_cut_threshold=None)
    refs = {id(a) for a in enc.buffers.refs}
    outputs = {(stage, name): id(a) for stage, outs in enc.buffers.outputs.items() for name, a in outs.items()}
    seen = []
    for f in frames:
        if enc.push(f):
            seen.append(id(enc.buffers.current))
    assert set(seen) == refs and seen[0] != seen[1] and seen[0] == seen[2]  # ping-pong between two arrays
    assert outputs == {(s, n): id(a) for s, outs in enc.buffers.outputs.items() for n, a in outs.items()}
    # The decoder stage's ref goes to refs, the adaptor's to blank_ref: no buffer for either.
    assert "adaptor" not in enc.buffers.outputs and "ref" not in enc.buffers.outputs["decoder"]


def test_torch_and_onnxruntime_reconstructions_agree(codec):
    torch_codec = load_codec("ui2c-s", backend="torch")
    frames = [pad(frame_to_array(f)) for f in open_video(DEMO)][:2]
    recons = []
    for c in (codec, torch_codec):
        enc = Encoder(c, 192, 320, qp=30, reconstruct=True)
        recons.append(enc.push(frames[0]) + enc.push(frames[1]) + enc.flush())
    (a,), (b,) = recons
    assert len(a.recon) == len(b.recon) == 2
    for x, y in zip(a.recon, b.recon):
        mse = float(((x - y) ** 2).mean())
        assert mse == 0 or -10 * math.log10(mse) > 45


class _Counting:
    """A video reader that counts the frames taken from it."""

    def __init__(self, reader):
        self.reader, self.taken = reader, 0

    def __getattr__(self, name: str):
        return getattr(self.reader, name)

    def __enter__(self) -> "_Counting":
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()

    def __iter__(self):
        for frame in self.reader:
            self.taken += 1
            yield frame


def test_max_frames_stops_reading_the_input_there(codec, tmp_path, monkeypatch):
    readers = []

    def counting(*args, **kwargs) -> _Counting:
        readers.append(_Counting(open_video(*args, **kwargs)))
        return readers[-1]

    monkeypatch.setattr(api, "open_video", counting)
    assert encode_file(codec, DEMO, tmp_path / "s.ui2c", qp=30, max_frames=2, progress=False).frames == 2
    assert readers[0].taken == 2
    with pytest.raises(InputFormatError, match="max_frames must be at least 1, got 0"):
        encode_file(codec, DEMO, tmp_path / "t.ui2c", qp=30, max_frames=0, progress=False)


def test_decode_file_opens_its_source_once(codec, tmp_path):
    """From a FIFO, whose data a second open cannot read again (it would wait for a writer)."""
    stream, fifo = tmp_path / "s.ui2c", tmp_path / "in.fifo"
    encode_file(codec, DEMO, stream, qp=30, max_frames=3, progress=False)
    os.mkfifo(fifo)
    threading.Thread(target=lambda: fifo.write_bytes(stream.read_bytes()), daemon=True).start()
    decoded = []
    decoding = threading.Thread(target=lambda: decoded.append(decode_file(codec, fifo, tmp_path / "out.y4m",
                                                                          progress=False)), daemon=True)
    decoding.start()
    decoding.join(60)
    if decoding.is_alive():  # stuck in a second open: an empty writer ends it
        open(fifo, "wb").close()
        decoding.join()
    assert decoded == [3]


# ---------------------------------------------------------------- bad input
def test_truncated_and_corrupt_streams_raise_typed_errors(codec, tmp_path):
    stream = tmp_path / "s.ui2c"
    encode_file(codec, DEMO, stream, qp=30, max_frames=4, progress=False)
    data = stream.read_bytes()
    cut = tmp_path / "cut.ui2c"
    cut.write_bytes(data[:-10])
    with pytest.raises(TruncatedStreamError):
        list(decode_frames(codec, cut))
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    bad = tmp_path / "bad.ui2c"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CorruptStreamError):
        list(decode_frames(codec, bad))
    out = tmp_path / "never.y4m"
    assert main(["decode", str(cut), "-o", str(out)]) == 2
    assert not out.exists(), "a half-written output was left behind"


def test_mismatched_weights_are_refused(codec, tmp_path):
    stream = tmp_path / "s.ui2c"
    encode_file(codec, DEMO, stream, qp=30, max_frames=2, progress=False)
    other = load_codec("ui2c-s", backend="onnxruntime", weights=None)
    other.weights_fingerprint = "0" * 16
    with pytest.raises(ModelMismatchError, match="weights_fingerprint"):
        list(decode_frames(other, stream))
    torch_codec = load_codec("ui2c-s", backend="torch")
    with pytest.raises(ModelMismatchError, match="backend"):
        list(decode_frames(torch_codec, stream))


def test_wrong_resolution_and_overwriting_input_are_refused(codec, tmp_path):
    enc = Encoder(codec, 192, 320, qp=30)
    with pytest.raises(InputFormatError, match="does not match"):
        enc.push(np.zeros((3, 176, 320), dtype=np.float32))
    with pytest.raises(InputFormatError):
        Decoder(codec, 180, 320)
    copy = tmp_path / "clip.y4m"
    copy.write_bytes(DEMO.read_bytes())
    before = copy.read_bytes()
    with pytest.raises(UI2CError, match="it is the input file"):
        encode_file(codec, copy, copy, qp=30, max_frames=2, progress=False)
    assert copy.read_bytes() == before
    stream = tmp_path / "s.y4m"  # a stream under a name a decode may write: only its being the input is wrong
    encode_file(codec, DEMO, stream, qp=30, max_frames=2, progress=False)
    before = stream.read_bytes()
    with pytest.raises(UI2CError, match="it is the input file"):
        decode_file(codec, stream, stream, progress=False)
    assert stream.read_bytes() == before
    assert main(["encode", str(tmp_path / "nope.y4m"), "-o", str(tmp_path / "x.ui2c"), "--qp", "3"]) == 2
