"""The runtime's entropy-coder seam: device tensors in, bytes out, and back.

The runtime codes every latent step through :class:`EntropyCoder`, so it never
knows whether the C++ coder or the Triton kernels do the work.  Both produce the
same bytes (format: ``entropy/csrc/rans_format.hpp``), so a stream written by one
decodes with the other.  A stream may be decoded in segments (format §8): a unit's two
latent steps share one stream, and step 1's indexes exist only once step 0 is
decoded, so ``decoder(data)`` returns a :class:`SegmentDecoder`.  Skipped symbols (force-zero, spec §3.4) are marked by a
negative index; the coder drops them itself, which on a GPU avoids a host round
trip to compact them.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod

import numpy as np
import torch

from ui2c.entropy import rans
from ui2c.entropy.tables import CdfTables
from ui2c.errors import EngineError


class SegmentDecoder(ABC):
    """One stream, decoded segment by segment (format §8)."""

    @abstractmethod
    def next(self, indexes: torch.Tensor) -> torch.Tensor:
        """int32 symbols of the next ``len(indexes)`` positions on ``indexes.device``, 0 where indexes < 0."""

    @abstractmethod
    def finish(self) -> None:
        """Checks that the segments consumed the stream exactly; ``CorruptStreamError`` if not."""


class EntropyCoder(ABC):
    """Codes 1-D int32 (symbols, indexes) pairs; ``indexes[i] < 0`` means not coded.

    ``bits_per_lane`` is the encoder's layout density (format §6): fewer bits per lane
    mean more lanes and groups of 32, i.e. more decoder parallelism (C++ threads, GPU
    warps) for about 28 bits per lane.  Decoders read the layout from the stream."""

    name: str

    def __init__(self, tables: CdfTables, threads: int = 1, bits_per_lane: int = rans.DEFAULT_BITS_PER_LANE) -> None:
        if not 1 <= int(bits_per_lane) < 1 << 32:
            raise ValueError(f"bits_per_lane must be in [1, 2^32), got {bits_per_lane}")
        self.tables = tables
        self.threads = int(threads)
        self.bits_per_lane = int(bits_per_lane)

    @abstractmethod
    def encode(self, symbols: torch.Tensor, indexes: torch.Tensor) -> bytes:
        """Stream of the symbols whose index is >= 0 (skipped symbols must be 0)."""

    @abstractmethod
    def decoder(self, data: bytes) -> SegmentDecoder:
        """A decoder of ``data`` in segments; header errors raise here."""

    def decode(self, data: bytes, indexes: torch.Tensor) -> torch.Tensor:
        """int32 symbols of ``len(indexes)`` on ``indexes.device``, 0 where indexes < 0:
        the whole stream as one segment."""
        stream = self.decoder(data)
        symbols = stream.next(indexes)
        stream.finish()
        return symbols


def _check_pair(symbols: torch.Tensor, indexes: torch.Tensor) -> None:
    if symbols.dim() != 1 or indexes.dim() != 1 or symbols.numel() != indexes.numel():
        raise ValueError("symbols and indexes must be 1-D tensors of the same length")
    if symbols.device != indexes.device:
        raise ValueError("symbols and indexes must be on the same device")
    _check_int32("symbols", symbols)
    _check_int32("indexes", indexes)


def _check_int32(name: str, t: torch.Tensor) -> None:
    """Refused, not converted: a float or int64 tensor here means a caller skipped the
    latent codec, and a silent cast would round or wrap its values into a valid stream."""
    if t.dtype != torch.int32:
        raise ValueError(f"{name} must be int32, not {t.dtype}")


def _to_host(t: torch.Tensor) -> np.ndarray:
    """Host copy of an int32 tensor; device tensors go through pinned memory (one DMA, no
    pageable bounce)."""
    if t.device.type == "cpu":
        return t.contiguous().numpy()
    host = torch.empty(t.shape, dtype=torch.int32, pin_memory=True)
    host.copy_(t)
    return host.numpy()


class CpuCoder(EntropyCoder):
    """The C++ coder behind the seam; tensors on any device are staged through the host."""

    name = "cpu"

    def encode(self, symbols: torch.Tensor, indexes: torch.Tensor) -> bytes:
        _check_pair(symbols, indexes)
        return rans.encode(_to_host(symbols), _to_host(indexes), self.tables, self.threads,
                           bits_per_lane=self.bits_per_lane, skip_negative=True)

    def decoder(self, data: bytes) -> SegmentDecoder:
        return _CpuSegments(rans.StreamDecoder(data, self.tables, self.threads, skip_negative=True))


class _CpuSegments(SegmentDecoder):
    def __init__(self, stream: rans.StreamDecoder) -> None:
        self._stream = stream

    def next(self, indexes: torch.Tensor) -> torch.Tensor:
        """Device indexes, or host indexes in pinned memory (a CUDA session's staging),
        get their symbols decoded straight into pinned memory, so the copy to the device
        is one asynchronous DMA with no pageable staging."""
        if indexes.dim() != 1:
            raise ValueError("indexes must be a 1-D tensor")
        _check_int32("indexes", indexes)
        on_host = indexes.device.type == "cpu"
        # Pinned memory exists only once torch has initialised CUDA; asking before that
        # would create a CUDA context (hundreds of MB of GPU memory) for a CPU session.
        pin = not on_host or (torch.cuda.is_initialized() and indexes.is_pinned())
        out = torch.empty(indexes.shape, dtype=torch.int32, pin_memory=pin)
        self._stream.next(_to_host(indexes), out.numpy())
        return out if on_host else out.to(indexes.device, non_blocking=True)

    def finish(self) -> None:
        self._stream.finish()


class TritonCoder(EntropyCoder):
    """Triton kernels on a CUDA device (or the interpreter on CPU under ``TRITON_INTERPRET=1``).

    Encoding synchronises once (the copy of the final bytes).  Decoding synchronises
    once to check the device's consistency flags when ``check`` is true (the default);
    set it to false to keep decoding asynchronous and inspect ``last_error`` later.
    """

    name = "triton"

    def __init__(self, tables: CdfTables, threads: int = 1, device: torch.device | str = "cuda",
                 bits_per_lane: int = rans.DEFAULT_BITS_PER_LANE) -> None:
        super().__init__(tables, threads, bits_per_lane)
        from ui2c.plugins.triton_rans import TritonRans

        self.device = torch.device(device)
        self.check = True
        self._impl = TritonRans(tables, self.device, self.bits_per_lane)

    @property
    def last_error(self) -> torch.Tensor | None:
        """Device int32 scalar of the last decode: nonzero means the stream was inconsistent."""
        return self._impl.last_error

    def encode(self, symbols: torch.Tensor, indexes: torch.Tensor) -> bytes:
        _check_pair(symbols, indexes)
        return self._impl.encode(symbols, indexes)

    def decoder(self, data: bytes) -> SegmentDecoder:
        return _TritonSegments(self._impl.decoder(data, check=self.check))


class _TritonSegments(SegmentDecoder):
    def __init__(self, stream) -> None:
        self._stream = stream

    def next(self, indexes: torch.Tensor) -> torch.Tensor:
        if indexes.dim() != 1:
            raise ValueError("indexes must be a 1-D tensor")
        return self._stream.next(indexes).to(indexes.device)

    def finish(self) -> None:
        self._stream.finish()


def make_coder(tables: CdfTables, device: torch.device | str, kind: str | None = None,
               threads: int = 1, bits_per_lane: int = rans.DEFAULT_BITS_PER_LANE) -> EntropyCoder:
    """The coder for ``device``: ``kind=None`` picks "cpu", the C++ coder, everywhere.

    The Triton coder is byte-identical in the interpreter, and on an H100 (triton 3.6) it
    wrote the C++ coder's bytes for a runtime stream (``tests/gpu``); but its own suite and
    a 1080p session have not yet finished within a GPU check's time limits (a kernel
    compiled in 13-17 s there, and again for each new specialisation; both fixed since,
    unmeasured on a GPU), so it stays opt-in ("triton") until a GPU run passes
    ``tests/test_entropy_triton.py``.  "cpu" works for any device (host staging through
    pinned memory); "triton" needs a CUDA device, or ``TRITON_INTERPRET=1`` for a CPU
    device (tests).
    """
    dev = torch.device(device)
    kind = kind or "cpu"
    if kind == "cpu":
        return CpuCoder(tables, threads, bits_per_lane)
    if kind == "triton":
        if dev.type != "cuda" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
            # else the first kernel launch fails, deep in Triton, with an untyped error
            raise EngineError(f"the triton entropy coder needs a CUDA device, not {dev.type} "
                              "(or TRITON_INTERPRET=1 for tests); use the cpu coder")
        return TritonCoder(tables, threads, dev, bits_per_lane)
    raise ValueError(f"unknown entropy coder kind {kind!r} (expected 'cpu' or 'triton')")
