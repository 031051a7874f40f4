"""Entropy coding overlapped with the networks (DCVC-UF's schedule).

The encoder queues a unit's networks and latent ops on the device, then hands the
unit's (symbols, indexes) tensors to :class:`EntropyWorker`, which codes them on a
worker thread while the device already runs the next unit.  On CUDA the handover
is a CUDA event recorded after the unit's work: the worker's side stream waits on
that event alone, so neither the host nor the main stream ever waits for rANS.
The coder reads its inputs on the worker's stream (host staging for the C++ coder,
kernels for the Triton one); the worker keeps the tensors alive until it is done,
so the caching allocator cannot hand their memory to the next unit early.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch

from ..entropy.coder import EntropyCoder
from ..errors import CorruptStreamError

Step = tuple[torch.Tensor, torch.Tensor]  # (symbols, indexes), flat int32


class EntropyWorker:
    """Codes finished units in order on one worker thread (``z_coder`` for the first
    step of each unit, ``y_coder`` for the rest); decoding stays on the caller's
    thread, where the next network needs its symbols anyway."""

    def __init__(self, y_coder: EntropyCoder, z_coder: EntropyCoder):
        self.y_coder, self.z_coder = y_coder, z_coder
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ui2c-entropy")
        self._stream: torch.cuda.Stream | None = None

    def encode(self, flag: torch.Tensor, steps: list[Step]) -> Future:
        """Future of ``[bool(flag), stream of steps[0], stream of steps[1], ...]``."""
        ready = None
        if flag.device.type == "cuda":
            if self._stream is None:
                self._stream = torch.cuda.Stream(flag.device)
            ready = torch.cuda.Event()
            ready.record(torch.cuda.current_stream(flag.device))
        return self._pool.submit(self._encode, ready, flag, steps)

    def _encode(self, ready: torch.cuda.Event | None, flag: torch.Tensor, steps: list[Step]) -> list:
        if ready is None:
            return self._code(flag, steps)
        with torch.cuda.stream(self._stream):
            self._stream.wait_event(ready)
            return self._code(flag, steps)

    def _code(self, flag: torch.Tensor, steps: list[Step]) -> list:
        coders = [self.z_coder] + [self.y_coder] * (len(steps) - 1)
        streams = [coder.encode(sym, idx) for coder, (sym, idx) in zip(coders, steps)]
        # Read after the coders: a device kernel's launches then queue without waiting
        # for this one-byte copy (and, by now, the device is past it anyway).
        return [bool(flag)] + streams

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class DeferredCheck:
    """The device-side consistency flags of one unit's entropy decodes (Triton coder),
    read one unit later.

    Checking each stream at once would make the host wait for the device twice per
    unit (z, y).  Instead the unit's flags are summed on the device and copied to the host
    behind a CUDA event; :meth:`verify` waits for that event alone (long passed by the
    time the next unit is queued), and the decoder calls it before it hands out the
    unit's frames, so a corrupt unit raises before any of its frames reach the caller.
    """

    def __init__(self, flags: list[torch.Tensor], packet_index: int):
        total = torch.stack([f.reshape(()) for f in flags]).sum().to(torch.int32).reshape(1)
        self.host = torch.empty(1, dtype=torch.int32, pin_memory=total.is_cuda)
        self.host.copy_(total, non_blocking=True)
        self.copied: torch.cuda.Event | None = None
        if total.is_cuda:
            self.copied = torch.cuda.Event()
            self.copied.record(torch.cuda.current_stream(total.device))
        self.packet_index = packet_index

    def verify(self) -> None:
        if self.copied is not None:
            self.copied.synchronize()
        if int(self.host[0]) != 0:
            raise CorruptStreamError(f"packet {self.packet_index}: the entropy decoder's consistency checks "
                                     "failed on the device (corrupt data, or do the skip masks differ?)")
