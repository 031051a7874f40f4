"""The UI2C container against hand-built bytes, every error path, pipes and a fuzz."""
import errno
import io
import os
import random
import struct
import threading
import zlib
from dataclasses import replace
from fractions import Fraction

import pytest

from ui2c import video_io
from ui2c.entropy import _container
from ui2c.errors import (BitstreamError, CorruptStreamError, InputFormatError, ModelMismatchError,
                         TruncatedStreamError, UnsupportedVersionError)
from ui2c.runtime.container import (ContainerReader, ContainerWriter, Packet, SequenceHeader,
                                    check_compatible, pack_substreams, unpack_substreams)

HEADER = SequenceHeader(4, 2, Fraction(30000, 1001), "444", "p", "w", "t", "b")


def header_bytes(frame_count: int) -> bytes:
    """The documented layout of HEADER, spelled out field by field (CONTAINER.md §1)."""
    body = (b"\x00\x00\x00\x04" b"\x00\x00\x00\x02" + frame_count.to_bytes(4, "big")
            + b"\x00\x00\x75\x30" b"\x00\x00\x03\xe9" b"\x01" b"\x01p\x01w\x01t\x01b")
    head = b"UI2C\x02" + len(body).to_bytes(2, "big") + body
    return head + zlib.crc32(head).to_bytes(4, "big")


def packet_bytes(first: int, qps: bytes, flags: int, payload: bytes) -> bytes:
    """CONTAINER.md §2: the CRC covers the fields after the sync word and the payload."""
    fields = first.to_bytes(4, "big") + bytes([len(qps)]) + qps.ljust(2, b"\0") + bytes([flags]) \
        + len(payload).to_bytes(4, "big")
    return b"U2PK" + fields + zlib.crc32(fields + payload).to_bytes(4, "big") + payload


def make_stream(n_frames: int = 5, reset_every: int = 2) -> tuple[bytes, list[Packet]]:
    packets = [Packet(f, tuple(range(f, min(f + 2, n_frames))), (f // 2) % reset_every == 0,
                      pack_substreams([bytes([f]) * (3 + f), b"zz"]))
               for f in range(0, n_frames, 2)]
    out = io.BytesIO()
    with ContainerWriter(out, HEADER) as w:
        for p in packets:
            w.write_packet(p)
    return out.getvalue(), packets


def read_all(data: bytes) -> list[Packet]:
    with ContainerReader(io.BytesIO(data)) as r:
        return list(r)


def test_bytes_match_the_documented_layout():
    data, _ = make_stream(3)
    expected = (header_bytes(3)
                + packet_bytes(0, b"\x00\x01", 1, b"\x02\x03\x02" + b"\0" * 3 + b"zz")
                + packet_bytes(2, b"\x02", 0, b"\x02\x05\x02" + b"\2" * 5 + b"zz"))
    assert data == expected


def test_round_trip_through_a_path_patches_count_and_is_atomic(tmp_path):
    data, packets = make_stream(7)
    path = tmp_path / "s.ui2c"
    with ContainerWriter(path, HEADER) as w:
        for p in packets:
            w.write_packet(p)
        assert not path.exists()
    assert os.listdir(tmp_path) == ["s.ui2c"] and path.read_bytes() == data
    with ContainerReader(path) as r:
        assert r.header == SequenceHeader(**{**HEADER.__dict__, "frame_count": 7})
        assert list(r) == packets
        assert list(r) == packets  # a seekable source can be iterated again
    with pytest.raises(RuntimeError), ContainerWriter(tmp_path / "t.ui2c", HEADER) as w:
        w.write_packet(packets[0])
        raise RuntimeError("encoder died")
    assert os.listdir(tmp_path) == ["s.ui2c"]


def test_a_failed_header_write_or_patch_leaves_no_part_file(tmp_path, monkeypatch):
    """Neither the constructor nor ``close`` runs where a ``with`` block aborts; the
    exceptions are held, as a caller's handler would, so the writers stay alive."""
    _, packets = make_stream(2)

    def disk_full(self) -> bytes:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch, pytest.raises(OSError) as header_failed:
        patch.setattr(SequenceHeader, "to_bytes", disk_full)
        ContainerWriter(tmp_path / "a.ui2c", HEADER)
    with pytest.raises(OSError) as patch_failed, ContainerWriter(tmp_path / "b.ui2c", HEADER) as w:
        w.write_packet(packets[0])
        monkeypatch.setattr(SequenceHeader, "to_bytes", disk_full)  # the frame count patched by close
    assert os.listdir(tmp_path) == [] and header_failed.value and patch_failed.value


def test_writer_refuses_its_input(tmp_path):
    src = tmp_path / "in.y4m"
    src.write_bytes(b"x")
    with pytest.raises(InputFormatError, match="input file"):
        ContainerWriter(tmp_path / "." / "in.y4m", HEADER, protect=[src])


def test_streaming_through_a_pipe_yields_packets_as_they_arrive():
    read_fd, write_fd = os.pipe()
    first_packet_seen = threading.Event()
    data, packets = make_stream(4)
    cut = len(data) - len(packets[1].to_bytes())

    def producer() -> None:
        with os.fdopen(write_fd, "wb", buffering=0) as f:
            f.write(data[:cut])
            # The rest is only written once the reader has decoded packet 0 from the pipe.
            assert first_packet_seen.wait(10)
            f.write(data[cut:])

    thread = threading.Thread(target=producer)
    thread.start()
    with os.fdopen(read_fd, "rb", buffering=0) as f:
        reader = ContainerReader(f)
        got = []
        for packet in reader:
            got.append(packet)
            first_packet_seen.set()
    thread.join()
    assert got == packets and reader.header.frame_count == 4


def test_non_seekable_output_keeps_count_unknown():
    class Sink(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            self.data += b
            return len(b)

    sink = Sink()
    _, packets = make_stream(3)
    with ContainerWriter(sink, HEADER) as w:
        for p in packets:
            w.write_packet(p)
    data = bytes(sink.data)
    assert data[:len(header_bytes(0))] == header_bytes(0)
    assert read_all(data) == packets
    assert read_all(data[:len(header_bytes(0)) + len(packets[0].to_bytes())]) == packets[:1]


def test_reset_points_and_random_access(tmp_path):
    data, packets = make_stream(11, reset_every=2)
    path = tmp_path / "r.ui2c"
    path.write_bytes(data)
    with ContainerReader(path) as r:
        points = r.reset_points()
        assert [p.index for p in points] == [0, 2, 4]
        assert [p.first_frame for p in points] == [0, 4, 8]
        assert all(data[p.offset:p.offset + 4] == b"U2PK" for p in points)
        assert list(r.packets_from(points[1])) == packets[2:]
        assert list(r.packets_from(points[2].offset)) == packets[4:]


def test_bad_magic_and_version():
    data, _ = make_stream()
    with pytest.raises(CorruptStreamError, match="magic is 'RIFF'"):
        read_all(b"RIFF" + data[4:])
    with pytest.raises(CorruptStreamError, match="magic"):
        read_all(b"")
    with pytest.raises(UnsupportedVersionError, match=r"version 7 .*version 2"):
        read_all(data[:4] + b"\x07" + data[5:])


def test_truncations_name_what_is_missing():
    data, packets = make_stream(5)
    h = len(header_bytes(5))
    p0 = len(packets[0].to_bytes())
    with pytest.raises(TruncatedStreamError, match="sequence header"):
        read_all(data[:3])
    with pytest.raises(TruncatedStreamError, match="sequence header"):
        read_all(data[:h - 1])
    with pytest.raises(TruncatedStreamError, match="packet 1 truncated: header"):
        read_all(data[:h + p0 + 5])
    with pytest.raises(TruncatedStreamError, match="packet 1 truncated: payload"):
        read_all(data[:h + p0 + 22])
    with pytest.raises(TruncatedStreamError, match="2 of 5 announced frames"):
        read_all(data[:h + p0])


def header_body(width=4, height=2, num=1, den=1, chroma=0, strings=b"\0\0\0\0") -> bytes:
    return struct.pack(">IIIIIB", width, height, 0, num, den, chroma) + strings


@pytest.mark.parametrize("body, problem", [
    (header_body(width=0), "frame size 0x2"),
    (header_body(width=65536, height=65536), "frame size 65536x65536"),  # 36 GiB of buffers otherwise
    (header_body(width=2**31 - 2), "frame size"),
    (header_body(width=8192, height=16384), "67108864 pixels"),
    (header_body(width=3), "odd dimension"),
    (header_body(den=0), "frame rate 1/0"),
    (header_body(chroma=4), "unknown chroma code 4"),
    (header_body(strings=b"\0\0\0\x09"), "past the header"),
    (header_body(strings=b"\0" * 5), "trailing"),
    (header_body(strings=b"\0\0\0\1\xff"), "utf-8"),
])
def test_impossible_header_values_with_valid_crc(body, problem):
    head = b"UI2C\x02" + len(body).to_bytes(2, "big") + body
    with pytest.raises(CorruptStreamError, match=problem):
        read_all(head + zlib.crc32(head).to_bytes(4, "big"))


@pytest.mark.parametrize("code, chroma, siting", [(0, "420", "center"), (1, "444", "center"),
                                                  (2, "420", "left"), (3, "420", "paldv")])
def test_chroma_codes_carry_the_siting(code, chroma, siting):
    """Codes 2 and 3 are 4:2:0 with the MPEG-2 / PAL-DV siting of the source (CONTAINER.md §1)."""
    header = SequenceHeader(4, 2, Fraction(25), chroma, "p", "w", "t", "b", siting=siting)
    data = header.to_bytes()
    assert data[7 + 20] == code
    assert SequenceHeader.from_bytes(data) == header


def test_444_with_a_siting_is_refused():
    with pytest.raises(ValueError, match="siting 'left'"):
        SequenceHeader(4, 2, Fraction(25), "444", "p", "w", "t", "b", siting="left")


def test_header_values_the_format_cannot_hold_are_value_errors():
    """The writer's checks are the reader's (one C++ list), raised as ValueError."""
    assert (_container.MAX_DIMENSION, _container.MAX_PIXELS) == (video_io.MAX_DIMENSION, video_io.MAX_PIXELS)
    replace(HEADER, width=16384, height=4096)  # exactly MAX_PIXELS
    for fields, problem in [(dict(width=3, chroma="420"), "4:2:0 frame size 3x2 has an odd dimension"),
                            (dict(width=16386), "frame size 16386x2"),
                            (dict(width=16384, height=4098), "67108864 pixels"),
                            (dict(width=0), "frame size 0x2"),
                            (dict(fps=Fraction(2**32)), "frame rate numerator 4294967296 is out of range"),
                            (dict(fps=Fraction(-25)), "frame rate numerator -25 is out of range"),
                            (dict(frame_count=2**32), "frame count"),
                            (dict(preset="é" * 128), "preset is longer than 255 UTF-8 bytes"),
                            (dict(chroma="422"), "unknown chroma '422'")]:
        with pytest.raises(ValueError, match=problem):
            replace(HEADER, **fields)


def test_packet_values_are_checked_when_written():
    for packet, problem in [(Packet(0, (300,), True, b""), "qp 300 is out of range"),
                            (Packet(1, (1,), True, b""), "first frame 1 must be even"),
                            (Packet(0, (1, 2, 3), True, b""), "1 or 2 frames")]:
        with pytest.raises(ValueError, match=problem):
            ContainerWriter(io.BytesIO(), HEADER).write_packet(packet)
    w = ContainerWriter(io.BytesIO(), HEADER)
    w.write_packet(Packet(0, (1, 1), True, b""))
    with pytest.raises(ValueError, match="packet 2: starts at frame 4, expected 2"):
        w.write_packet(Packet(4, (1, 1), False, b""))
    assert w.frames_written == 2


def test_random_access_from_a_byte_offset_names_the_packet(tmp_path):
    data, packets = make_stream(11)
    path = tmp_path / "r.ui2c"
    with ContainerReader(io.BytesIO(data)) as r:
        offset = r.reset_points()[1].offset
    path.write_bytes(data[:offset + 25] + bytes([data[offset + 25] ^ 1]) + data[offset + 26:])
    with ContainerReader(path) as r:
        with pytest.raises(CorruptStreamError, match="packet 2: CRC mismatch"):
            list(r.packets_from(offset))
        with pytest.raises(CorruptStreamError, match="packet: bad sync word '2PK"):
            list(r.packets_from(offset + 1))


def test_crc_mismatches_name_the_packet():
    data, packets = make_stream(5)
    h = len(header_bytes(5))
    payload_byte = h + len(packets[0].to_bytes()) + 20
    with pytest.raises(CorruptStreamError, match="packet 1: CRC mismatch"):
        read_all(data[:payload_byte] + b"\xff" + data[payload_byte + 1:])
    qp_byte = h + 9
    with pytest.raises(CorruptStreamError, match="packet 0: CRC mismatch"):
        read_all(data[:qp_byte] + b"\x33" + data[qp_byte + 1:])
    with pytest.raises(CorruptStreamError, match="sequence header CRC"):
        read_all(data[:8] + b"\x09" + data[9:])


def test_sequence_rules_are_enforced():
    one = packet_bytes(0, b"\x05", 1, b"")
    two = packet_bytes(2, b"\x05\x05", 0, b"")
    with pytest.raises(CorruptStreamError, match="packet 1 follows a 1-frame packet"):
        read_all(header_bytes(0) + one + two)
    with pytest.raises(CorruptStreamError, match="packet 0 is not a reset point"):
        read_all(header_bytes(0) + packet_bytes(0, b"\x05\x05", 0, b""))
    with pytest.raises(CorruptStreamError, match="starts at frame 2, expected 0"):
        read_all(header_bytes(0) + two)
    with pytest.raises(CorruptStreamError, match="flags"):
        read_all(header_bytes(0) + packet_bytes(0, b"\x05", 3, b""))
    with pytest.raises(CorruptStreamError, match="beyond the announced 1"):
        read_all(header_bytes(1) + packet_bytes(0, b"\x05\x05", 1, b""))
    w = ContainerWriter(io.BytesIO(), HEADER)
    with pytest.raises(ValueError, match="reset point"):
        w.write_packet(Packet(0, (1, 1), False, b""))
    w.write_packet(Packet(0, (1,), True, b""))
    with pytest.raises(ValueError, match="must be the last"):
        w.write_packet(Packet(2, (1, 1), False, b""))


def test_check_compatible_names_each_differing_field():
    check_compatible(HEADER, "p", "w", "t", "b")
    with pytest.raises(ModelMismatchError) as e:
        check_compatible(HEADER, "p", "w2", "t", "tensorrt/fp16")
    msg = str(e.value)
    assert "weights_fingerprint: stream has 'w', decoder has 'w2'" in msg
    assert "backend: stream has 'b', decoder has 'tensorrt/fp16'" in msg
    assert "preset" not in msg and "tables" not in msg


def test_substreams_hand_built_and_varint_edges():
    assert pack_substreams([b"ab", b""]) == b"\x02\x02\x00ab"
    assert pack_substreams([b"x" * 200])[:3] == b"\x01\x80\xc8"
    streams = [b"a" * n for n in (0, 127, 128, 16383, 16384)]
    assert unpack_substreams(pack_substreams(streams)) == streams
    assert pack_substreams([b"a" * 16384])[1:5] == struct.pack(">I", 0xC0000000 | 16384)
    for bad in (b"", b"\x02\x01", b"\x01\x05abc", b"\x01\x01ab", b"\x01\xc0"):
        with pytest.raises(CorruptStreamError):
            unpack_substreams(bad)


def test_fuzz_mutations_raise_typed_errors_only():
    data, _ = make_stream(6)
    rng = random.Random(1234)
    for trial in range(400):
        mutated = bytearray(data)
        kind = trial % 4
        if kind == 0:
            for _ in range(rng.randint(1, 3)):
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            del mutated[rng.randrange(len(mutated)):]
        elif kind == 2:
            pos = rng.randrange(len(mutated) + 1)
            mutated[pos:pos] = rng.randbytes(rng.randint(1, 8))
        else:
            pos = rng.randrange(len(mutated))
            del mutated[pos:pos + rng.randint(1, 8)]
        if bytes(mutated) == data:
            continue
        with pytest.raises(BitstreamError):
            for p in read_all(bytes(mutated)):
                unpack_substreams(p.payload)
        try:
            with ContainerReader(io.BytesIO(bytes(mutated))) as r:
                r.reset_points()
        except BitstreamError:
            pass
