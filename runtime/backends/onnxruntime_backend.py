"""ONNX Runtime backend: the default, running the exported stage graphs.

Uses the CUDA execution provider when ONNX Runtime has it, else the CPU provider.
Outputs bind directly into the session's preallocated arrays through I/O binding, so
steady-state coding allocates no feature or reference buffers.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import onnxruntime as ort

from ...errors import EngineError
from .base import Backend, Runner

_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32}


class OnnxRuntimeRunner(Runner):
    def __init__(self, session: ort.InferenceSession, stage: str, dtypes: dict[str, str]):
        self.session, self.stage = session, stage
        self.dtypes = {name: _NP_DTYPES[d] for name, d in dtypes.items()}
        self.output_names = [o.name for o in session.get_outputs()]

    def infer(self, feed: Mapping[str, np.ndarray],
              out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        binding = self.session.io_binding()
        for name, array in feed.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array, dtype=self.dtypes[name]))
        for name in self.output_names:
            if out is not None and name in out:
                buf = out[name]
                binding.bind_output(name, "cpu", 0, buf.dtype, list(buf.shape), buf.ctypes.data)
            else:
                binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        results = binding.get_outputs()
        return {name: (out[name] if out is not None and name in out else results[i].numpy())
                for i, name in enumerate(self.output_names)}


class OnnxRuntimeBackend(Backend):
    """Runners over the graphs listed in an export directory's ``manifest.json``."""

    def __init__(self, manifest_path: str | Path, threads: int | None = None):
        manifest_path = Path(manifest_path)
        if not manifest_path.is_file():
            raise EngineError(f"ONNX export manifest not found: {manifest_path}")
        self.root = manifest_path.parent
        self.manifest = json.loads(manifest_path.read_text())
        self.precision = self.manifest["precision"]
        available = ort.get_available_providers()
        self.providers = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
        self.providers.append("CPUExecutionProvider")
        self.name = "onnxruntime-" + ("cuda" if len(self.providers) == 2 else "cpu")
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
            dtypes = {name: spec["dtype"] for name, spec in graph["inputs"].items()}
            self._runners[stage] = OnnxRuntimeRunner(session, stage, dtypes)
        return self._runners[stage]
