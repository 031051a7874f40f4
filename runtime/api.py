"""File-level encoding and decoding: what the CLI and the evaluation call.

``encode_file`` reads any supported video, codes it with a :class:`Encoder` and
writes a container; ``decode_file`` does the reverse.  Both stream frame by frame,
write outputs atomically and never overwrite their input.
"""
from __future__ import annotations

import errno
import itertools
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..entropy.rans import DEFAULT_BITS_PER_LANE
from ..errors import CorruptStreamError, InputFormatError, OutputError
from ..models.stages import padded
from .container import ContainerReader, ContainerWriter, Packet, SequenceHeader, check_compatible
from .model import CodecModel
from .session import DecodedUnit, Decoder, Encoder, SCENE_CUT_THRESHOLD
from ..video_io import array_to_frame, crop, frame_to_array, open_video, open_writer, pad

PathLike = str | Path


@dataclass
class EncodeResult:
    frames: int
    width: int
    height: int
    file_bytes: int
    unit_bytes: list[int] = field(default_factory=list)  # packet payload + packet header, per unit
    unit_frames: list[int] = field(default_factory=list)
    resets: list[int] = field(default_factory=list)  # first frame of each reset unit
    recon: list[np.ndarray] = field(default_factory=list)  # cropped float (3, h, w) on the 8-bit scale/255

    @property
    def bpp(self) -> float:
        """Whole file (headers included) per coded pixel."""
        return self.file_bytes * 8 / (self.frames * self.width * self.height)

    def frame_bits(self) -> list[float]:
        """Bits per frame; a pair's bits are split evenly between its two frames
        (one packet codes both, so no finer split exists)."""
        return [b * 8 / n for b, n in zip(self.unit_bytes, self.unit_frames) for _ in range(n)]


def _host(frame: torch.Tensor) -> np.ndarray:
    """A session's device frame as a float32 host array (what video writers take)."""
    return frame.float().cpu().numpy()


@contextmanager
def _naming_full_disks(dst: PathLike) -> Iterator[None]:
    """A write that fails for lack of space carries no file name; name the output."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise OutputError(f"cannot write {dst}: {e.strerror}") from None
        raise


def _frames(path: PathLike, width: int | None, height: int | None, limit: int | None):
    """The open reader and its frames, at most ``limit``: islice stops reading there
    (a filter would read, and decode, the rest of the file for nothing)."""
    if limit is not None and limit < 1:
        raise InputFormatError(f"max_frames must be at least 1, got {limit}")
    reader = open_video(path, width=width, height=height)
    return reader, itertools.islice(reader, limit)


def encode_file(codec: CodecModel, src: PathLike, dst: PathLike, qp: int, *, width: int | None = None,
                height: int | None = None, max_frames: int | None = None, reset_interval: int = 0,
                scene_cut_threshold: float | None = SCENE_CUT_THRESHOLD, keep_recon: bool = False,
                threads: int = 1, drift_guard_db: float | None = None, progress: bool = True,
                bits_per_lane: int = DEFAULT_BITS_PER_LANE) -> EncodeResult:
    """Encode ``src`` into the container ``dst``; ``keep_recon`` also returns the
    encoder's reconstructions (identical to what the decoder will produce).
    ``bits_per_lane``: the rANS layout density (``runtime.session.Encoder``)."""
    reader, frames = _frames(src, width, height, max_frames)
    with reader:
        # The first frame is read before any buffer is sized from the header: a file
        # that declares a huge size but holds no complete frame fails here, cheaply.
        first = next(frames, None)
        if first is None:
            raise InputFormatError(f"{src} holds no frames")
        frames = itertools.chain([first], frames)
        w, h = reader.width, reader.height
        ph, pw = padded(h), padded(w)
        try:
            header = SequenceHeader(width=w, height=h, fps=Fraction(reader.fps), chroma=reader.chroma,
                                    siting=reader.siting,
                                    preset=codec.preset, weights_fingerprint=codec.weights_fingerprint,
                                    tables_fingerprint=codec.tables_fingerprint, backend=codec.producer)
        except ValueError as e:  # e.g. a frame rate that does not fit the container's 32-bit fields
            raise InputFormatError(f"{src}: {e}") from None
        encoder = Encoder(codec, ph, pw, qp, reconstruct=keep_recon, reset_interval=reset_interval,
                          drift_guard_db=drift_guard_db,
                          scene_cut_threshold=scene_cut_threshold, threads=threads, bits_per_lane=bits_per_lane)
        result = EncodeResult(0, w, h, 0)
        total = reader.frame_count if max_frames is None else min(max_frames, reader.frame_count or max_frames)
        bar = tqdm(total=total, unit="frame", desc="encode", disable=not progress)
        with _naming_full_disks(dst), ContainerWriter(dst, header, protect=[src]) as writer:
            def emit(units) -> None:
                for unit in units:
                    writer.write_packet(unit.packet)
                    result.unit_bytes.append(len(unit.packet.to_bytes()))
                    result.unit_frames.append(unit.packet.num_frames)
                    if unit.packet.reset:
                        result.resets.append(unit.packet.first_frame)
                    result.recon.extend(crop(_host(r), h, w) for r in unit.recon)
                    bar.update(unit.packet.num_frames)

            try:
                for frame in frames:
                    emit(encoder.push(pad(frame_to_array(frame))))
                    result.frames += 1
                emit(encoder.flush())
            finally:
                encoder.close()  # the entropy worker's thread
        bar.close()
    result.file_bytes = Path(dst).stat().st_size
    return result


def decode_frames(codec: CodecModel, src: PathLike, *, from_reset: int | None = None,
                  threads: int = 1) -> Iterator[tuple[SequenceHeader, int, np.ndarray]]:
    """Yield (header, frame index, cropped float frame) for every decoded frame.

    ``from_reset`` starts at the n-th reset point (random access)."""
    with ContainerReader(src) as reader:
        yield from _decode(codec, reader.header, src, _packets(codec, reader, src, from_reset), threads)


def _packets(codec: CodecModel, reader: ContainerReader, src: PathLike, from_reset: int | None) -> Iterator[Packet]:
    """The packets to decode, once the stream is known to be this codec's."""
    check_compatible(reader.header, codec.preset, codec.weights_fingerprint, codec.tables_fingerprint,
                     codec.producer)
    if from_reset is None:
        return iter(reader)
    points = reader.reset_points()
    if not 0 <= from_reset < len(points):
        raise InputFormatError(f"{src} has {len(points)} reset points; cannot start at #{from_reset}")
    return reader.packets_from(points[from_reset])


def _decode(codec: CodecModel, header: SequenceHeader, src: PathLike, packets: Iterator[Packet],
            threads: int) -> Iterator[tuple[SequenceHeader, int, np.ndarray]]:
    """(header, frame index, cropped float frame) of every frame ``packets`` code."""
    # As for encoding: one verified packet before the decoder's buffers are allocated.
    first = next(packets, None)
    if first is None:
        raise CorruptStreamError(f"{src} holds no frames")
    decoder = Decoder(codec, padded(header.height), padded(header.width), threads=threads)
    for packet in itertools.chain([first], packets):
        for unit in decoder.decode(packet):
            yield from _frames_of(header, unit)
    for unit in decoder.flush():
        yield from _frames_of(header, unit)


def _frames_of(header: SequenceHeader, unit: DecodedUnit) -> Iterator[tuple[SequenceHeader, int, np.ndarray]]:
    for s, frame in enumerate(unit.frames):
        yield header, unit.first_frame + s, crop(_host(frame), header.height, header.width)


def decode_file(codec: CodecModel, src: PathLike, dst: PathLike, *, from_reset: int | None = None,
                threads: int = 1, progress: bool = True, reader: ContainerReader | None = None) -> int:
    """Decode the container ``src`` to a .y4m or .yuv file; returns the frame count.
    ``src`` is read once, since a pipe or FIFO cannot be opened again for its packets:
    a caller that has already read its header (to choose the model) passes that
    ``reader``, which stays the caller's to close."""
    count = 0
    with nullcontext(reader) if reader is not None else ContainerReader(src) as reader:
        header = reader.header
        packets = _packets(codec, reader, src, from_reset)
        bar = tqdm(total=header.frame_count or None, unit="frame", desc="decode", disable=not progress)
        with _naming_full_disks(dst), open_writer(dst, fps=header.fps, protect=[src], siting=header.siting) as writer:
            for _, _, frame in _decode(codec, header, src, packets, threads):
                writer.write(array_to_frame(frame, header.chroma))
                count += 1
                bar.update(1)
    bar.close()
    return count
