"""The runner contract every inference backend implements (Polygraphy style).

A *stage* is one network graph of the model (see ``ui2c.models.stages``): it takes
named tensors and returns named tensors.  A backend is a factory of one runner per
stage.  Every tensor crossing the contract is a ``torch.Tensor`` on the backend's
device — floats in the backend's dtype, ``qp`` as int32 — so a session keeps its
buffers on the device and comparing backends is one line, whatever runs the graph.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Mapping

import torch

from ...models.precision import PRECISIONS


def into(outputs: dict[str, torch.Tensor], out: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """Copy ``outputs`` into the caller's ``out`` tensors (where given) and return the
    outputs with those tensors in their place: the ``out`` half of the contract for
    runners whose graphs cannot write into caller memory directly."""
    for name, target in (out or {}).items():
        target.copy_(outputs[name])
        outputs[name] = target
    return outputs


class Runner(ABC):
    """Runs one stage: ``infer(feed, out) -> outputs``, all keyed by tensor name."""

    stage: str

    @abstractmethod
    def infer(self, feed: Mapping[str, torch.Tensor],
              out: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Run the stage on ``feed`` and return every output by name.

        ``out`` optionally holds preallocated tensors for (some of) the outputs; the
        runner writes into them and returns them, so a session keeps its reference
        and feature buffers fixed across units (no allocation per pair, and stable
        addresses for CUDA graphs and TensorRT bindings).  Work is queued on torch's
        current stream; the call need not synchronise.
        """


class Backend(ABC):
    """Creates runners for the stages of one model, device, precision and mode."""

    name: str  # "torch", "onnxruntime", "tensorrt", "aoti"
    device: torch.device
    precision: str  # "fp32" | "fp16"
    # How the graphs were compiled: "eager", "inductor", "engine", ...; on the CPU the
    # torch backend adds "-t<threads>" (its kernels round differently per thread count).
    mode: str = "eager"

    @property
    def dtype(self) -> torch.dtype:
        return PRECISIONS[self.precision]

    @abstractmethod
    def runner(self, stage: str) -> Runner:
        """The runner for ``stage`` (created once, then reused)."""

    def check_size(self, height: int, width: int) -> None:
        """Raise :class:`EngineError` for a padded frame size this backend's compiled graphs
        were not built for, before a session allocates anything (default: any size)."""

    def describe(self) -> str:
        """``backend/device/precision/mode``, e.g. ``torch/cuda/fp16/inductor``.

        Written to the stream header: encoder and decoder must compute bit-identical
        entropy parameters, which only the same kernels on the same kind of device
        guarantee (compiled and eager kernels round differently), so a decoder
        refuses a stream whose producer differs from its own.  ``parse_producer``
        reads it back."""
        return f"{self.name}/{self.device.type}/{self.precision}/{self.mode}"


@dataclass(frozen=True)
class Producer:
    """A stream header's producer string, split: what a decoder must load to compute
    the encoder's entropy parameters bit for bit."""

    backend: str
    device: str
    precision: str
    compile: bool  # inductor-compiled stages
    threads: int | None  # CPU thread count of the torch backend's stages; None elsewhere


def parse_producer(producer: str) -> Producer | None:
    """``backend/device/precision/mode`` → :class:`Producer`; None when it is malformed."""
    parts = producer.split("/")
    if len(parts) != 4:
        return None
    backend, device, precision, mode = parts
    mode, _, threads = mode.partition("-t")
    if threads and not (threads.isdigit() and 0 < int(threads) <= 1024):
        return None
    return Producer(backend, device, precision, mode == "inductor", int(threads) if threads else None)
