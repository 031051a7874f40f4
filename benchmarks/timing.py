"""Instrumentation for the speed benchmark, without touching the runtime's code.

* :class:`Clock` accumulates *exclusive* wall time per label: time spent in a nested
  measurement is charged to the inner label only, so the labels of one run are
  disjoint and their sum can be checked against the independently timed total.
* :class:`TimingBackend` wraps a real backend; its runners time each network stage
  and delegate.  It describes itself like the wrapped backend, so streams are
  identical to unwrapped ones.
* :func:`instrument_entropy` times the latent-coding functions the session calls
  (quantize, skip, fold, CDF indexes) and the rANS coder (on the encoder's worker
  thread, its time is *overlapped* with the networks and reported apart).  It
  rebinds those names for the duration of the ``with`` block only: the runtime has no
  hooks, and editing it for a benchmark would change what is measured.
* Memory: the process RSS high-water mark (``VmHWM``, what ``resource`` reports as
  ``ru_maxrss``).  On Linux it is reset before each run by writing ``5`` to
  ``/proc/self/clear_refs``, so each run reports its own peak; elsewhere the peak
  is the process's since start (reported as such).
"""
from __future__ import annotations

import resource
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import torch

from ..entropy import coder
from ..runtime import session
from ..runtime.backends.base import Backend, Runner


@dataclass
class Part:
    seconds: float = 0.0
    calls: int = 0


class Clock:
    """Exclusive wall time per label (see the module docstring).

    Time measured on other threads (the encoder's entropy worker) overlaps the
    creating thread's and goes to ``overlapped``, never into ``parts``, so ``parts``
    stay disjoint and sum to at most the creating thread's total.  On CUDA the
    stage runners also record events; ``device_ms`` resolves them into GPU time per
    stage after the run has synchronised."""

    def __init__(self) -> None:
        self.parts: dict[str, Part] = {}
        self.overlapped: dict[str, Part] = {}
        self._owner = threading.get_ident()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._events: list[tuple[str, object, object]] = []

    @contextmanager
    def measure(self, label: str) -> Iterator[None]:
        stack = self._local.__dict__.setdefault("stack", [])  # time already charged to children
        stack.append(0.0)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            children = stack.pop()
            table = self.parts if threading.get_ident() == self._owner else self.overlapped
            with self._lock:
                part = table.setdefault(label, Part())
                part.seconds += elapsed - children
                part.calls += 1
            if stack:
                stack[-1] += elapsed

    def timed(self, label: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            with self.measure(label):
                return fn(*args, **kwargs)

        return wrapper

    def record_events(self, label: str, start: object, end: object) -> None:
        self._events.append((label, start, end))

    def device_ms(self) -> dict[str, float]:
        """GPU milliseconds per label from the recorded CUDA events (call after a sync)."""
        out: dict[str, float] = {}
        for label, start, end in self._events:
            out[label] = out.get(label, 0.0) + start.elapsed_time(end)
        return out

    def reset(self) -> None:
        self.parts.clear()
        self.overlapped.clear()
        self._events.clear()


class TimingRunner(Runner):
    def __init__(self, inner: Runner, clock: Clock, stage: str):
        self.inner, self.clock, self.stage = inner, clock, stage

    def infer(self, feed: Mapping[str, torch.Tensor],
              out: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        label = f"net:{self.stage}"
        cuda = next(iter(feed.values())).device.type == "cuda"
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        with self.clock.measure(label):
            result = self.inner.infer(feed, out)
        if cuda:
            end.record()
            self.clock.record_events(label, start, end)
        return result


class TimingBackend(Backend):
    """Delegates to ``inner``; every runner it hands out is timed on ``clock``."""

    def __init__(self, inner: Backend, clock: Clock):
        self.inner, self.clock = inner, clock
        self.name, self.precision, self.device, self.mode = inner.name, inner.precision, inner.device, inner.mode
        self._runners: dict[str, TimingRunner] = {}

    def runner(self, stage: str) -> TimingRunner:
        if stage not in self._runners:
            self._runners[stage] = TimingRunner(self.inner.runner(stage), self.clock, stage)
        return self._runners[stage]

    def describe(self) -> str:
        return self.inner.describe()


@contextmanager
def _rebound(module: object, name: str, value: object) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


ENTROPY_LATENT = "entropy:latent ops"
ENTROPY_RANS = "entropy:rANS"
SESSION_LATENT_FUNCTIONS = ("step_indexes", "quantize_step", "dequantize_step")


@contextmanager
def instrument_entropy(clock: Clock) -> Iterator[None]:
    """Time the session's latent coding and the entropy coders (C++ and Triton)."""
    with ExitStack() as stack:
        for name in SESSION_LATENT_FUNCTIONS:
            stack.enter_context(_rebound(session, name, clock.timed(ENTROPY_LATENT, getattr(session, name))))
        # encoding is one call per stream; decoding is decoder(stream) (header, upload),
        # then next(indexes) per segment and finish() (the final checks)
        timed = [(cls, ("encode", "decoder")) for cls in (coder.CpuCoder, coder.TritonCoder)]
        timed += [(cls, ("next", "finish")) for cls in coder.SegmentDecoder.__subclasses__()]
        for cls, names in timed:
            for name in names:
                stack.enter_context(_rebound(cls, name, clock.timed(ENTROPY_RANS, getattr(cls, name))))
        yield


def reset_peak_rss() -> bool:
    """Reset the RSS high-water mark (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """RSS high-water mark in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)
