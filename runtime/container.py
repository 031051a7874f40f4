"""The UI2C bitstream container: one sequence header, then one packet per frame pair.

DCVC-RT's raw NAL stream (spec §3.7) has no magic, no frame count and no way to tell
which model produced it; decoding it with other weights, tables or a backend whose
entropy parameters differ silently yields garbage.  This container adds exactly what
deployment needs: identification, integrity (CRC32 on the header and every packet),
streaming reads from pipes, and an index of reset points for random access.  The
byte layout is documented in ``runtime/CONTAINER.md``; keep both in step.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import BinaryIO, Iterable, Iterator, Sequence

from ..errors import (CorruptStreamError, ModelMismatchError, TruncatedStreamError,
                      UnsupportedVersionError)
from ..fileio import AtomicOutput
from ..video_io import MAX_DIMENSION, MAX_PIXELS, Chroma, PathLike, Siting

MAGIC = b"UI2C"
VERSION = 1
SYNC = b"U2PK"
FLAG_RESET = 0x01

_PREFIX = struct.Struct(">4sBH")        # magic, version, header body length
_FIXED = struct.Struct(">IIIIIB")       # width, height, frame count, fps num, fps den, chroma
_PACKET = struct.Struct(">4sIBBBBII")   # sync, first frame, frames, qp0, qp1, flags, length, crc
_CHROMA_CODES: dict[tuple[Chroma, Siting], int] = {
    ("420", "center"): 0, ("444", "center"): 1, ("420", "left"): 2, ("420", "paldv"): 3}
_READ_CHUNK = 1 << 20                   # payloads are read in chunks: a corrupt length costs no memory


@dataclass(frozen=True)
class SequenceHeader:
    """What a decoder must know before the first packet, and who produced the stream."""

    width: int
    height: int
    fps: Fraction
    chroma: Chroma
    preset: str
    weights_fingerprint: str
    tables_fingerprint: str
    backend: str
    frame_count: int = 0  # 0 = unknown (streaming output that could not be patched)
    siting: Siting = "center"  # 4:2:0 chroma siting of the source, given back to the decoded file

    def __post_init__(self) -> None:
        object.__setattr__(self, "fps", Fraction(self.fps))
        if not (0 < self.width <= MAX_DIMENSION and 0 < self.height <= MAX_DIMENSION
                and self.width * self.height <= MAX_PIXELS):
            raise ValueError(f"frame size {self.width}x{self.height} is outside 1..{MAX_DIMENSION} per side "
                             f"and {MAX_PIXELS} pixels")
        if not 0 <= self.frame_count < 2**32:
            raise ValueError(f"frame count {self.frame_count} is out of range")
        if self.fps <= 0 or self.fps.numerator >= 2**32 or self.fps.denominator >= 2**32:
            raise ValueError(f"frame rate {self.fps} is not a positive 32-bit rational")
        if (self.chroma, self.siting) not in _CHROMA_CODES:
            raise ValueError(f"chroma {self.chroma!r} with siting {self.siting!r} is not one of "
                             f"{sorted(_CHROMA_CODES)}")
        if self.chroma == "420" and (self.width % 2 or self.height % 2):
            raise ValueError(f"4:2:0 frame size {self.width}x{self.height} has an odd dimension")
        for name in ("preset", "weights_fingerprint", "tables_fingerprint", "backend"):
            if len(getattr(self, name).encode("utf-8")) > 255:
                raise ValueError(f"{name} is longer than 255 UTF-8 bytes")

    def to_bytes(self) -> bytes:
        fields = _FIXED.pack(self.width, self.height, self.frame_count, self.fps.numerator,
                             self.fps.denominator, _CHROMA_CODES[self.chroma, self.siting])
        for text in (self.preset, self.weights_fingerprint, self.tables_fingerprint, self.backend):
            raw = text.encode("utf-8")
            fields += bytes([len(raw)]) + raw
        head = _PREFIX.pack(MAGIC, VERSION, len(fields)) + fields
        return head + struct.pack(">I", zlib.crc32(head))

    @classmethod
    def from_bytes(cls, rest: bytes) -> "SequenceHeader":
        """Parse the header body (after magic, version and length; CRC already checked)."""
        width, height, count, num, den, code = _FIXED.unpack_from(rest)
        pos, texts = _FIXED.size, []
        for _ in range(4):
            end = pos + 1 + rest[pos] if pos < len(rest) else len(rest) + 1
            if end > len(rest):
                raise CorruptStreamError("sequence header: a string runs past the header")
            texts.append(rest[pos + 1:end])
            pos = end
        if pos != len(rest):
            raise CorruptStreamError(f"sequence header: {len(rest) - pos} unexpected trailing bytes")
        chroma_siting = {v: k for k, v in _CHROMA_CODES.items()}.get(code)
        if chroma_siting is None:
            raise CorruptStreamError(f"sequence header: unknown chroma code {code}")
        if den == 0:
            raise CorruptStreamError(f"sequence header: frame rate {num}/0")
        try:
            return cls(width, height, Fraction(num, den), chroma_siting[0], *(t.decode("utf-8") for t in texts),
                       frame_count=count, siting=chroma_siting[1])
        except ValueError as e:  # UnicodeDecodeError is a ValueError too
            raise CorruptStreamError(f"sequence header: {e}") from None


@dataclass(frozen=True)
class Packet:
    """One coded frame pair (or the odd last frame): the payload is opaque here."""

    first_frame: int
    qps: tuple[int, ...]  # one qp per frame, so len(qps) is the number of frames
    reset: bool
    payload: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "qps", tuple(self.qps))
        if len(self.qps) not in (1, 2) or not all(0 <= q <= 255 for q in self.qps):
            raise ValueError(f"qps {self.qps} must be one or two values in 0..255")
        if self.first_frame % 2 or not 0 <= self.first_frame < 2**32:
            raise ValueError(f"first frame {self.first_frame} must be even: packets hold frame pairs")
        if len(self.payload) >= 2**32:
            raise ValueError("payload exceeds 4 GiB")

    @property
    def num_frames(self) -> int:
        return len(self.qps)

    @property
    def index(self) -> int:
        return self.first_frame // 2

    def to_bytes(self) -> bytes:
        qp0, qp1 = (self.qps + (0,))[:2]
        fields = _PACKET.pack(SYNC, self.first_frame, self.num_frames, qp0, qp1,
                              FLAG_RESET if self.reset else 0, len(self.payload), 0)
        crc = zlib.crc32(self.payload, zlib.crc32(fields[4:-4]))
        return fields[:-4] + struct.pack(">I", crc) + self.payload


@dataclass(frozen=True)
class PacketLocation:
    """Where a packet starts in the file (for :meth:`ContainerReader.packets_from`)."""

    index: int
    offset: int
    first_frame: int
    reset: bool


# --------------------------------------------------------------------------- sub-streams
def _put_uint(value: int) -> bytes:
    """DCVC's ``uint_adaptive`` (spec §3.7): 1, 2 or 4 bytes for < 2^7, 2^14, 2^30."""
    if value < 1 << 7:
        return bytes([value])
    if value < 1 << 14:
        return struct.pack(">H", 0x8000 | value)
    if value < 1 << 30:
        return struct.pack(">I", 0xC0000000 | value)
    raise ValueError(f"{value} does not fit uint_adaptive (< 2^30)")


def _get_uint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of a ``uint_adaptive`` at ``pos``."""
    if pos >= len(data):
        raise CorruptStreamError("payload: sub-stream table runs past the payload")
    size = {0: 1, 1: 1, 2: 2, 3: 4}[data[pos] >> 6]
    if pos + size > len(data):
        raise CorruptStreamError("payload: sub-stream table runs past the payload")
    raw = int.from_bytes(data[pos:pos + size], "big")
    return raw & ((1 << (8 * size - (1 if size == 1 else 2))) - 1), pos + size


def pack_substreams(streams: Sequence[bytes]) -> bytes:
    """count, each length (``uint_adaptive``), then the streams back to back."""
    table = _put_uint(len(streams)) + b"".join(_put_uint(len(s)) for s in streams)
    return table + b"".join(streams)


def unpack_substreams(payload: bytes) -> list[bytes]:
    """Inverse of :func:`pack_substreams`; the lengths must account for every byte."""
    count, pos = _get_uint(payload, 0)
    lengths = []
    for _ in range(count):
        length, pos = _get_uint(payload, pos)
        lengths.append(length)
    if pos + sum(lengths) != len(payload):
        raise CorruptStreamError(
            f"payload: sub-streams need {pos + sum(lengths)} bytes, the payload has {len(payload)}")
    streams = []
    for length in lengths:
        streams.append(payload[pos:pos + length])
        pos += length
    return streams


# --------------------------------------------------------------------------- writer
class ContainerWriter:
    """Writes a container to a path (atomically) or to a binary file-like (e.g. stdout).

    Packets must come in order, the first one a reset point.  On close the frame count
    in the header is patched when the output is seekable (always for a path).
    """

    def __init__(self, target: PathLike | BinaryIO, header: SequenceHeader,
                 protect: Iterable[PathLike] = ()) -> None:
        self._atomic = None if hasattr(target, "write") else AtomicOutput(target, protect)
        self._f: BinaryIO = self._atomic.file if self._atomic else target  # type: ignore[assignment]
        self.header = header
        self._start = self._f.tell() if self._seekable() else 0
        self._f.write(header.to_bytes())
        self.frames_written = 0
        self._last_single = False

    def _seekable(self) -> bool:
        try:
            return self._f.seekable()
        except (AttributeError, ValueError):
            return False

    def write_packet(self, packet: Packet) -> None:
        if self._last_single:
            raise ValueError("a 1-frame packet must be the last one")
        if packet.first_frame != self.frames_written:
            raise ValueError(f"packet starts at frame {packet.first_frame}, expected {self.frames_written}")
        if packet.index == 0 and not packet.reset:
            raise ValueError("the first packet must be a reset point")
        self._f.write(packet.to_bytes())
        self.frames_written += packet.num_frames
        self._last_single = packet.num_frames == 1

    def close(self) -> None:
        """Patch the frame count (if seekable) and publish the file."""
        if self._atomic is not None and self._atomic.closed:
            return
        if self._seekable():
            end = self._f.tell()
            self._f.seek(self._start)
            self._f.write(replace(self.header, frame_count=self.frames_written).to_bytes())
            self._f.seek(end)
        self._f.flush()
        if self._atomic is not None:
            self._atomic.commit()

    def abort(self) -> None:
        """Delete the temporary file (path targets; a file-like is the caller's)."""
        if self._atomic is not None:
            self._atomic.abort()

    def __enter__(self) -> "ContainerWriter":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --------------------------------------------------------------------------- reader
class ContainerReader:
    """Reads a container from a path or a binary file-like, packet by packet as bytes arrive.

    Iterating verifies each packet's CRC and the packet sequence (indices, the odd last
    frame, the announced frame count) and raises a :class:`~ui2c.errors.BitstreamError`
    subclass naming the packet on any problem.
    """

    def __init__(self, source: PathLike | BinaryIO) -> None:
        self._owned = not hasattr(source, "read")
        self._f: BinaryIO = open(source, "rb") if self._owned else source  # type: ignore[arg-type]
        self._pos = 0
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise
        self.data_start = self._pos

    def _read(self, n: int) -> bytes:
        """Up to ``n`` bytes, fewer only at end of stream (pipes return short reads)."""
        parts, left = [], n
        while left:
            chunk = self._f.read(min(left, _READ_CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        data = b"".join(parts)
        self._pos += len(data)
        return data

    def _read_header(self) -> SequenceHeader:
        prefix = self._read(_PREFIX.size)
        if not prefix or not MAGIC.startswith(prefix[:4]):
            raise CorruptStreamError(f"not a UI2C stream: magic is {prefix[:4]!r}, expected {MAGIC!r}")
        if len(prefix) < _PREFIX.size:
            raise TruncatedStreamError(f"sequence header truncated: {len(prefix)} of {_PREFIX.size} bytes")
        _, version, length = _PREFIX.unpack(prefix)
        if version != VERSION:
            raise UnsupportedVersionError(
                f"container version {version} is not supported: this build reads version {VERSION}")
        if length < _FIXED.size + 4:
            raise CorruptStreamError(f"sequence header length {length} is too short")
        rest = self._read(length + 4)
        if len(rest) < length + 4:
            raise TruncatedStreamError(
                f"sequence header truncated: {_PREFIX.size + len(rest)} of {_PREFIX.size + length + 4} bytes")
        (crc,) = struct.unpack(">I", rest[-4:])
        if zlib.crc32(prefix + rest[:-4]) != crc:
            raise CorruptStreamError("sequence header CRC mismatch")
        return SequenceHeader.from_bytes(rest[:-4])

    def _packet_head(self, index: int | None) -> tuple[tuple, bytes] | None:
        """Parse one packet header; None at a clean end of stream."""
        start = self._pos
        raw = self._read(_PACKET.size)
        if not raw:
            return None
        where = f"packet {index}" if index is not None else f"packet at byte {start}"
        if len(raw) < _PACKET.size:
            raise TruncatedStreamError(f"{where} truncated: header has {len(raw)} of {_PACKET.size} bytes")
        fields = _PACKET.unpack(raw)
        sync, first, frames, _, qp1, flags, _, _ = fields
        if sync != SYNC:
            raise CorruptStreamError(f"{where}: bad sync word {sync!r} at byte {start}")
        if index is not None and first != 2 * index:
            raise CorruptStreamError(f"{where}: starts at frame {first}, expected {2 * index}")
        if frames not in (1, 2) or (frames == 1 and qp1) or flags & ~FLAG_RESET or first % 2:
            raise CorruptStreamError(f"{where}: impossible header (frames {frames}, flags {flags:#x})")
        return fields, raw

    def _packets(self, index: int | None) -> Iterator[Packet]:
        """Packets from the current position; ``index`` is the expected first index, if known."""
        frames_seen = None
        while (head := self._packet_head(index)) is not None:
            (_, first, frames, qp0, qp1, flags, length, crc), raw = head
            index = first // 2
            if frames_seen is not None and frames_seen % 2:
                raise CorruptStreamError(f"packet {index} follows a 1-frame packet, which must be last")
            if index == 0 and not flags & FLAG_RESET:
                raise CorruptStreamError("packet 0 is not a reset point")
            total = self.header.frame_count
            if total and first + frames > total:
                raise CorruptStreamError(f"packet {index} holds frames beyond the announced {total}")
            payload = self._read(length)
            if len(payload) < length:
                raise TruncatedStreamError(f"packet {index} truncated: payload has {len(payload)} of {length} bytes")
            if zlib.crc32(payload, zlib.crc32(raw[4:-4])) != crc:
                raise CorruptStreamError(f"packet {index}: CRC mismatch")
            yield Packet(first, (qp0, qp1)[:frames], bool(flags & FLAG_RESET), payload)
            frames_seen, index = first + frames, index + 1
        if self.header.frame_count and (frames_seen or 0) != self.header.frame_count:
            raise TruncatedStreamError(
                f"stream ends before packet {index}: {frames_seen or 0} of "
                f"{self.header.frame_count} announced frames")

    def __iter__(self) -> Iterator[Packet]:
        """All packets from the first; single pass on a pipe."""
        if self._pos != self.data_start:
            self._seek(self.data_start)
        return self._packets(0)

    def _seek(self, offset: int) -> None:
        if not self._f.seekable():
            raise io.UnsupportedOperation("random access needs a seekable source")
        self._f.seek(offset)
        self._pos = offset

    def reset_points(self) -> list[PacketLocation]:
        """Locations of all reset-point packets, scanning headers only (needs a seekable source)."""
        size = self._f.seek(0, io.SEEK_END) if self._f.seekable() else 0
        self._seek(self.data_start)
        points, index = [], 0
        while (head := self._packet_head(index)) is not None:
            (_, first, _, _, _, flags, length, _), _ = head
            if self._pos + length > size:
                raise TruncatedStreamError(f"packet {index} truncated: payload runs past the end of file")
            if flags & FLAG_RESET:
                points.append(PacketLocation(index, self._pos - _PACKET.size, first, True))
            self._seek(self._pos + length)
            index += 1
        return points

    def packets_from(self, location: PacketLocation | int) -> Iterator[Packet]:
        """Packets starting at a :class:`PacketLocation` (or raw byte offset) to the end."""
        offset = location.offset if isinstance(location, PacketLocation) else location
        self._seek(offset)
        return self._packets(location.index if isinstance(location, PacketLocation) else None)

    def close(self) -> None:
        if self._owned:
            self._f.close()

    def __enter__(self) -> "ContainerReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_compatible(header: SequenceHeader, preset: str, weights_fp: str, tables_fp: str,
                     backend: str) -> None:
    """Refuse to decode a stream produced by other weights, tables or entropy backend."""
    ours = {"preset": preset, "weights_fingerprint": weights_fp,
            "tables_fingerprint": tables_fp, "backend": backend}
    diffs = [f"{name}: stream has {getattr(header, name)!r}, decoder has {value!r}"
             for name, value in ours.items() if getattr(header, name) != value]
    if diffs:
        raise ModelMismatchError("stream was produced by a different model setup: " + "; ".join(diffs))
