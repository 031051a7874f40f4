"""Codec sessions: pair scheduling, reference-buffer reuse, real bitstreams, on device.

The encoder buffers one frame (the 1-frame delay of dual-frame coding) and codes
frames in units of two.  An odd final frame is coded as a 1-frame unit: the model
still codes a pair, with the last frame duplicated into both slots and the slot-0 qp
used for both; the decoder outputs only the first frame, so it returns exactly the
input's frame count.

A unit is a *reset point* when the reference is replaced by the blank frame through
the first-frame adaptor: the first unit, a detected scene cut, each unit holding a
multiple of ``reset_interval`` if asked, or frames the caller names.  Nothing before a
reset point is needed to decode it, so decoding can start at any reset point.

Everything stays on the backend's device: buffers are allocated once per resolution
(two reference buffers used alternately, the cached blank-frame reference, every
stage output), the latent codec runs there (``entropy.latent``), and only flat int32
symbols and indexes reach the entropy coder.  The encoder never waits for rANS
bytes before queueing the next unit's networks: a unit's entropy coding runs on the
:class:`EntropyWorker` while the device computes the next unit, so a unit comes back
from the ``push`` that completes the next unit, two pushes after its last frame
(``flush`` returns the rest).  The scene-cut decision is
made on the device too (the reference is selected with ``torch.where``), so the
encoder never synchronises with the device per unit.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from numbers import Integral
from typing import ContextManager, Sequence

import numpy as np
import torch

from ..errors import CorruptStreamError, InputFormatError, TruncatedStreamError
from ..models.ops import QP_LEVELS, QP_ROWS, frame_qps
from ..models.stages import resolve_shape
from .container import Packet, pack_substreams, unpack_substreams
from ..entropy.coder import EntropyCoder, SegmentDecoder
from ..entropy.latent import SKIP_THRESHOLD, checkerboard_masks, dequantize_step, quantize_step, step_indexes, z_indexes
from ..entropy.rans import DEFAULT_BITS_PER_LANE
from .backends.torch_backend import torch_threads
from .model import CodecModel
from .overlap import DeferredCheck, EntropyWorker

SCENE_CUT_THRESHOLD = 0.1  # mean |ΔY| in [0, 1] units between consecutive frames
Frame = torch.Tensor | np.ndarray


def _slot_qps(qps: Sequence[int], slots: int) -> list[int]:
    """The qp of each model slot: a 1-frame unit codes its frame in every slot, with its qp."""
    return list(qps) if len(qps) == slots else [qps[0]] * slots


class UnitBuffers:
    """Every tensor one coding unit writes, allocated once per padded size on the
    backend's device: runners write into them, so addresses never change.  The
    decoder stage's ``ref`` goes to ``refs`` (alternately), and the adaptor runs once,
    into ``blank_ref``: neither has a buffer in ``outputs``."""

    def __init__(self, codec: CodecModel, height: int, width: int):
        backend = codec.backend
        self.device, dtype = backend.device, backend.dtype
        self.height, self.width = height, width
        stages = codec.network.stages()
        empty = lambda spec: torch.empty(resolve_shape(spec, height, width), dtype=dtype, device=self.device)  # noqa: E731
        self.outputs = {name: {s.name: empty(s) for s in stage.outputs if (name, s.name) != ("decoder", "ref")}
                        for name, stage in stages.items() if name != "adaptor"}
        self.z_shape = resolve_shape(stages["prior"].inputs[0], height, width)
        self.refs = [empty(stages["decoder"].outputs[1]) for _ in range(2)]
        self.y_hat0 = empty(stages["spatial_prior"].inputs[0])
        self.y_hat = empty(stages["decoder"].inputs[0])
        self.frames = empty(stages["encoder"].inputs[0])
        blank = torch.zeros((1, 3, height, width), dtype=dtype, device=self.device)
        self.blank_ref = codec.backend.runner("adaptor").infer({"frame": blank})["ref"].clone()
        self.current: torch.Tensor | None = None  # the reference the next unit reads
        self._next = 0
        self._qps: dict[tuple[int, ...], torch.Tensor] = {}

    def qp(self, qps: list[int]) -> torch.Tensor:
        """The int32 qp tensor of a unit, cached on the device (no host copy per unit)."""
        key = tuple(qps)
        if key not in self._qps:
            self._qps[key] = torch.tensor(key, dtype=torch.int32, device=self.device)
        return self._qps[key]

    def out(self, stage: str) -> dict[str, torch.Tensor]:
        if stage != "decoder":
            return self.outputs[stage]
        return {**self.outputs["decoder"], "ref": self.refs[self._next]}

    def advance(self) -> None:
        """The decoder stage wrote refs[_next]: it becomes the current reference."""
        self.current = self.refs[self._next]
        self._next ^= 1


@dataclass
class CodedUnit:
    packet: Packet
    recon: list[torch.Tensor] = field(default_factory=list)  # (3, H, W) on the device, padded size


class _Session:
    def __init__(self, codec: CodecModel, height: int, width: int, threads: int, skip_threshold: float,
                 entropy: str | None, bits_per_lane: int = DEFAULT_BITS_PER_LANE):
        if height % 16 or width % 16 or height <= 0 or width <= 0:
            raise InputFormatError(f"sessions code padded frames (multiples of 16); got {width}x{height}")
        codec.backend.check_size(height, width)
        self.codec = codec
        self.device = codec.backend.device
        self.skip_threshold = skip_threshold
        # The coders first: a bad coder setting is refused before any buffer or graph exists.
        self.worker = EntropyWorker(codec.entropy_coder(self.device, entropy, "y", threads, bits_per_lane),
                                    codec.entropy_coder(self.device, entropy, "z", threads, bits_per_lane))
        self.buffers = UnitBuffers(codec, height, width)
        self.masks = checkerboard_masks(codec.network.cfg.ch_y, height // 16, width // 16, self.device)
        self._z_indexes: dict[tuple[int, bool], torch.Tensor] = {}

    def z_indexes(self, qp_row: int, pinned: bool = False) -> torch.Tensor:
        """z's CDF indexes, which depend on the qp alone: cached per qp row, on the device,
        or ``pinned`` on the host (the C++ coder then decodes into pinned memory)."""
        key = (qp_row, pinned)
        if key not in self._z_indexes:
            indexes = z_indexes(self.buffers.z_shape, qp_row, "cpu" if pinned else self.device)
            self._z_indexes[key] = indexes.pin_memory() if pinned else indexes
        return self._z_indexes[key]

    def _run(self, stage: str, feed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.codec.backend.runner(stage).infer(feed, self.buffers.out(stage))

    def _synthesize(self, y_hat: torch.Tensor, ctx: torch.Tensor, qp: torch.Tensor) -> None:
        """The decoder stage: writes the feature buffer and the next reference."""
        self.buffers.y_hat.copy_(y_hat)
        self._run("decoder", {"y_hat": self.buffers.y_hat, "ctx": ctx, "qp": qp})
        self.buffers.advance()

    def _reconstruct(self, qp: torch.Tensor, frames: int) -> list[torch.Tensor]:
        """The recon stage on the feature buffer.  Clones: the recon buffers are reused
        by the next unit, the caller keeps these."""
        feature = self.buffers.outputs["decoder"]["feature"]
        recon = self._run("recon", {"feature": feature, "qp": qp})
        return [recon[f"frame{s}"][0].clone() for s in range(frames)]

    def _unit(self) -> ContextManager[None]:
        """Context of one unit's work.  Beside ONNX Runtime on the CPU, torch runs only
        the latent codec's small tensors, and its OpenMP pool would fight ONNX Runtime's
        threads for the same cores (each tiny op then costs milliseconds on a busy
        machine): torch runs single-threaded for the unit and gets its thread count back.
        Never for torch or AOTInductor stages, whose CPU results depend on the count."""
        beside_onnxruntime = self.device.type == "cpu" and self.codec.backend.name == "onnxruntime"
        return torch_threads(1 if beside_onnxruntime else None)

    def close(self) -> None:
        self.worker.close()


@dataclass
class _Pending:
    """A unit whose networks are queued and whose entropy coding is in flight."""

    first: int
    qps: tuple[int, ...]
    streams: Future
    recon: list[torch.Tensor]


def _check_settings(qp: int, reset_interval: int | None, scene_cut_threshold: float | None,
                    drift_guard_db: float | None) -> None:
    """Refuse a bad encoder setting before any buffer is allocated or graph captured: it
    would fail late, or quietly make every unit a reset point (a negative threshold)."""
    if not (isinstance(qp, Integral) and 0 <= qp < QP_LEVELS):
        raise InputFormatError(f"qp must be in [0, {QP_LEVELS - 1}], got {qp!r}")
    if reset_interval is not None and not (isinstance(reset_interval, Integral) and reset_interval >= 0):
        raise InputFormatError(f"reset_interval must be a frame count >= 0 (0 or None: never), got {reset_interval!r}")
    if scene_cut_threshold is not None and not 0 < scene_cut_threshold <= 1:
        raise InputFormatError(f"scene_cut_threshold must be a mean |ΔY| in (0, 1] (None: off), "
                               f"got {scene_cut_threshold!r}")
    if drift_guard_db is not None and not drift_guard_db >= 0:
        raise InputFormatError(f"drift_guard_db must be a non-negative number of dB, got {drift_guard_db!r}")


class Encoder(_Session):
    """``push`` frames (float (3, H, W) in [0, 1], padded, NumPy or torch on any
    device); get coded units back, each from the ``push`` that completes the next
    unit (two pushes after its last frame), the rest from ``flush``.  A flush that
    codes an odd last frame ends the stream.
    ``bits_per_lane`` sets the rANS layout density (``EntropyCoder``): lower it to let
    a decoder spread each step over more threads, at about 28 bits per extra lane."""

    def __init__(self, codec: CodecModel, height: int, width: int, qp: int, *, reconstruct: bool = False,
                 reset_interval: int = 0, reset_frames: set[int] | None = None,
                 scene_cut_threshold: float | None = SCENE_CUT_THRESHOLD, threads: int = 1,
                 skip_threshold: float = SKIP_THRESHOLD, entropy: str | None = None,
                 drift_guard_db: float | None = None, bits_per_lane: int = DEFAULT_BITS_PER_LANE):
        _check_settings(qp, reset_interval, scene_cut_threshold, drift_guard_db)
        super().__init__(codec, height, width, threads, skip_threshold, entropy, bits_per_lane)
        self.drift_guard_db = drift_guard_db
        self._reset_psnr: torch.Tensor | None = None  # PSNR of the last reset unit (device scalar)
        self._drifted: torch.Tensor | None = None  # device bool: the next unit must be a reset point
        self.qp, self.reconstruct = qp, reconstruct
        self.reset_interval, self.reset_frames = reset_interval, set(reset_frames or ())
        self.scene_cut_threshold = scene_cut_threshold
        self.pending: list[torch.Tensor] = []
        self.frame_index = 0
        self.previous_luma: torch.Tensor | None = None
        self.in_flight: list[_Pending] = []
        self._upload_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    def push(self, frame: Frame) -> list[CodedUnit]:
        if self.frame_index % self.codec.frames_per_unit:
            raise InputFormatError("cannot push after a flush that coded an odd last frame: that 1-frame unit "
                                   "ended the stream (start a new Encoder)")
        self.pending.append(self._owned(frame))
        if len(self.pending) < self.codec.frames_per_unit:
            return []
        with self._unit():
            self._code_unit()
        return self._collect(keep=1)

    def flush(self) -> list[CodedUnit]:
        if self.pending:
            with self._unit():
                self._code_unit()
        return self._collect(keep=0)

    def _owned(self, frame: Frame) -> torch.Tensor:
        """A float32 copy of ``frame`` on the device.  A copy, always: the session keeps
        frames after ``push`` returns (a pair's first frame, the scene-cut luma), and a
        caller may refill one buffer for every frame.  To a GPU, a copy from pageable
        host memory is asynchronous yet safe (the data is staged before it returns);
        pinned memory is read by the device later, so that copy waits (``_upload``).
        (Pinning is asked only then: the query would create a CUDA context for a CPU
        session.)"""
        if tuple(frame.shape) != (3, self.buffers.height, self.buffers.width):
            raise InputFormatError(f"frame shape {tuple(frame.shape)} does not match the session's "
                                   f"(3, {self.buffers.height}, {self.buffers.width})")
        tensor = torch.as_tensor(frame)
        if not tensor.is_floating_point():
            raise InputFormatError(f"frames must be floats in [0, 1], got {tensor.dtype} (scale integer samples "
                                   "to [0, 1] first)")
        if self.device.type == "cuda" and tensor.is_pinned():
            return self._upload(tensor)
        return tensor.to(self.device, torch.float32, non_blocking=self.device.type == "cuda", copy=True)

    def _upload(self, pinned: torch.Tensor) -> torch.Tensor:
        """Copy a pinned frame on the upload stream and wait for that copy alone: on the
        main stream it would queue behind the networks of the unit before, and the
        host would wait for those too before ``push`` could return."""
        with torch.cuda.stream(self._upload_stream):
            frame = pinned.to(self.device, torch.float32, non_blocking=True, copy=True)
        copied = torch.cuda.Event()
        copied.record(self._upload_stream)
        copied.synchronize()  # the caller may refill its buffer once push returns
        frame.record_stream(torch.cuda.current_stream(self.device))  # allocated on the upload stream
        return frame

    def _collect(self, keep: int) -> list[CodedUnit]:
        """Units whose bytes are (or become) ready, leaving ``keep`` in flight."""
        done = []
        while len(self.in_flight) > keep:
            unit = self.in_flight.pop(0)
            reset, *streams = unit.streams.result()
            packet = Packet(first_frame=unit.first, qps=unit.qps, reset=reset, payload=pack_substreams(streams))
            done.append(CodedUnit(packet, unit.recon))
        return done

    def _host_reset(self, first: int, count: int) -> bool:
        """Reset reasons the host knows without looking at pixels.  ``reset_interval``
        resets each unit that holds a multiple of it (not only units starting on one:
        units start on even frames, so an odd interval would reset half as often)."""
        if first == 0 or any(first + s in self.reset_frames for s in range(count)):
            return True
        n = self.reset_interval
        return bool(n) and (first + count - 1) // n != (first - 1) // n

    def _scene_cut(self, frames: list[torch.Tensor]) -> torch.Tensor | None:
        """Device bool: does any consecutive pair of frames differ by a scene cut, or
        did the drift guard ask for a reset after the previous unit?"""
        cut = self._drifted
        if self.scene_cut_threshold is None or self.previous_luma is None:
            return cut
        lumas = [self.previous_luma] + [f[0] for f in frames]
        diffs = torch.stack([(a - b).abs().mean() for a, b in zip(lumas, lumas[1:])])
        scene = (diffs > self.scene_cut_threshold).any()
        return scene if cut is None else scene | cut

    def _guard(self, frames: list[torch.Tensor], recon: list[torch.Tensor], reset: torch.Tensor) -> None:
        """The encoder-side drift guard (an encoder decision; the format is unchanged).

        Inter coding that has drifted codes worse than a reset point would: when a
        unit's PSNR falls more than ``drift_guard_db`` under that of the last reset
        unit, the next unit becomes a reset point.  Computed on the device, so the
        guard costs the recon stage but never a synchronisation."""
        mse = torch.stack([(r.float() - f).pow(2).mean() for r, f in zip(recon, frames)]).mean()
        psnr = -10 * torch.log10(mse.clamp_min(1e-10))
        self._reset_psnr = psnr if self._reset_psnr is None else torch.where(reset, psnr, self._reset_psnr)
        self._drifted = psnr < self._reset_psnr - self.drift_guard_db

    def _code_unit(self) -> None:
        frames, self.pending = self.pending, []
        first, count = self.frame_index, len(frames)
        slots = self.codec.frames_per_unit
        qps = _slot_qps(frame_qps(self.qp, first, count), slots)
        qp = self.buffers.qp(qps)
        buf = self.buffers
        for s in range(slots):
            buf.frames[0, 3 * s : 3 * s + 3].copy_(frames[min(s, count - 1)])
        host_reset = self._host_reset(first, count)
        cut = None if host_reset else self._scene_cut(frames)
        self.previous_luma = frames[-1][0]
        if host_reset or buf.current is None:
            ref, reset = buf.blank_ref, torch.ones((), dtype=torch.bool, device=self.device)
        else:
            ref = buf.current if cut is None else torch.where(cut, buf.blank_ref, buf.current)
            reset = torch.zeros((), dtype=torch.bool, device=self.device) if cut is None else cut
        ctx_out = self._run("context", {"ref": ref, "qp": qp})
        ctx, temporal = ctx_out["ctx"], ctx_out["temporal"]
        enc = self._run("encoder", {"frames": buf.frames, "ctx": ctx, "qp": qp})
        z_hat = enc["z_hat"]
        z_symbols = z_hat.reshape(-1).to(torch.int32)
        prior = self._run("prior", {"z_hat": z_hat, "temporal": temporal})
        ys = enc["y"] / prior["q_dec"]
        mask0, mask1 = self.masks
        idx0 = step_indexes(prior["scales"], mask0, self.skip_threshold)
        sym0, y_hat0 = quantize_step(ys, prior["means"], mask0, idx0)
        buf.y_hat0.copy_(y_hat0)
        step1 = self._run("spatial_prior", {"y_hat0": buf.y_hat0, "params": prior["params"]})
        idx1 = step_indexes(step1["scales"], mask1, self.skip_threshold)
        sym1, y_hat1 = quantize_step(ys, step1["means"], mask1, idx1)
        # both steps in one stream (rans_format.hpp §8): one header and set of lane states per unit
        y_step = (torch.cat([sym0, sym1]), torch.cat([idx0, idx1]))
        streams = self.worker.encode(reset, [(z_symbols, self.z_indexes(qps[0])), y_step])
        self._synthesize((y_hat0 + y_hat1) * prior["q_dec"], ctx, qp)
        guard = self.drift_guard_db is not None
        recon = self._reconstruct(qp, count) if self.reconstruct or guard else []
        if guard:
            self._guard(frames, recon, reset)
        self.frame_index += count
        self.in_flight.append(_Pending(first, tuple(qps[:count]), streams, recon if self.reconstruct else []))


@dataclass
class DecodedUnit:
    first_frame: int
    frames: list[torch.Tensor]  # (3, H, W) on the device, padded size


class Decoder(_Session):
    """``decode(packet)`` → decoded units, each one call after its packet (``flush``
    returns the last): the recon stage of a unit is queued only after the next unit's
    first entropy step has started, so the device reconstructs one unit while the host
    decodes the next one's symbols.

    On CUDA the recon runs on a side stream.  On the main stream it would run before the
    next unit's spatial prior, so the device would idle while the host decodes step 1
    (measured on an H100: 185 fps against 262 network-only).  On its own stream it
    overlaps both host steps and the spatial prior; the main stream waits for it only
    before the decoder stage, which overwrites the feature buffer the recon reads."""

    def __init__(self, codec: CodecModel, height: int, width: int, threads: int = 1,
                 skip_threshold: float = SKIP_THRESHOLD, entropy: str | None = None):
        super().__init__(codec, height, width, threads, skip_threshold, entropy)
        self.z_hat = torch.empty(self.buffers.z_shape, dtype=codec.backend.dtype, device=self.device)
        # (first frame, frames, qp, deferred check) of the unit awaiting recon
        self._held: tuple[int, int, torch.Tensor, DeferredCheck | None] | None = None
        self._ready: list[DecodedUnit] = []
        self._host_staging = self.device.type == "cuda" and self.worker.y_coder.name == "cpu"
        self._recon_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self._recon_done: torch.cuda.Event | None = None
        # A device coder's consistency flags are read one unit later (DeferredCheck),
        # not after every decode: each read would wait for the device.
        self._device_flags: list[torch.Tensor] | None = None
        if self.worker.y_coder.name == "triton":
            self._device_flags = []
            self.worker.y_coder.check = self.worker.z_coder.check = False

    def decode(self, packet: Packet) -> list[DecodedUnit]:
        with self._unit():
            try:
                return self._decode(packet)
            except (CorruptStreamError, TruncatedStreamError) as e:
                if str(e).startswith("packet "):  # already names its packet (a deferred check: the one before)
                    raise
                raise type(e)(f"packet {packet.index}: {e}") from None
            finally:
                # A unit that raised after queuing the held recon must still order it before
                # later work on the main stream: the recon graph and its buffers are shared by
                # every session of the codec.  (Stream-ordered: the host does not wait.)
                self._join_recon()

    def _qps(self, packet: Packet) -> list[int]:
        """The unit's slot qps, refused before any stage runs if one would index past
        the networks' qp tables: callers of ``decode`` need not read a container."""
        slots = self.codec.frames_per_unit
        if not 1 <= packet.num_frames <= slots:
            raise CorruptStreamError(f"packet {packet.index} codes {packet.num_frames} frames; "
                                     f"a unit codes 1 to {slots}")
        beyond = [q for q in packet.qps if not 0 <= q < QP_ROWS]
        if beyond:
            raise CorruptStreamError(f"packet {packet.index}: qp {beyond[0]} is beyond the model's {QP_ROWS} qp rows")
        return _slot_qps(packet.qps, slots)

    def _decode(self, packet: Packet) -> list[DecodedUnit]:
        qps = self._qps(packet)
        if self._device_flags is not None:  # a unit that raised midway must not leave its flags to this one
            self._device_flags = []
        qp = self.buffers.qp(qps)
        substreams = unpack_substreams(packet.payload)
        if len(substreams) != 2:
            raise CorruptStreamError(f"packet {packet.index} has {len(substreams)} sub-streams, expected 2 (z, y)")
        z_stream, y_stream = substreams
        buf = self.buffers
        if packet.reset:
            buf.current = buf.blank_ref
        elif buf.current is None:
            raise InputFormatError("this unit is not a reset point and no reference was decoded before it "
                                   "(decoding must start at a reset point)")
        # The context network is queued first: z is decoded while it runs.
        ctx_out = self._run("context", {"ref": buf.current, "qp": qp})
        ctx, temporal = ctx_out["ctx"], ctx_out["temporal"]
        self._decode_z(z_stream, qps[0])
        prior = self._run("prior", {"z_hat": self.z_hat, "temporal": temporal})
        mask0, mask1 = self.masks
        staged = self._stage(step_indexes(prior["scales"], mask0, self.skip_threshold))
        self._release()  # the previous unit's recon runs on the device while the host decodes step 0
        y_segments = self.worker.y_coder.decoder(y_stream)
        y_hat0 = dequantize_step(self._symbols(y_segments, staged), prior["means"], mask0)
        buf.y_hat0.copy_(y_hat0)
        step1 = self._run("spatial_prior", {"y_hat0": buf.y_hat0, "params": prior["params"]})
        staged = self._stage(step_indexes(step1["scales"], mask1, self.skip_threshold))
        y_hat1 = dequantize_step(self._symbols(y_segments, staged), step1["means"], mask1)
        self._finish(self.worker.y_coder, y_segments)
        self._join_recon()
        self._synthesize((y_hat0 + y_hat1) * prior["q_dec"], ctx, qp)
        check = None if self._device_flags is None else DeferredCheck(self._device_flags, packet.index)
        self._held = (packet.first_frame, packet.num_frames, qp, check)
        done, self._ready = self._ready, []
        return done

    def flush(self) -> list[DecodedUnit]:
        with self._unit():
            self._release()
            self._join_recon()
        done, self._ready = self._ready, []
        return done

    def _release(self) -> None:
        """Queue the held unit's recon stage; its frames are returned by this call, once
        its deferred check (if any) has passed."""
        if self._held is None:
            return
        first, count, qp, check = self._held
        self._held = None
        if check is not None:
            check.verify()
        side = self._recon_stream
        if side is None:
            self._ready.append(DecodedUnit(first, self._reconstruct(qp, count)))
            return
        main = torch.cuda.current_stream(self.device)
        side.wait_stream(main)  # the decoder stage that wrote the feature buffer
        with torch.cuda.stream(side):
            frames = self._reconstruct(qp, count)
            self._recon_done = torch.cuda.Event()
            self._recon_done.record(side)
        for frame in frames:  # allocated on the side stream, read on the main one
            frame.record_stream(main)
        self._ready.append(DecodedUnit(first, frames))

    def _join_recon(self) -> None:
        """Main stream waits for the queued recon: before the decoder stage overwrites
        its input, and before the caller reads its frames."""
        if self._recon_done is not None:
            torch.cuda.current_stream(self.device).wait_event(self._recon_done)
            self._recon_done = None

    def _decode_z(self, stream: bytes, qp_row: int) -> None:
        """z into its buffer.  z's indexes depend on the qp alone, so the C++ coder on CUDA
        reads a host copy: a device copy would make the host wait for the context network
        queued before it, leaving the device idle while z is decoded."""
        if not self._host_staging:
            self.z_hat.view(-1).copy_(self._device_decode(self.worker.z_coder, stream, self.z_indexes(qp_row)))
            return
        symbols = self.worker.z_coder.decode(stream, self.z_indexes(qp_row, pinned=True))
        self.z_hat.view(-1).copy_(symbols.to(self.device, non_blocking=True))

    def _stage(self, indexes: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event | None]:
        """For the C++ coder on CUDA, start the indexes' copy to pinned host memory now,
        so the host later waits for this copy alone, not for device work queued after it."""
        if not self._host_staging:
            return indexes, None
        host = torch.empty(indexes.shape, dtype=torch.int32, pin_memory=True)
        host.copy_(indexes, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record(torch.cuda.current_stream(self.device))  # the copy's stream, not the current GPU's
        return host, copied

    def _symbols(self, segments: SegmentDecoder, staged: tuple[torch.Tensor, torch.cuda.Event | None]) -> torch.Tensor:
        """The next y step's symbols on the session's device."""
        indexes, copied = staged
        if copied is not None:
            copied.synchronize()
        return segments.next(indexes).to(self.device, non_blocking=True)

    def _device_decode(self, coder: EntropyCoder, stream: bytes, indexes: torch.Tensor) -> torch.Tensor:
        """A whole stream's symbols on the session's device."""
        segments = coder.decoder(stream)
        symbols = segments.next(indexes).to(self.device, non_blocking=True)
        self._finish(coder, segments)
        return symbols

    def _finish(self, coder: EntropyCoder, segments: SegmentDecoder) -> None:
        """The stream's final checks; a device coder's flags join the unit's deferred check."""
        segments.finish()
        if self._device_flags is not None:
            self._device_flags.append(coder.last_error)
