"""ONNX Runtime backend: the default, running the exported stage graphs.

Uses the CUDA execution provider when ONNX Runtime has it (and the session's device
is CUDA), else the CPU provider.  Inputs and outputs are bound through I/O binding
straight onto the session's torch tensors (``data_ptr``), so no array is copied on
the way in or out and steady-state coding allocates no feature or reference buffers.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import onnxruntime as ort
import torch

from ...errors import EngineError
from ...models.precision import TENSOR_DTYPES
from .base import Backend, Runner

_NUMPY = {torch.float32: np.float32, torch.float16: np.float16, torch.int32: np.int32}


def _bind(binding: ort.IOBinding, name: str, tensor: torch.Tensor, output: bool) -> None:
    device = tensor.device
    args = (name, device.type, device.index or 0, _NUMPY[tensor.dtype], list(tensor.shape), tensor.data_ptr())
    (binding.bind_output if output else binding.bind_input)(*args)


class OnnxRuntimeRunner(Runner):
    def __init__(self, session: ort.InferenceSession, stage: str, dtypes: dict[str, torch.dtype],
                 device: torch.device):
        self.session, self.stage, self.device = session, stage, device
        self.dtypes = dtypes
        self.output_names = [o.name for o in session.get_outputs()]

    def infer(self, feed: Mapping[str, torch.Tensor],
              out: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Outputs missing from ``out`` (only the rare adaptor call) are allocated by
        ONNX Runtime and copied into fresh tensors."""
        out = out or {}
        binding = self.session.io_binding()
        inputs = {name: t.to(self.dtypes[name]).contiguous() for name, t in feed.items()}
        for name, t in inputs.items():
            _bind(binding, name, t, output=False)
        for name in self.output_names:
            if name in out:
                _bind(binding, name, out[name], output=True)
            else:
                binding.bind_output(name, "cpu")
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()  # ONNX Runtime runs on its own stream
        self.session.run_with_iobinding(binding)
        allocated = iter(binding.get_outputs())
        results = {}
        for name in self.output_names:
            value = next(allocated)
            results[name] = out[name] if name in out else torch.from_numpy(value.numpy()).to(self.device)
        return results


class OnnxRuntimeBackend(Backend):
    """Runners over the graphs listed in an export directory's ``manifest.json``."""

    name = "onnxruntime"
    mode = "onnx"

    def __init__(self, manifest_path: str | Path, device: str | torch.device = "cpu", threads: int | None = None):
        manifest_path = Path(manifest_path)
        if not manifest_path.is_file():
            raise EngineError(f"ONNX export manifest not found: {manifest_path}")
        self.root = manifest_path.parent
        self.manifest = json.loads(manifest_path.read_text())
        self.precision = self.manifest["precision"]
        self.device = torch.device(device)
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EngineError("this ONNX Runtime has no CUDA execution provider (onnxruntime-gpu is needed "
                                  "for --device cuda)")
            # The session's GPU (as ``_bind`` binds its tensors), not ONNX Runtime's default 0.
            self.providers = [("CUDAExecutionProvider", {"device_id": self.device.index or 0})]
        else:
            self.providers = ["CPUExecutionProvider"]
        self.options = ort.SessionOptions()
        if threads is not None:
            self.options.intra_op_num_threads = threads
        self._runners: dict[str, OnnxRuntimeRunner] = {}

    def runner(self, stage: str) -> OnnxRuntimeRunner:
        if stage not in self._runners:
            graphs = self.manifest["graphs"]
            if stage not in graphs:
                raise EngineError(f"export at {self.root} has no graph for stage {stage!r}")
            graph = graphs[stage]
            path = self.root / graph["file"]
            if not path.is_file():
                raise EngineError(f"ONNX graph missing: {path}")
            session = ort.InferenceSession(str(path), self.options, providers=self.providers)
            dtypes = {name: TENSOR_DTYPES[spec["dtype"]] for name, spec in graph["inputs"].items()}
            self._runners[stage] = OnnxRuntimeRunner(session, stage, dtypes, self.device)
        return self._runners[stage]
