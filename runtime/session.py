"""Codec sessions: pair scheduling, reference-buffer reuse, real bitstreams.

The encoder buffers one frame (the 1-frame delay of dual-frame coding) and codes
frames in units of two.  An odd final frame is coded as a 1-frame unit: the model
still codes a pair, with the last frame duplicated into both slots and the slot-0 qp
used for both; the decoder outputs only the first frame, so it returns exactly the
input's frame count.

A unit is a *reset point* when the reference is replaced by the blank frame through
the first-frame adaptor: the first unit, a detected scene cut, every
``reset_interval`` frames if asked, or frames the caller names.  Nothing before a
reset point is needed to decode it, so decoding can start at any reset point.

Buffers are allocated once per resolution: two reference buffers used alternately
(ping-pong: the unit reads one and writes the other), the cached blank-frame
reference, and every stage output.  Runners write into them, so steady-state coding
allocates no feature or reference arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CorruptStreamError, InputFormatError
from ..models.ops import frame_qps
from ..models.stages import resolve_shape
from .container import Packet, pack_substreams, unpack_substreams
from .latent import SKIP_THRESHOLD, checkerboard_masks, decode_step, decode_z, encode_step, encode_z
from .model import CodecModel

SCENE_CUT_THRESHOLD = 0.1  # mean |ΔY| in [0, 1] units between consecutive frames


class UnitBuffers:
    """Every array one coding unit writes, allocated once per padded size."""

    def __init__(self, codec: CodecModel, height: int, width: int):
        self.height, self.width = height, width
        dtype = np.float16 if codec.backend.precision == "fp16" else np.float32
        stages = codec.network.stages()
        self.outputs = {
            name: {s.name: np.empty(resolve_shape(s, height, width), dtype=dtype) for s in stage.outputs}
            for name, stage in stages.items()
        }
        ref_spec = stages["decoder"].outputs[1]
        self.refs = [np.empty(resolve_shape(ref_spec, height, width), dtype=dtype) for _ in range(2)]
        blank = np.zeros((1, 3, height, width), dtype=dtype)
        self.blank_ref = codec.backend.runner("adaptor").infer({"frame": blank})["ref"].copy()
        self.current: np.ndarray | None = None  # the reference the next unit reads
        self._next = 0
        self.frames = np.empty((1, 3 * codec.frames_per_unit, height, width), dtype=dtype)

    def reset(self) -> None:
        self.current = self.blank_ref

    def out(self, stage: str) -> dict[str, np.ndarray]:
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
    recon: list[np.ndarray] = field(default_factory=list)  # (3, H, W) float, padded size


class _Session:
    def __init__(self, codec: CodecModel, height: int, width: int, threads: int, skip_threshold: float):
        if height % 16 or width % 16 or height <= 0 or width <= 0:
            raise InputFormatError(f"sessions code padded frames (multiples of 16); got {width}x{height}")
        self.codec = codec
        self.buffers = UnitBuffers(codec, height, width)
        self.threads = threads
        self.skip_threshold = skip_threshold
        self.masks = checkerboard_masks(codec.network.cfg.ch_y, height // 16, width // 16)

    def _run(self, stage: str, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.codec.backend.runner(stage).infer(feed, self.buffers.out(stage))

    def _context(self, qp: np.ndarray, reset: bool) -> dict[str, np.ndarray]:
        if reset:
            self.buffers.reset()
        elif self.buffers.current is None:
            raise InputFormatError("this unit is not a reset point and no reference was decoded before it "
                                   "(decoding must start at a reset point)")
        return self._run("context", {"ref": self.buffers.current, "qp": qp})

    def _finish(self, y_hat: np.ndarray, ctx: np.ndarray, qp: np.ndarray, frames: int,
                reconstruct: bool) -> list[np.ndarray]:
        out = self._run("decoder", {"y_hat": y_hat, "ctx": ctx, "qp": qp})
        self.buffers.advance()
        if not reconstruct:
            return []
        recon = self._run("recon", {"feature": out["feature"], "qp": qp})
        # Copies: the recon buffers are reused by the next unit, the caller keeps these.
        return [recon[f"frame{s}"][0].copy() for s in range(frames)]


class Encoder(_Session):
    """``push`` frames (float (3, H, W) in [0, 1], padded); get coded units back."""

    def __init__(self, codec: CodecModel, height: int, width: int, qp: int, *, reconstruct: bool = False,
                 reset_interval: int = 0, reset_frames: set[int] | None = None,
                 scene_cut_threshold: float | None = SCENE_CUT_THRESHOLD, threads: int = 1,
                 skip_threshold: float = SKIP_THRESHOLD):
        super().__init__(codec, height, width, threads, skip_threshold)
        frame_qps(qp, 0, 1)  # validates the range
        self.qp, self.reconstruct = qp, reconstruct
        self.reset_interval, self.reset_frames = reset_interval, set(reset_frames or ())
        self.scene_cut_threshold = scene_cut_threshold
        self.pending: list[np.ndarray] = []
        self.frame_index = 0
        self.previous_luma: np.ndarray | None = None

    def push(self, frame: np.ndarray) -> list[CodedUnit]:
        if frame.shape != (3, self.buffers.height, self.buffers.width):
            raise InputFormatError(f"frame shape {frame.shape} does not match the session's "
                                   f"(3, {self.buffers.height}, {self.buffers.width})")
        self.pending.append(frame)
        if len(self.pending) < self.codec.frames_per_unit:
            return []
        return [self._code_unit()]

    def flush(self) -> list[CodedUnit]:
        return [self._code_unit()] if self.pending else []

    def _is_reset(self, first: int, frames: list[np.ndarray]) -> bool:
        if first == 0 or first in self.reset_frames or any(first + s in self.reset_frames for s in range(len(frames))):
            return True
        if self.reset_interval and first // self.reset_interval != (first - 1) // self.reset_interval:
            return True
        if self.scene_cut_threshold is None:
            return False
        lumas = [self.previous_luma] + [f[0] for f in frames]
        return any(float(np.mean(np.abs(a - b))) > self.scene_cut_threshold for a, b in zip(lumas, lumas[1:]))

    def _code_unit(self) -> CodedUnit:
        frames, self.pending = self.pending, []
        first, count = self.frame_index, len(frames)
        reset = self._is_reset(first, frames)
        self.previous_luma = frames[-1][0]
        slots = self.codec.frames_per_unit
        qps = frame_qps(self.qp, first, slots) if count == slots else [frame_qps(self.qp, first, 1)[0]] * slots
        qp = np.asarray(qps, dtype=np.int32)
        for s in range(slots):
            self.buffers.frames[0, 3 * s : 3 * s + 3] = frames[min(s, count - 1)]
        ctx_out = self._context(qp, reset)
        ctx, temporal = ctx_out["ctx"], ctx_out["temporal"]
        enc = self._run("encoder", {"frames": self.buffers.frames, "ctx": ctx, "qp": qp})
        z_hat = enc["z_hat"]
        z_stream = encode_z(z_hat, qps[0], self.codec.z_tables, self.threads)
        prior = self._run("prior", {"z_hat": z_hat, "temporal": temporal})
        ys = enc["y"] / prior["q_dec"]
        mask0, mask1 = self.masks
        tables = self.codec.y_tables
        s0, y_hat0 = encode_step(ys, prior["scales"], prior["means"], mask0, tables, self.skip_threshold, self.threads)
        step1 = self._run("spatial_prior", {"y_hat0": y_hat0, "params": prior["params"]})
        s1, y_hat1 = encode_step(ys, step1["scales"], step1["means"], mask1, tables, self.skip_threshold, self.threads)
        recon = self._finish((y_hat0 + y_hat1) * prior["q_dec"], ctx, qp, count, self.reconstruct)
        self.frame_index += count
        packet = Packet(first_frame=first, qps=tuple(qps[:count]), reset=reset,
                        payload=pack_substreams([z_stream, s0, s1]))
        return CodedUnit(packet, recon)


class Decoder(_Session):
    """``decode(packet)`` → the unit's frames (float (3, H, W), padded size)."""

    def __init__(self, codec: CodecModel, height: int, width: int, threads: int = 1,
                 skip_threshold: float = SKIP_THRESHOLD):
        super().__init__(codec, height, width, threads, skip_threshold)
        ch_z = codec.network.cfg.ch_z
        self.z_shape = (1, ch_z, -(-height // 64), -(-width // 64))

    def decode(self, packet: Packet) -> list[np.ndarray]:
        slots = self.codec.frames_per_unit
        qps = list(packet.qps) if len(packet.qps) == slots else [packet.qps[0]] * slots
        qp = np.asarray(qps, dtype=np.int32)
        substreams = unpack_substreams(packet.payload)
        if len(substreams) != 3:
            raise CorruptStreamError(f"packet {packet.index} has {len(substreams)} sub-streams, expected 3 (z, y0, y1)")
        z_stream, s0, s1 = substreams
        ctx_out = self._context(qp, packet.reset)
        ctx, temporal = ctx_out["ctx"], ctx_out["temporal"]
        z_hat = decode_z(z_stream, self.z_shape, qps[0], self.codec.z_tables, self.threads)
        prior = self._run("prior", {"z_hat": z_hat, "temporal": temporal})
        mask0, mask1 = self.masks
        tables = self.codec.y_tables
        y_hat0 = decode_step(s0, prior["scales"], prior["means"], mask0, tables, self.skip_threshold, self.threads)
        step1 = self._run("spatial_prior", {"y_hat0": y_hat0, "params": prior["params"]})
        y_hat1 = decode_step(s1, step1["scales"], step1["means"], mask1, tables, self.skip_threshold, self.threads)
        return self._finish((y_hat0 + y_hat1) * prior["q_dec"], ctx, qp, packet.num_frames, True)
