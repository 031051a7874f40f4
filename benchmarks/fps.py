"""Encode / decode speed of the codec runtime, end to end and against its own networks.

Spec §5 (DCVC-RT's ``test_video.py``), adapted to this runtime:

* Encode timer: from the first padded frame handed to ``Encoder.push`` to the last
  packet written into an in-memory container (network stages, latent codec, rANS,
  container writing), with a final device synchronisation.  Reading the source and
  converting it to float 4:4:4 is timed separately and *excluded*; on CUDA the
  converted frames are uploaded before the timer starts (a deployment converts its
  8-bit input on the device), so "frames in" is device-resident.
* Decode timer: packet parsing from the in-memory container, z and y decoding,
  network stages and the crop, up to a device synchronisation; frames stay on the
  device (writing them out is not timed).
* Warm-up: ``warmup_units`` pairs are coded and decoded by separate sessions first
  (kernel compilation, CUDA-graph capture, caches), so the timed sessions measure
  steady state; the timed run still starts at a reset point, as a real stream does.
* fps = timed frames / timed seconds.  Real bitstreams are produced and the decoder
  decodes the encoder's packets.
* Ceiling: the same stages, buffers and order with no latent codec or entropy
  coding (``network_only``) — what the runtime would reach if everything between
  the networks were free.  ``efficiency`` = end-to-end fps / ceiling fps.

Each timed second on the coding thread is attributed to a part (``net:<stage>``,
latent ops, rANS, container); ``other`` is the unattributed rest.  The encoder's
rANS runs on a worker thread, overlapped with the networks: its time is reported
under ``overlapped``.  On CUDA, host time per stage is launch time; ``device_ms``
gives GPU time per stage from CUDA events.  Frames are the shipped Big Buck Bunny
clip, tiled to the requested size, or any video readable by ``open_video``.  A
preset's shipped weights are used where it has them, else random ones.
"""
from __future__ import annotations

import dataclasses
import io
import platform
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ..entropy.rans import DEFAULT_BITS_PER_LANE
from ..errors import EngineError
from ..runtime.container import ContainerReader, ContainerWriter, SequenceHeader
from ..runtime.model import CodecModel, load_codec
from ..shipped import DEMO_CLIP, default_weights
from ..models.ops import frame_qps
from ..models.stages import padded
from ..runtime.session import Decoder, Encoder, UnitBuffers
from ..video_io import Frame, crop, frame_to_array, open_video, pad
from .timing import Clock, TimingBackend, instrument_entropy, peak_rss_mb, reset_peak_rss

BACKENDS = ("torch", "onnxruntime", "tensorrt", "aoti")
CONTAINER = "container"


def tile_frame(frame: Frame, width: int, height: int) -> Frame:
    """Repeat a 4:2:0 frame's planes to cover ``width`` × ``height`` and crop."""

    def tile(plane: np.ndarray, w: int, h: int) -> np.ndarray:
        reps = (-(-h // plane.shape[0]), -(-w // plane.shape[1]))
        return np.ascontiguousarray(np.tile(plane, reps)[:h, :w])

    return Frame(tile(frame.y, width, height), tile(frame.u, width // 2, height // 2),
                 tile(frame.v, width // 2, height // 2), "420")


def source_frames(width: int, height: int, count: int, video: Path = DEMO_CLIP) -> list[Frame]:
    """``count`` 4:2:0 frames of ``width`` × ``height`` (cycling through ``video``)."""
    with open_video(video) as reader:
        clip = [tile_frame(f, width, height) for _, f in zip(range(count), reader)]
    return [clip[i % len(clip)] for i in range(count)]


def open_codec(model: str, backend: str, device: str = "cpu", precision: str = "fp32",
               compile: bool = False, engine_dir: Path | None = None) -> CodecModel:
    """The codec with its shipped weights, or random ones (speed does not depend on them)."""
    if backend not in BACKENDS:
        raise EngineError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return load_codec(model, backend=backend, precision=precision, allow_random=True, device=device,
                      compile=compile, engine_dir=engine_dir)


@dataclass
class PhaseResult:
    """Timed frames and seconds of one side (encode or decode), split by part."""

    frames: int = 0
    seconds: float = 0.0
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> {"ms", "calls"}
    overlapped: dict[str, dict[str, float]] = field(default_factory=dict)  # worker-thread parts
    device_ms: dict[str, float] = field(default_factory=dict)  # GPU time per stage (CUDA only)

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
        self.overlapped = {k: {"ms": p.seconds * 1e3, "calls": p.calls} for k, p in sorted(clock.overlapped.items())}
        self.device_ms = clock.device_ms()

    def to_dict(self) -> dict:
        return {"frames": self.frames, "total_ms": self.seconds * 1e3, "fps": self.fps,
                "ms_per_frame": self.seconds * 1e3 / self.frames if self.frames else 0.0, "parts": self.parts,
                "overlapped": self.overlapped, "device_ms": self.device_ms}


def latent_elements(ch_y: int, ch_z: int, height: int, width: int) -> int:
    """y and z elements of one coded unit at a padded size (both are entropy-coded)."""
    return ch_y * (height // 16) * (width // 16) + ch_z * -(-height // 64) * -(-width // 64)


def _header(codec: CodecModel, width: int, height: int) -> SequenceHeader:
    return SequenceHeader(width, height, Fraction(25), "420", codec.preset, codec.weights_fingerprint,
                          codec.tables_fingerprint, codec.producer)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _encode(codec: CodecModel, frames: list[torch.Tensor], size: tuple[int, int], qp: int, threads: int,
            entropy: str | None, clock: Clock | None,
            bits_per_lane: int = DEFAULT_BITS_PER_LANE) -> tuple[PhaseResult, bytes]:
    """Encode ``frames`` (padded, on the device) into memory; returns (timing, container bytes)."""
    width, height = size
    encoder = Encoder(codec, padded(height), padded(width), qp, threads=threads, entropy=entropy,
                      bits_per_lane=bits_per_lane)
    result, buffer = PhaseResult(), io.BytesIO()
    with ContainerWriter(buffer, _header(codec, width, height)) as writer:
        _synchronize(encoder.device)
        if clock is not None:
            clock.reset()
        start = time.perf_counter()
        for i, frame in enumerate(frames):
            units = encoder.push(frame) + (encoder.flush() if i == len(frames) - 1 else [])
            for unit in units:
                with clock.measure(CONTAINER) if clock else nullcontext():
                    writer.write_packet(unit.packet)
        _synchronize(encoder.device)
        result.add_unit(len(frames), time.perf_counter() - start)
    encoder.close()
    if clock is not None:
        result.close(clock)
    return result, buffer.getvalue()


def _decode(codec: CodecModel, stream: bytes, threads: int, entropy: str | None,
            clock: Clock | None) -> PhaseResult:
    result = PhaseResult()
    with ContainerReader(io.BytesIO(stream)) as reader:
        header = reader.header
        decoder = Decoder(codec, padded(header.height), padded(header.width), threads=threads, entropy=entropy)
        _synchronize(decoder.device)
        if clock is not None:
            clock.reset()
        packets, units = iter(reader), -(-header.frame_count // codec.frames_per_unit)
        start, frames = time.perf_counter(), 0
        for _ in range(units):
            with clock.measure(CONTAINER) if clock else nullcontext():
                packet = next(packets)
            frames += sum(len([crop(f, header.height, header.width) for f in u.frames]) for u in decoder.decode(packet))
        frames += sum(len([crop(f, header.height, header.width) for f in u.frames]) for u in decoder.flush())
        _synchronize(decoder.device)
        result.add_unit(frames, time.perf_counter() - start)
    decoder.close()
    if clock is not None:
        result.close(clock)
    return result


def network_only(codec: CodecModel, height: int, width: int, units: int) -> dict[str, float]:
    """fps of the encoder's and decoder's stage sequences alone (the runtime's ceiling).

    The stages run in the sessions' order on the sessions' buffers, but y_hat is y
    itself (no rounding, no indexes, no rANS): whatever separates the end-to-end
    fps from this figure is the work between the networks."""
    buf = UnitBuffers(codec, height, width)
    qp = buf.qp(frame_qps(32, 0, codec.frames_per_unit))
    run = lambda stage, feed: codec.backend.runner(stage).infer(feed, buf.out(stage))  # noqa: E731
    buf.frames.uniform_()
    buf.current = buf.blank_ref

    def unit(encode: bool) -> None:
        ctx = run("context", {"ref": buf.current, "qp": qp})
        enc = run("encoder", {"frames": buf.frames, "ctx": ctx["ctx"], "qp": qp}) if encode else buf.outputs["encoder"]
        prior = run("prior", {"z_hat": enc["z_hat"], "temporal": ctx["temporal"]})
        run("spatial_prior", {"y_hat0": enc["y"], "params": prior["params"]})
        out = run("decoder", {"y_hat": enc["y"], "ctx": ctx["ctx"], "qp": qp})
        buf.advance()
        if not encode:
            run("recon", {"feature": out["feature"], "qp": qp})

    fps = {}
    for side, encode in (("encode", True), ("decode", False)):
        unit(encode)  # warm-up (capture) outside the timer
        _synchronize(buf.device)
        start = time.perf_counter()
        for _ in range(units):
            unit(encode)
        _synchronize(buf.device)
        fps[side] = units * codec.frames_per_unit / (time.perf_counter() - start)
    return fps


def run_fps(model: str, backend: str, width: int, height: int, frames: int, qp: int = 32,
            warmup_units: int = 1, threads: int = 1, video: Path | None = None, device: str = "cpu",
            precision: str = "fp32", compile: bool = False, entropy: str | None = None,
            engine_dir: Path | None = None, bits_per_lane: int = DEFAULT_BITS_PER_LANE) -> dict:
    """Encode then decode ``frames`` frames; returns the JSON-ready result."""
    if frames < 2:
        raise ValueError(f"{frames} frames make no timed pair")
    codec = open_codec(model, backend, device, precision, compile, engine_dir)
    cfg = codec.network.cfg
    video = video or DEMO_CLIP
    start = time.perf_counter()
    source = [torch.from_numpy(pad(frame_to_array(f))).to(device) for f in source_frames(width, height, frames, video)]
    convert_s = (time.perf_counter() - start) / frames
    size = (width, height)
    peak_reset = reset_peak_rss()
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    clock = Clock()
    timed = dataclasses.replace(codec, backend=TimingBackend(codec.backend, clock))
    with instrument_entropy(clock):
        if warmup_units:
            _decode(timed, _encode(timed, source[: 2 * warmup_units], size, qp, threads, entropy, None,
                                   bits_per_lane)[1], threads, entropy, None)
        encode, stream = _encode(timed, source, size, qp, threads, entropy, clock, bits_per_lane)
        decode = _decode(timed, stream, threads, entropy, clock)
    ceiling = network_only(codec, padded(height), padded(width), max(1, frames // cfg.frames))
    coder = entropy or "cpu"  # make_coder's default, without building a coder (and its device tables) to ask
    return {
        "model": model, "weights": "shipped" if default_weights(model) else "random", "backend": backend,
        "producer": codec.producer, "device": device_name(device), "entropy_coder": coder,
        "width": width, "height": height,
        "source": Path(video).name, "frames": frames, "frames_per_unit": codec.frames_per_unit,
        "warmup_units": warmup_units, "qp": qp, "entropy_threads": threads, "bits_per_lane": bits_per_lane,
        "latent_elements_per_unit": latent_elements(cfg.ch_y, cfg.ch_z, padded(height), padded(width)),
        "stream_bytes": len(stream), "bpp": len(stream) * 8 / (frames * width * height),
        "encode": encode.to_dict(), "decode": decode.to_dict(),
        "network_only_fps": ceiling,
        "efficiency": {side: (encode if side == "encode" else decode).fps / ceiling[side] for side in ceiling},
        "source_convert_ms_per_frame": convert_s * 1e3,
        "memory": {"peak_rss_mib": peak_rss_mb(),
                   "scope": "this run (VmHWM reset)" if peak_reset else "process lifetime",
                   **({"peak_device_mib": torch.cuda.max_memory_allocated(device) / 2**20,
                       "device_scope": "this run, torch allocations (peak stats reset)"} if cuda else {})},
    }


def device_name(device: str) -> str:
    """The GPU's name for CUDA runs (results must name their device), else the CPU's."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()
