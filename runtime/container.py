"""The UI2C bitstream container: one sequence header, then one packet per frame pair.

DCVC-RT's raw NAL stream (spec §3.7) has no magic, no frame count and no way to tell
which model produced it; decoding it with other weights, tables or a backend whose
entropy parameters differ silently yields garbage.  This container adds exactly what
deployment needs: identification, integrity (CRC32 on the header and every packet),
streaming reads from pipes, and an index of reset points for random access.

The bytes and every check on them (``runtime/CONTAINER.md``) have one implementation,
libui2c's C++ (``runtime/cpp/src/container.cpp``), bound as ``ui2c.entropy._container``:
the C++ runtime and Python cannot disagree on the format.  It raises the
:mod:`ui2c.errors` stream errors itself, and ``ValueError`` for values a writer cannot
store.  What stays here is what only Python needs: the dataclasses of the public API and
the streaming reader and writer (atomic output, pipes, random access).
"""
from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import BinaryIO, Iterable, Iterator, Sequence

from ..entropy import _container
from ..errors import ModelMismatchError, TruncatedStreamError
from ..fileio import AtomicOutput
from ..video_io import Chroma, PathLike, Siting

_READ_CHUNK = 1 << 20  # payloads are read in chunks: a corrupt length costs no memory


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
        # Refuse a header the format cannot hold now, not when the first packet is
        # written: serialising runs the C++ checks (ValueError naming the field).
        self.to_bytes()

    def to_bytes(self) -> bytes:
        return _container.header_to_bytes(
            self.width, self.height, self.frame_count, self.fps.numerator, self.fps.denominator, self.chroma,
            self.siting, self.preset, self.weights_fingerprint, self.tables_fingerprint, self.backend)

    @classmethod
    def from_bytes(cls, data: bytes) -> "SequenceHeader":
        """Parse a whole header (magic to CRC); raises the :mod:`ui2c.errors` stream errors."""
        fields, _ = _container.parse_header(data)
        return cls(fps=Fraction(fields.pop("fps_num"), fields.pop("fps_den")), **fields)


@dataclass(frozen=True)
class Packet:
    """One coded frame pair (or the odd last frame): the payload is opaque here.

    The fields are checked when the packet is serialised (:meth:`to_bytes`, by the
    writer), not here: the reader builds packets from checked bytes by the thousand.
    """

    first_frame: int
    qps: tuple[int, ...]  # one qp per frame, so len(qps) is the number of frames
    reset: bool
    payload: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "qps", tuple(self.qps))

    @property
    def num_frames(self) -> int:
        return len(self.qps)

    @property
    def index(self) -> int:
        return self.first_frame // 2

    def to_bytes(self) -> bytes:
        return _container.packet_to_bytes(self.first_frame, self.qps, self.reset, self.payload)


@dataclass(frozen=True)
class PacketLocation:
    """Where a packet starts in the file (for :meth:`ContainerReader.packets_from`)."""

    index: int
    offset: int
    first_frame: int
    reset: bool


def pack_substreams(streams: Sequence[bytes]) -> bytes:
    """count, each length (``uint_adaptive``), then the streams back to back (CONTAINER.md §3)."""
    return _container.pack_substreams(list(streams))


def unpack_substreams(payload: bytes) -> list[bytes]:
    """Inverse of :func:`pack_substreams`; the lengths must account for every byte."""
    return _container.unpack_substreams(payload)


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
        # The reader's sequence rules, so the writer cannot produce a stream it refuses;
        # no frame count: the header's is a placeholder, patched on close.
        self._sequence = _container.PacketSequence(0, writer=True)
        with self._aborting():
            self._start = self._f.tell() if self._seekable() else 0
            self._f.write(header.to_bytes())

    @contextmanager
    def _aborting(self) -> Iterator[None]:
        """Abort on any failure: no ``with`` block covers the constructor, and
        ``__exit__`` aborts when its block fails, not when ``close`` does, so a failed
        header write or patch would otherwise leave the ``.part`` file until collection."""
        try:
            yield
        except BaseException:
            self.abort()
            raise

    @property
    def frames_written(self) -> int:
        return self._sequence.frames

    def _seekable(self) -> bool:
        try:
            return self._f.seekable()
        except (AttributeError, ValueError):
            return False

    def write_packet(self, packet: Packet) -> None:
        """Append a packet; ValueError if it breaks the sequence rules or the format."""
        data = packet.to_bytes()
        self._sequence.add(packet.first_frame, packet.num_frames, packet.reset)
        self._f.write(data)

    def close(self) -> None:
        """Patch the frame count (if seekable) and publish the file."""
        if self._atomic is not None and self._atomic.closed:
            return
        with self._aborting():
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
            prefix = self._read(_container.HEADER_PREFIX_BYTES)
            self.header = SequenceHeader.from_bytes(prefix + self._read(_container.header_size(prefix) - len(prefix)))
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

    def _packets(self, index: int | None) -> Iterator[Packet]:
        """Packets from the current position; ``index`` is the expected first index, if known."""
        count = self.header.frame_count
        sequence = _container.PacketSequence(count, 2 * (index or 0))
        while head := self._read(_container.PACKET_HEADER_BYTES):
            first, frames, reset, size = _container.parse_packet_head(head, index)
            if index is None:  # a raw byte offset: the sequence starts where the packet says
                sequence = _container.PacketSequence(count, first)
            sequence.add(first, frames, reset)  # before the payload is read: a broken sequence costs nothing
            first, qps, reset, payload, _ = _container.parse_packet(head + self._read(size - len(head)), index)
            yield Packet(first, qps, reset, payload)
            index = sequence.next_index
        sequence.finish()

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
        while head := self._read(_container.PACKET_HEADER_BYTES):
            offset = self._pos - len(head)
            first, _, reset, packet_size = _container.parse_packet_head(head, index)
            if offset + packet_size > size:
                raise TruncatedStreamError(f"packet {index} truncated: payload runs past the end of file")
            if reset:
                points.append(PacketLocation(index, offset, first, True))
            self._seek(offset + packet_size)
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
