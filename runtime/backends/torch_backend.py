"""The PyTorch backend: the stages on CPU or CUDA, eager or compiled by inductor.

``compile=True`` wraps each stage in ``torch.compile`` (default mode: no timing-based
autotuning, so an encoder and a decoder in different processes pick the same
kernels).  On CUDA every stage a unit runs, compiled or eager, is captured in a CUDA
graph per resolution (:class:`CudaGraphRunner`; ``cuda_graphs=False`` turns this
off), which removes the launch overhead that dominates eager mode.  Compiled and
eager kernels round differently, so the mode is part of the producer string a
stream header records.  So is the CPU thread count: torch's CPU
convolutions split their work, and round, differently per count (a stream encoded
with 2 threads failed to decode with 1), so the stages run with a fixed count,
recorded as ``-t<N>`` in the mode, that a decoder reproduces.
"""
from __future__ import annotations

import copy
import functools
import os
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

from ...errors import EngineError
from ...models.precision import PRECISIONS
from .base import Backend, Runner, into
from .cuda_graph import CudaGraphRunner


_THREADS_LOCK = threading.RLock()


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads (None: as they are).

    torch (OpenMP) keeps the count per thread, but ``set_num_threads`` also sets the
    count every thread starts with: without the lock, a thread first using torch
    inside another's block would inherit that block's count for good.  Re-entrant,
    so blocks nest on one thread."""
    if count is None:
        yield
        return
    with _THREADS_LOCK:
        previous = torch.get_num_threads()
        if count == previous:
            yield
            return
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


class TorchRunner(Runner):
    def __init__(self, fn: Callable[..., tuple[torch.Tensor, ...]], stage: str, input_names: list[str],
                 output_names: list[str], threads: int | None = None):
        self.fn, self.stage, self.threads = fn, stage, threads
        self.input_names, self.output_names = input_names, output_names

    def infer(self, feed: Mapping[str, torch.Tensor],
              out: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        with torch.inference_mode(), torch_threads(self.threads):
            results = self.fn(*(feed[n] for n in self.input_names))
        return into(dict(zip(self.output_names, results)), out)


class CompiledPerShape:
    """``run_stage(stage, ...)`` compiled once per input shapes, each on its own code object.

    Dynamo caches at most ``recompile_limit`` (8) graphs per code object and then runs
    the frame eagerly, without an error: with one code object shared by the stages, or
    one per stage, the ninth (stage, resolution) would run eager kernels under an
    "inductor" producer string, and its stream would not decode.  A fresh code object
    per shape key keeps every cache at one graph, however many sizes a process codes."""

    def __init__(self, run_stage: Callable[..., tuple[torch.Tensor, ...]], stage: str):
        self.run_stage, self.stage = run_stage, stage
        self._compiled: dict[tuple, Callable[..., tuple[torch.Tensor, ...]]] = {}

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        key = tuple((tuple(t.shape), t.dtype) for t in inputs)
        fn = self._compiled.get(key)
        if fn is None:
            fn = self._compiled[key] = torch.compile(self._fresh_function(len(self._compiled)), dynamic=False)
        return fn(*inputs)

    def _fresh_function(self, index: int) -> Callable[..., tuple[torch.Tensor, ...]]:
        run_stage, stage = self.run_stage, self.stage

        def fn(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return run_stage(stage, *inputs)

        fn.__code__ = fn.__code__.replace(co_name=f"ui2c_stage_{stage}_{index}")
        return fn


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: nn.Module, precision: str = "fp32", device: str | torch.device = "cpu",
                 compile: bool = False, cuda_graphs: bool | None = None, threads: int | None = None):
        if precision not in PRECISIONS:
            raise EngineError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        try:
            self.device = torch.device(device)
        except RuntimeError:
            raise EngineError(f"unknown device {device!r}; expected cpu or cuda[:N]") from None
        if self.device.type not in ("cpu", "cuda"):
            raise EngineError(f"the torch backend runs on cpu or cuda, not {device!r}")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise EngineError("the torch backend was asked for CUDA, but torch sees no CUDA device")
        if precision == "fp16" and self.device.type != "cuda":
            raise EngineError("the torch backend runs fp16 on CUDA only (CPU kernels for fp16 convolutions are slow "
                              "and differ from the CUDA ones)")
        torch.backends.cudnn.benchmark = False  # timing-based kernel choice would differ between processes
        self.precision = precision
        # A copy: the caller's fp32 CPU network still derives the entropy tables.
        self.model = copy.deepcopy(model).eval().to(device=self.device, dtype=self.dtype)
        self.mode = "inductor" if compile else "eager"
        self.threads = None
        if self.device.type == "cpu":
            self.threads = torch.get_num_threads() if threads is None else threads
            if not 1 <= self.threads <= 1024:
                raise EngineError(f"torch CPU threads must be in 1..1024, not {self.threads}")
            self.mode += f"-t{self.threads}"
        self.cuda_graphs = self.device.type == "cuda" if cuda_graphs is None else cuda_graphs
        if compile:
            from ...export.cache import cache_dir

            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))
        self._stages = model.stages()
        self._runners: dict[str, Runner] = {}

    def runner(self, stage: str) -> Runner:
        if stage not in self._runners:
            spec = self._stages[stage]

            fn: Callable[..., tuple[torch.Tensor, ...]]
            if self.mode.startswith("inductor"):
                fn = CompiledPerShape(self.model.run_stage, stage)
            else:
                fn = functools.partial(self.model.run_stage, stage)
            runner: Runner = TorchRunner(fn, stage, [s.name for s in spec.inputs], [s.name for s in spec.outputs],
                                         self.threads)
            if self.cuda_graphs and (spec.encode_calls or spec.decode_calls):  # not the one-off adaptor
                runner = CudaGraphRunner(runner, self.device)
            self._runners[stage] = runner
        return self._runners[stage]
