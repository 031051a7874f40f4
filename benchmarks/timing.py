"""Instrumentation for the speed benchmark, without touching the runtime's code.

* :class:`Clock` accumulates *exclusive* wall time per label: time spent in a nested
  measurement is charged to the inner label only, so the labels of one run are
  disjoint and their sum can be checked against the independently timed total.
* :class:`TimingBackend` wraps a real backend; its runners time each network stage
  and delegate.  It describes itself like the wrapped backend, so streams are
  identical to unwrapped ones.
* :func:`instrument_entropy` times the latent-coding functions the session calls
  (quantize, skip, fold, CDF indexes) and, nested inside them, the rANS coder.  It
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
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import numpy as np

from ..entropy import rans
from ..runtime import session
from ..runtime.backends.base import Backend, Runner


@dataclass
class Part:
    seconds: float = 0.0
    calls: int = 0


class Clock:
    """Exclusive wall time per label (see the module docstring)."""

    def __init__(self) -> None:
        self.parts: dict[str, Part] = {}
        self._stack: list[float] = []  # time already charged to children, per open measurement

    @contextmanager
    def measure(self, label: str) -> Iterator[None]:
        self._stack.append(0.0)
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            children = self._stack.pop()
            part = self.parts.setdefault(label, Part())
            part.seconds += elapsed - children
            part.calls += 1
            if self._stack:
                self._stack[-1] += elapsed

    def timed(self, label: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            with self.measure(label):
                return fn(*args, **kwargs)

        return wrapper

    def reset(self) -> None:
        self.parts.clear()


class TimingRunner(Runner):
    def __init__(self, inner: Runner, clock: Clock, stage: str):
        self.inner, self.clock, self.stage = inner, clock, stage

    def infer(self, feed: Mapping[str, np.ndarray],
              out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        with self.clock.measure(f"net:{self.stage}"):
            return self.inner.infer(feed, out)


class TimingBackend(Backend):
    """Delegates to ``inner``; every runner it hands out is timed on ``clock``."""

    def __init__(self, inner: Backend, clock: Clock):
        self.inner, self.clock = inner, clock
        self.name, self.precision = inner.name, inner.precision
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
SESSION_LATENT_FUNCTIONS = ("encode_z", "decode_z", "encode_step", "decode_step")


@contextmanager
def instrument_entropy(clock: Clock) -> Iterator[None]:
    """Time the session's latent coding (exclusive of rANS) and the rANS coder."""
    with ExitStack() as stack:
        for name in SESSION_LATENT_FUNCTIONS:
            stack.enter_context(_rebound(session, name, clock.timed(ENTROPY_LATENT, getattr(session, name))))
        for name in ("encode", "decode"):
            stack.enter_context(_rebound(rans, name, clock.timed(ENTROPY_RANS, getattr(rans, name))))
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
