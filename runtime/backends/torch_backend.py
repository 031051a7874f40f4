"""The reference backend: runs the stages in PyTorch eager mode."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from .base import Backend, Runner


class TorchRunner(Runner):
    def __init__(self, model: nn.Module, stage: str):
        spec = model.stages()[stage]
        self.model, self.stage = model, stage
        self.input_names = [s.name for s in spec.inputs]
        self.output_names = [s.name for s in spec.outputs]

    def infer(self, feed: Mapping[str, np.ndarray],
              out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        inputs = [torch.from_numpy(np.ascontiguousarray(feed[n])) for n in self.input_names]
        with torch.inference_mode():
            results = self.model.run_stage(self.stage, *inputs)
        outputs = {}
        for name, value in zip(self.output_names, results):
            array = value.numpy()
            if out is not None and name in out:
                np.copyto(out[name], array)
                array = out[name]
            outputs[name] = array
        return outputs


class TorchBackend(Backend):
    name = "torch-cpu"

    def __init__(self, model: nn.Module, precision: str = "fp32"):
        if precision != "fp32":
            raise ValueError("the torch CPU backend runs fp32 only")
        self.model = model.eval()
        self.precision = precision
        self._runners: dict[str, TorchRunner] = {}

    def runner(self, stage: str) -> TorchRunner:
        if stage not in self._runners:
            self._runners[stage] = TorchRunner(self.model, stage)
        return self._runners[stage]
