"""CUDA-graph capture of any runner, per input shape (Polygraphy-style composition).

A stage's kernels are recorded once per resolution and replayed with one launch:
at 1080p the eager stages of ``ui2c`` are launch-bound, and graphs are what let
compiled stages reach their measured speed.  A graph reads and writes fixed
addresses, so the runner owns static input and output tensors: a feed is copied
in, and outputs are copied into the caller's ``out`` tensors — device-to-device
copies of a few MB, microseconds against milliseconds of network.  Each graph has its own memory pool:
with a shared pool one graph's intermediates could overwrite another's outputs.
"""
from __future__ import annotations

from typing import Mapping

import torch

from .base import Runner, into

WARMUP_CALLS = 2  # lazy initialisation (cuDNN handles, compilation) must happen before capture


class _Graph:
    def __init__(self, runner: Runner, feed: Mapping[str, torch.Tensor], device: torch.device):
        self.inputs = {name: t.clone() for name, t in feed.items()}
        # The streams, the capture and its pool belong to the backend's GPU, whichever
        # GPU is current; a replay runs on the GPU it was captured on.
        with torch.cuda.device(device):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    runner.infer(self.inputs)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: the entropy worker keeps using CUDA (copies, syncs) on its own
            # stream while a stage is being captured, which the default "global" mode forbids.
            # stream=side: torch's default capture stream is one per process, made on
            # whichever GPU captured first; on another GPU that capture would record nothing.
            with torch.cuda.graph(self.graph, stream=side, capture_error_mode="thread_local"):
                self.outputs = runner.infer(self.inputs)


class CudaGraphRunner(Runner):
    """Wraps ``runner`` of a backend on ``device``: the first call per input shapes
    captures, later calls replay."""

    def __init__(self, runner: Runner, device: torch.device):
        self.runner, self.stage, self.device = runner, runner.stage, device
        self._graphs: dict[tuple, _Graph] = {}

    def infer(self, feed: Mapping[str, torch.Tensor],
              out: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        key = tuple((name, tuple(t.shape), t.dtype) for name, t in feed.items())
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._graphs[key] = _Graph(self.runner, feed, self.device)
        for name, t in feed.items():
            graph.inputs[name].copy_(t)
        graph.graph.replay()
        return into(dict(graph.outputs), out)
