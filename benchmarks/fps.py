"""Encode / decode speed of the codec runtime, measured the way codec papers do.

Spec §5 (DCVC-RT's ``test_video.py``), adapted to this runtime:

* Encode timer: from the padded float frame handed to ``Encoder.push`` to the
  packet written into an in-memory container (network stages, latent coding and
  rANS, container writing).  Reading the source and converting it to a float 4:4:4
  array is timed separately and *excluded* from fps, as in the paper's harness.
* Decode timer: packet parsing (CRC, sequence checks) from the in-memory container,
  z and y decoding, network stages and the crop.  Writing frames out is not timed.
* The first ``warmup_units`` coding units (pairs) of each side are not timed (the
  paper drops 10 frames; a few-frame CPU run drops one pair by default).
* fps = timed frames / timed seconds.  Real bitstreams are produced and the decoder
  decodes the encoder's packets.

Each timed second is attributed to a part (``net:<stage>``, latent ops, rANS,
container); ``other`` is the unattributed rest (session glue such as
``y / q_dec``).  Frames are the shipped Big Buck Bunny clip, tiled to the requested
size, or any video readable by ``open_video``.  A preset's shipped weights are used
where it has them, else random ones: those run at the same speed as trained ones,
except that the rANS time depends on the symbol statistics.
"""
from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

import ui2c

from ..errors import EngineError
from ..runtime.container import ContainerReader, ContainerWriter, SequenceHeader
from ..runtime.model import CodecModel, default_weights, load_codec
from ..runtime.session import Decoder, Encoder
from ..runtime.video_io import Frame, crop, frame_to_array, open_video, pad
from .complexity import padded
from .timing import Clock, TimingBackend, instrument_entropy, peak_rss_mb, reset_peak_rss

BACKENDS = ("torch", "onnxruntime", "tensorrt")
SOURCE_CLIP = Path(ui2c.__file__).resolve().parent / "assets" / "bbb_320x180_16f.y4m"
CONTAINER = "container"


def tile_frame(frame: Frame, width: int, height: int) -> Frame:
    """Repeat a 4:2:0 frame's planes to cover ``width`` × ``height`` and crop."""

    def tile(plane: np.ndarray, w: int, h: int) -> np.ndarray:
        reps = (-(-h // plane.shape[0]), -(-w // plane.shape[1]))
        return np.ascontiguousarray(np.tile(plane, reps)[:h, :w])

    return Frame(tile(frame.y, width, height), tile(frame.u, width // 2, height // 2),
                 tile(frame.v, width // 2, height // 2), "420")


def source_frames(width: int, height: int, count: int, video: Path = SOURCE_CLIP) -> list[Frame]:
    """``count`` 4:2:0 frames of ``width`` × ``height`` (cycling through ``video``)."""
    with open_video(video) as reader:
        clip = [tile_frame(f, width, height) for _, f in zip(range(count), reader)]
    return [clip[i % len(clip)] for i in range(count)]


def open_codec(model: str, backend: str) -> CodecModel:
    """The codec with random weights (speed does not depend on their values)."""
    if backend == "tensorrt":
        from ..engines.targets import cuda_device_info

        cuda_device_info()  # raises EngineError naming why there is no GPU
        raise EngineError("the TensorRT speed benchmark runs on a GPU machine with engines from "
                          "`ui2c build-engines`; the codec runtime does not load TensorRT engines yet")
    if backend not in BACKENDS:
        raise EngineError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return load_codec(model, backend=backend, allow_random=True)


@dataclass
class PhaseResult:
    """Timed frames and seconds of one side (encode or decode), split by part."""

    frames: int = 0
    seconds: float = 0.0
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> {"ms", "calls"}

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def add_unit(self, frames: int, seconds: float) -> None:
        self.frames += frames
        self.seconds += seconds

    def close(self, clock: Clock) -> None:
        """Copy the clock's parts and add ``other`` (the unattributed rest)."""
        self.parts = {k: {"ms": p.seconds * 1e3, "calls": p.calls} for k, p in sorted(clock.parts.items())}
        attributed = sum(p.seconds for p in clock.parts.values())
        self.parts["other"] = {"ms": (self.seconds - attributed) * 1e3, "calls": 0}

    def to_dict(self) -> dict:
        return {"frames": self.frames, "total_ms": self.seconds * 1e3, "fps": self.fps,
                "ms_per_frame": self.seconds * 1e3 / self.frames if self.frames else 0.0, "parts": self.parts}


def latent_elements(ch_y: int, ch_z: int, height: int, width: int) -> int:
    """y and z elements of one coded unit at a padded size (both are entropy-coded)."""
    return ch_y * (height // 16) * (width // 16) + ch_z * -(-height // 64) * -(-width // 64)


def _header(codec: CodecModel, width: int, height: int) -> SequenceHeader:
    return SequenceHeader(width, height, Fraction(25), "420", codec.preset, codec.weights_fingerprint,
                          codec.tables_fingerprint, codec.producer)


def _encode(codec: CodecModel, frames: list[Frame], qp: int, warmup: int, threads: int,
            clock: Clock) -> tuple[PhaseResult, bytes, float]:
    """Encode into memory; returns (timing, container bytes, source conversion seconds per frame)."""
    width, height = frames[0].width, frames[0].height
    encoder = Encoder(codec, padded(height), padded(width), qp, threads=threads)
    result, buffer, convert = PhaseResult(), io.BytesIO(), 0.0
    units_done = 0
    with ContainerWriter(buffer, _header(codec, width, height)) as writer:
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            array = pad(frame_to_array(frame))
            convert += time.perf_counter() - start
            start = time.perf_counter()
            units = encoder.push(array) + (encoder.flush() if i == len(frames) - 1 else [])
            for unit in units:
                with clock.measure(CONTAINER):
                    writer.write_packet(unit.packet)
            elapsed = time.perf_counter() - start
            for unit in units:
                units_done += 1
                if units_done > warmup:
                    result.add_unit(unit.packet.num_frames, elapsed / len(units))
                elif units_done == warmup:
                    clock.reset()
    result.close(clock)
    return result, buffer.getvalue(), convert / len(frames)


def _decode(codec: CodecModel, stream: bytes, warmup: int, threads: int, clock: Clock) -> PhaseResult:
    result = PhaseResult()
    with ContainerReader(io.BytesIO(stream)) as reader:
        header = reader.header
        decoder = Decoder(codec, padded(header.height), padded(header.width), threads=threads)
        packets = iter(reader)
        for index in range(-(-header.frame_count // codec.frames_per_unit)):
            start = time.perf_counter()
            with clock.measure(CONTAINER):
                packet = next(packets)
            frames = [crop(f, header.height, header.width) for f in decoder.decode(packet)]
            elapsed = time.perf_counter() - start
            if index >= warmup:
                result.add_unit(len(frames), elapsed)
            elif index == warmup - 1:
                clock.reset()
    result.close(clock)
    return result


def run_fps(model: str, backend: str, width: int, height: int, frames: int, qp: int = 32,
            warmup_units: int = 1, threads: int = 1, video: Path | None = None) -> dict:
    """Encode then decode ``frames`` frames; returns the JSON-ready result."""
    if frames < 2 * (warmup_units + 1):
        raise ValueError(f"{frames} frames leave no timed pair after {warmup_units} warm-up unit(s)")
    codec = open_codec(model, backend)
    cfg = codec.network.cfg
    video = video or SOURCE_CLIP
    source = source_frames(width, height, frames, video)
    peak_reset = reset_peak_rss()
    clock = Clock()
    timed = dataclasses.replace(codec, backend=TimingBackend(codec.backend, clock))
    with instrument_entropy(clock):
        encode, stream, convert_s = _encode(timed, source, qp, warmup_units, threads, clock)
        clock.reset()
        decode = _decode(timed, stream, warmup_units, threads, clock)
    return {
        "model": model, "weights": "shipped" if default_weights(model) else "random", "backend": backend,
        "producer": codec.producer, "width": width, "height": height,
        "source": Path(video).name, "frames": frames, "frames_per_unit": codec.frames_per_unit,
        "warmup_units": warmup_units, "qp": qp, "entropy_threads": threads,
        "latent_elements_per_unit": latent_elements(cfg.ch_y, cfg.ch_z, padded(height), padded(width)),
        "stream_bytes": len(stream), "bpp": len(stream) * 8 / (frames * width * height),
        "encode": encode.to_dict(), "decode": decode.to_dict(),
        "source_convert_ms_per_frame": convert_s * 1e3,
        "memory": {"peak_rss_mib": peak_rss_mb(),
                   "scope": "this run (VmHWM reset)" if peak_reset else "process lifetime"},
    }
