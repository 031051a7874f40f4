"""Video frames in and out: raw YUV, Y4M and (reading only) anything PyAV decodes.

The codec works on 8-bit YUV planes exactly as DCVC-RT's test harness does (spec §4),
so this module never goes through RGB: 4:2:0 chroma is upsampled by nearest neighbour
for the network and averaged 2×2 on the way back.  Readers stream frame by frame
(a 4K clip does not fit in memory as a whole), and writers publish their output with
an atomic rename so an interrupted encode never leaves a file that looks complete.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable, Iterator, Literal

import numpy as np

from .errors import InputFormatError
from .fileio import AtomicOutput
from .models.stages import PAD_MULTIPLE

if TYPE_CHECKING:
    import av

Chroma = Literal["420", "444"]
# Where 4:2:0 chroma samples sit (Y4M's C420jpeg / C420mpeg2 / C420paldv).  The codec
# codes the planes as they are; the siting is carried through the stream so a decoded
# file is labelled like its source.  4:4:4 is always "center".
Siting = Literal["center", "left", "paldv"]
PathLike = str | os.PathLike
DEFAULT_FPS = Fraction(25)


@dataclass(frozen=True, eq=False)
class Frame:
    """One 8-bit frame as three planes; U and V are half size in both axes for 4:2:0.

    Planes from the raw and Y4M readers are read-only views of the file's bytes (no
    copy); ``np.array(frame.y)`` gives a writable copy.
    """

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    chroma: Chroma

    def __post_init__(self) -> None:
        if self.chroma not in ("420", "444"):
            raise InputFormatError(f"unknown chroma format {self.chroma!r}; expected '420' or '444'")
        h, w = self.y.shape
        check_dimensions(w, h, self.chroma)
        expect = chroma_shape(w, h, self.chroma)
        for name, plane in (("y", self.y), ("u", self.u), ("v", self.v)):
            if plane.dtype != np.uint8:
                raise InputFormatError(f"plane {name} has dtype {plane.dtype}, expected uint8")
        if self.u.shape != expect or self.v.shape != expect:
            raise InputFormatError(
                f"chroma planes {self.u.shape}/{self.v.shape} do not fit a {w}x{h} "
                f"{self.chroma} frame (expected {expect})")

    @property
    def width(self) -> int:
        return self.y.shape[1]

    @property
    def height(self) -> int:
        return self.y.shape[0]

    @property
    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.y, self.u, self.v


MAX_DIMENSION = 16384
MAX_PIXELS = 1 << 26  # 8192x8192; 8K UHD (7680x4320) fits


def check_dimensions(width: int, height: int, chroma: Chroma) -> None:
    """4:2:0 needs even sizes: the 2×2 chroma pooling of spec §4 has no odd-edge rule.
    Sizes are capped because every buffer of a session is allocated from them before
    the first frame is read: a hostile header must not be able to ask for terabytes."""
    if width <= 0 or height <= 0:
        raise InputFormatError(f"frame size {width}x{height} is not positive")
    if max(width, height) > MAX_DIMENSION or width * height > MAX_PIXELS:
        raise InputFormatError(f"frame size {width}x{height} exceeds the supported maximum "
                               f"({MAX_DIMENSION} per side, {MAX_PIXELS} pixels)")
    if chroma == "420" and (width % 2 or height % 2):
        raise InputFormatError(f"4:2:0 frame size {width}x{height} has an odd dimension")


def chroma_shape(width: int, height: int, chroma: Chroma) -> tuple[int, int]:
    """(rows, columns) of one chroma plane."""
    return (height // 2, width // 2) if chroma == "420" else (height, width)


def frame_bytes(width: int, height: int, chroma: Chroma) -> int:
    """Bytes of one planar frame (Y then U then V, no padding between planes)."""
    ch, cw = chroma_shape(width, height, chroma)
    return width * height + 2 * ch * cw


def frame_from_bytes(data: bytes, width: int, height: int, chroma: Chroma) -> Frame:
    """Split one planar frame's bytes into planes (copy-free views of ``data``)."""
    flat = np.frombuffer(data, dtype=np.uint8)
    ch, cw = chroma_shape(width, height, chroma)
    luma = width * height
    y = flat[:luma].reshape(height, width)
    u = flat[luma:luma + ch * cw].reshape(ch, cw)
    v = flat[luma + ch * cw:].reshape(ch, cw)
    return Frame(y, u, v, chroma)


def frame_to_bytes(frame: Frame) -> bytes:
    return b"".join(np.ascontiguousarray(p).tobytes() for p in frame.planes)


# --------------------------------------------------------------------------- colour
def upsample_chroma(plane: np.ndarray) -> np.ndarray:
    """Nearest-neighbour ×2 in both axes (spec §4, ``scipy.ndimage.zoom`` order 0)."""
    return plane.repeat(2, axis=-2).repeat(2, axis=-1)


def downsample_chroma(plane: np.ndarray) -> np.ndarray:
    """2×2 average pooling in float32 (spec §4): the codec's output chroma before rounding."""
    p = plane.astype(np.float32)
    return (p[..., 0::2, 0::2] + p[..., 0::2, 1::2] + p[..., 1::2, 0::2] + p[..., 1::2, 1::2]) / 4


def to_444(frame: Frame) -> Frame:
    if frame.chroma == "444":
        return frame
    return Frame(frame.y, upsample_chroma(frame.u), upsample_chroma(frame.v), "444")


def box_downscale(plane: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor``×``factor`` block of a uint8 plane, rounded half up.

    The exact "area" filter for an integer factor, in integers, so no resampler
    version can change the bytes of what is cut with it: the shipped demo clip, the
    evaluation sources and the training data.  ``(sum + area // 2) // area`` equals
    rounding the float mean half up as :func:`planes_to_frame` does, so for ``factor``
    2 it gives the bytes :func:`downsample_chroma` leads to.  Trailing rows and columns
    that do not fill a block are dropped: an area filter has no rule for them.
    """
    if plane.dtype != np.uint8:
        raise InputFormatError(f"box_downscale takes uint8 planes, got {plane.dtype}")
    h, w = (n - n % factor for n in plane.shape)
    area = factor * factor
    blocks = plane[:h, :w].astype(np.uint32).reshape(h // factor, factor, w // factor, factor)
    return ((blocks.sum(axis=(1, 3)) + area // 2) // area).astype(np.uint8)


def frame_to_array(frame: Frame) -> np.ndarray:
    """The network input: float32 (3, H, W) = (Y, U, V) / 255 at 4:4:4."""
    f = to_444(frame)
    return np.stack(f.planes).astype(np.float32) / np.float32(255)


def array_to_planes(x: np.ndarray, chroma: Chroma) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network output (3, H, W) in [0, 1] → float planes on the 8-bit scale, unrounded.

    The values are clamped to [0, 1] first and, for 4:2:0, chroma is average-pooled,
    so PSNR can be measured on the unrounded reconstruction as spec §5 prescribes.
    """
    if x.ndim != 3 or x.shape[0] != 3:
        raise InputFormatError(f"expected a (3, H, W) array, got shape {x.shape}")
    check_dimensions(x.shape[2], x.shape[1], chroma)
    x = np.clip(x.astype(np.float32), 0, 1) * np.float32(255)
    if chroma == "420":
        return x[0], downsample_chroma(x[1]), downsample_chroma(x[2])
    return x[0], x[1], x[2]


def planes_to_frame(planes: Iterable[np.ndarray], chroma: Chroma) -> Frame:
    """Float planes on the 8-bit scale → uint8 frame: clamp, then round half up like
    :func:`box_downscale`, so pooling a 4:4:4 frame through either path gives the same bytes."""
    y, u, v = (np.floor(np.clip(p, 0, 255) + 0.5).astype(np.uint8) for p in planes)
    return Frame(y, u, v, chroma)


def array_to_frame(x: np.ndarray, chroma: Chroma) -> Frame:
    """Network output (3, H, W) in [0, 1] → uint8 frame in ``chroma``."""
    return planes_to_frame(array_to_planes(x, chroma), chroma)


# --------------------------------------------------------------------------- padding
def pad_amount(height: int, width: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    """(bottom, right) padding to reach a multiple of ``multiple`` (spec §4 uses 16)."""
    return -height % multiple, -width % multiple


def pad(x: np.ndarray, multiple: int = PAD_MULTIPLE) -> np.ndarray:
    """Replicate-pad the last two axes on the bottom and right (``get_padding_size``)."""
    bottom, right = pad_amount(x.shape[-2], x.shape[-1], multiple)
    if not bottom and not right:
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(0, bottom), (0, right)]
    return np.pad(x, widths, mode="edge")


def crop(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Undo :func:`pad`: keep the top-left ``height`` × ``width``."""
    return x[..., :height, :width]


# --------------------------------------------------------------------------- readers
class VideoReader:
    """Streams frames of one file; ``frame_count`` is None when only decoding could tell."""

    width: int
    height: int
    chroma: Chroma
    fps: Fraction
    frame_count: int | None
    siting: Siting = "center"  # only Y4M says otherwise; raw and PyAV input are taken as centred

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file; readers open it lazily per iteration, so nothing by default."""

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SIZE_IN_NAME = re.compile(r"(?:^|[_\-.])(\d+)x(\d+)(?=$|[_\-.])")


def size_from_name(path: PathLike) -> tuple[int, int]:
    """(width, height) from a name like ``clip_1920x1080.yuv`` or ``a_640x480_25fps.yuv``."""
    match = _SIZE_IN_NAME.search(Path(path).stem)
    if not match:
        raise InputFormatError(
            f"cannot tell the frame size of {path}: name it like name_WxH.yuv or pass width/height")
    return int(match.group(1)), int(match.group(2))


class YuvReader(VideoReader):
    """Raw planar 8-bit YUV (4:2:0 by default), frames back to back."""

    def __init__(self, path: PathLike, width: int | None = None, height: int | None = None,
                 chroma: Chroma = "420", fps: Fraction = DEFAULT_FPS) -> None:
        self.path = Path(path)
        if width is None or height is None:
            width, height = size_from_name(path)
        check_dimensions(width, height, chroma)
        self.width, self.height, self.chroma, self.fps = width, height, chroma, Fraction(fps)
        self._frame_size = frame_bytes(width, height, chroma)
        size = self.path.stat().st_size
        if size % self._frame_size:
            raise InputFormatError(
                f"{path}: size {size} bytes is not a multiple of the {width}x{height} "
                f"{chroma} frame size {self._frame_size} (wrong size or truncated last frame)")
        self.frame_count = size // self._frame_size

    def __iter__(self) -> Iterator[Frame]:
        with open(self.path, "rb") as f:
            for index in range(self.frame_count):
                data = f.read(self._frame_size)
                if len(data) != self._frame_size:
                    raise InputFormatError(f"{self.path}: frame {index} truncated (file shrank)")
                yield frame_from_bytes(data, self.width, self.height, self.chroma)


_Y4M_MAGIC = b"YUV4MPEG2"
_Y4M_CHROMA: dict[str, tuple[Chroma, Siting]] = {
    "420": ("420", "center"), "420jpeg": ("420", "center"), "420mpeg2": ("420", "left"),
    "420paldv": ("420", "paldv"), "444": ("444", "center")}
_Y4M_TAG: dict[tuple[Chroma, Siting], str] = {
    ("420", "center"): "420jpeg", ("420", "left"): "420mpeg2", ("420", "paldv"): "420paldv", ("444", "center"): "444"}
_Y4M_LINE_MAX = 4096


def _read_line(f: BinaryIO, what: str) -> bytes | None:
    """One '\\n'-terminated line; None at a clean EOF, an error for an endless or cut line."""
    line = f.readline(_Y4M_LINE_MAX)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise InputFormatError(f"{what} is not terminated by a newline within {_Y4M_LINE_MAX} bytes")
    return line[:-1]


def parse_y4m_header(line: bytes) -> tuple[int, int, Chroma, Fraction, Siting]:
    """(width, height, chroma, fps, siting) from a Y4M stream header line without its newline.

    Tags other than W, H, F and C (interlacing, aspect, X comments) are ignored; an
    absent F means 25 fps and an absent C means 4:2:0, as in the format's defaults.
    """
    tokens = line.split(b" ")
    if tokens[0] != _Y4M_MAGIC:
        raise InputFormatError(f"not a Y4M file: header starts with {line[:10]!r}")
    tags: dict[str, str] = {}
    for token in tokens[1:]:
        if token:
            tags[chr(token[0])] = token[1:].decode("ascii", errors="replace")
    try:
        width, height = int(tags["W"]), int(tags["H"])
    except KeyError as missing:
        raise InputFormatError(f"Y4M header lacks the {missing} tag") from None
    except ValueError:
        raise InputFormatError(f"Y4M header has a bad size W{tags['W']} H{tags['H']}") from None
    chroma_tag = tags.get("C", "420jpeg")
    if chroma_tag not in _Y4M_CHROMA:
        raise InputFormatError(
            f"Y4M chroma C{chroma_tag} is not supported (8-bit 4:2:0 or 4:4:4 only)")
    fps = DEFAULT_FPS
    if "F" in tags:
        num, _, den = tags["F"].partition(":")
        try:
            fps = Fraction(int(num), int(den or 1))
        except (ValueError, ZeroDivisionError):
            raise InputFormatError(f"Y4M header has a bad frame rate F{tags['F']}") from None
        if fps <= 0 or fps.numerator >= 2**32 or fps.denominator >= 2**32:
            raise InputFormatError(f"Y4M header has a frame rate F{tags['F']} that is not a positive 32-bit ratio")
    if tags.get("I", "p") not in ("p", "?"):
        raise InputFormatError(f"Y4M interlacing I{tags['I']} is not supported: the codec codes progressive frames")
    chroma, siting = _Y4M_CHROMA[chroma_tag]
    check_dimensions(width, height, chroma)
    return width, height, chroma, fps, siting


class Y4MReader(VideoReader):
    """YUV4MPEG2, 8-bit 4:2:0 or 4:4:4."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            line = _read_line(f, f"{path}: Y4M header")
            if line is None:
                raise InputFormatError(f"{path}: empty file, no Y4M header")
            self.width, self.height, self.chroma, self.fps, self.siting = parse_y4m_header(line)
            self._data_start = f.tell()
        self._frame_size = frame_bytes(self.width, self.height, self.chroma)
        # Exact when every frame header is a bare "FRAME\n" (what all common muxers write).
        body = self.path.stat().st_size - self._data_start
        self.frame_count = body // (self._frame_size + 6) if body % (self._frame_size + 6) == 0 else None

    def __iter__(self) -> Iterator[Frame]:
        with open(self.path, "rb") as f:
            f.seek(self._data_start)
            index = 0
            while (line := _read_line(f, f"{self.path}: frame {index} marker")) is not None:
                if line.split(b" ")[0] != b"FRAME":
                    raise InputFormatError(f"{self.path}: frame {index} does not start with FRAME")
                data = f.read(self._frame_size)
                if len(data) != self._frame_size:
                    raise InputFormatError(
                        f"{self.path}: frame {index} truncated: {len(data)} of {self._frame_size} bytes")
                yield frame_from_bytes(data, self.width, self.height, self.chroma)
                index += 1


class AVReader(VideoReader):
    """Compressed video (.mp4, .mkv, ...) decoded by PyAV straight to YUV planes.

    yuv444p stays 4:4:4, yuv420p stays 4:2:0, and so do their full-range ``yuvj`` twins:
    their samples are coded as they are (a range conversion would only lose levels; the
    codec codes sample values, whatever their range).  Other YUV layouts (10-bit, 4:2:2)
    are converted by swscale to yuv420p, never through RGB.  A stream whose frame size
    changes midway is refused: a codec session codes one size.
    """

    _NATIVE: dict[str, Chroma] = {"yuv420p": "420", "yuvj420p": "420", "yuv444p": "444", "yuvj444p": "444"}

    def __init__(self, path: PathLike) -> None:
        import av  # deferred: raw and Y4M users need no FFmpeg

        self.path = Path(path)
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise InputFormatError(f"{path} has no video stream")
                stream = container.streams.video[0]
                fmt = stream.codec_context.format
                self.width, self.height = stream.width, stream.height
                self.fps = Fraction(stream.average_rate or stream.guessed_rate or DEFAULT_FPS)
                self.frame_count = stream.frames or None
        except av.FFmpegError as e:
            raise InputFormatError(f"{path}: cannot open video: {e}") from None
        self._format = fmt.name if fmt is not None and fmt.name in self._NATIVE else "yuv420p"
        self.chroma = self._NATIVE[self._format]
        check_dimensions(self.width, self.height, self.chroma)

    def __iter__(self) -> Iterator[Frame]:
        import av

        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for index, decoded in enumerate(container.decode(stream)):
                    if (decoded.width, decoded.height) != (self.width, self.height):
                        raise InputFormatError(f"{self.path}: frame {index} is {decoded.width}x{decoded.height}, "
                                               f"the stream started at {self.width}x{self.height}")
                    if decoded.format.name != self._format:
                        decoded = decoded.reformat(format=self._format)
                    yield Frame(*(self._plane(p) for p in decoded.planes), self.chroma)
            except av.FFmpegError as e:
                raise InputFormatError(f"{self.path}: decoding failed: {e}") from None

    @staticmethod
    def _plane(plane: "av.video.plane.VideoPlane") -> np.ndarray:
        """Copy one plane out of FFmpeg's buffer, dropping the stride padding."""
        rows = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
        return rows[:plane.height, :plane.width].copy()


def open_video(path: PathLike, width: int | None = None, height: int | None = None,
               chroma: Chroma = "420", fps: Fraction = DEFAULT_FPS) -> VideoReader:
    """Reader chosen by extension: ``.yuv`` (which alone uses the other arguments, since
    raw files carry no header), ``.y4m``, anything else through PyAV."""
    suffix = Path(path).suffix.lower()
    if not Path(path).is_file():
        raise InputFormatError(f"{path}: no such file")
    if suffix == ".yuv":
        return YuvReader(path, width, height, chroma, fps)
    if suffix == ".y4m":
        return Y4MReader(path)
    return AVReader(path)


# --------------------------------------------------------------------------- writers
class VideoWriter:
    """Writes frames to ``path`` atomically; the first frame fixes size and chroma."""

    def __init__(self, path: PathLike, protect: Iterable[PathLike] = ()) -> None:
        self._out = AtomicOutput(path, protect)
        self._first: Frame | None = None

    def write(self, frame: Frame) -> None:
        if self._first is None:
            self._first = frame
            self._start(frame)
        elif (frame.width, frame.height, frame.chroma) != (self._first.width, self._first.height,
                                                            self._first.chroma):
            raise InputFormatError(
                f"frame {frame.width}x{frame.height} {frame.chroma} differs from the stream's "
                f"{self._first.width}x{self._first.height} {self._first.chroma}")
        self._write_frame(frame)

    def _start(self, frame: Frame) -> None:
        """Write a file header, if the format has one."""

    def _write_frame(self, frame: Frame) -> None:
        self._out.file.write(frame_to_bytes(frame))

    def close(self) -> None:
        """Publish the file under its final name."""
        self._out.commit()

    def abort(self) -> None:
        """Discard everything written so far."""
        self._out.abort()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._out.__exit__(exc_type, *exc)


class YuvWriter(VideoWriter):
    """Raw planar YUV, no header."""


class Y4MWriter(VideoWriter):
    """YUV4MPEG2 with W, H, F, progressive, square pixels and the chroma tag of ``siting``."""

    def __init__(self, path: PathLike, fps: Fraction = DEFAULT_FPS,
                 protect: Iterable[PathLike] = (), siting: Siting = "center") -> None:
        super().__init__(path, protect)
        self.fps, self.siting = Fraction(fps), siting

    def _start(self, frame: Frame) -> None:
        tag = _Y4M_TAG.get((frame.chroma, self.siting))
        if tag is None:
            raise InputFormatError(f"chroma siting {self.siting!r} does not apply to {frame.chroma} frames")
        header = (f"YUV4MPEG2 W{frame.width} H{frame.height} "
                  f"F{self.fps.numerator}:{self.fps.denominator} Ip A1:1 C{tag}\n")
        self._out.file.write(header.encode("ascii"))

    def _write_frame(self, frame: Frame) -> None:
        self._out.file.write(b"FRAME\n")
        super()._write_frame(frame)


def check_writer_path(path: PathLike) -> str:
    """The output's suffix if a writer exists for it (a caller checks before loading a model)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".y4m", ".yuv"):
        raise InputFormatError(f"cannot write {path}: only .y4m and .yuv outputs are supported")
    return suffix


def open_writer(path: PathLike, fps: Fraction = DEFAULT_FPS,
                protect: Iterable[PathLike] = (), siting: Siting = "center") -> VideoWriter:
    """Writer chosen by extension: ``.y4m`` or ``.yuv`` (compressed output is not supported)."""
    if check_writer_path(path) == ".y4m":
        return Y4MWriter(path, fps, protect, siting)
    return YuvWriter(path, protect)
