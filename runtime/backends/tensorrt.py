"""TensorRT backend: runs the engines built by ``ui2c build-engines`` on a CUDA GPU.

Each stage's runner deserializes ``<stage>.<target>.engine`` after checking its
sidecar (target, precision, GPU, and - given the export directory - the ONNX
hash), then runs it on the session's own torch tensors: ``set_tensor_address``
points every input and output at the tensor's ``data_ptr()`` and
``execute_async_v3`` enqueues on torch's current stream.  Nothing is copied and
no device memory is allocated outside torch's allocator, and stream order is
torch's, so the stages interleave with the latent codec's torch kernels without
any synchronisation.

The first call at a resolution picks the engine's optimization profile for those
shapes and creates an execution context bound to it; later calls reuse it (each
resolution used costs one context's activation memory).  Inputs of another dtype
are converted (``float32`` -> ``float16`` for FP16 engines).

CUDA graphs (``cuda_graph=True``): for ``trt`` each runner is wrapped in the
generic :class:`CudaGraphRunner` (``execute_async_v3`` is capturable once a
warm-up run has done TensorRT's lazy setup); for ``trt-rtx`` the library's own
whole-graph capture strategy is switched on instead, because its JIT kernels must
not be captured by hand.

TensorRT cannot be installed on any machine this project reaches (the RTX wheels
run on compute capability 7.5/8.6/8.9/12.x only), so this module is kept right by
TensorRT's Python API documentation; it imports without TensorRT or a GPU, and
constructing the backend without them raises :class:`EngineError`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

import torch

from ui2c.engines.sidecar import check_engine, engine_path
from ui2c.engines.targets import cuda_device_info, import_tensorrt, make_logger
from ui2c.errors import EngineError

from .base import Backend, Runner
from .cuda_graph import CudaGraphRunner


@dataclass
class _Slot:
    """An execution context fixed to one profile and one set of input shapes."""

    context: Any
    shapes: dict[str, tuple[int, ...]]  # output shapes


class TensorRTRunner(Runner):
    """Runs one stage's engine on torch tensors; see the module docstring."""

    def __init__(self, stage: str, engine: Any, trt: ModuleType, make_context: Callable[[], Any],
                 device: torch.device) -> None:
        self.stage, self.device = stage, device
        self._engine, self._make_context = engine, make_context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        torch_dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32}
        self.dtypes = {n: torch_dtypes[engine.get_tensor_dtype(n)] for n in names}
        self._slots: dict[tuple, _Slot] = {}
        self.allocations = 0  # outputs this runner had to allocate (none when the caller gives ``out``)

    def _profile_for(self, shapes: dict[str, tuple[int, ...]]) -> int:
        ranges = []
        for profile in range(self._engine.num_optimization_profiles):
            bounds = {n: self._engine.get_tensor_profile_shape(n, profile) for n in self.inputs}
            if all(
                len(shapes[n]) == len(lo) and all(a <= s <= b for a, s, b in zip(lo, shapes[n], hi))
                for n, (lo, _opt, hi) in bounds.items()
            ):
                return profile
            ranges.append({n: f"{tuple(lo)}..{tuple(hi)}" for n, (lo, _opt, hi) in bounds.items()})
        raise EngineError(
            f"stage {self.stage!r}: input shapes {shapes} fit none of the engine's profiles {ranges}; "
            "rebuild the engines with this resolution in --profiles"
        )

    def _slot(self, shapes: dict[str, tuple[int, ...]], stream: int) -> _Slot:
        """The context for these input shapes, created once."""
        key = tuple(shapes[n] for n in self.inputs)
        if key in self._slots:
            return self._slots[key]
        profile = self._profile_for(shapes)
        context = self._make_context()
        if context is None or not context.set_optimization_profile_async(profile, stream):
            raise EngineError(f"stage {self.stage!r}: cannot create an execution context for profile {profile}")
        for name, shape in shapes.items():
            if not context.set_input_shape(name, shape):
                raise EngineError(f"stage {self.stage!r}: TensorRT rejected shape {shape} for input {name!r}")
        unresolved = context.infer_shapes()
        if unresolved:
            raise EngineError(f"stage {self.stage!r}: cannot infer shapes of {unresolved}")
        self._slots[key] = _Slot(context, {n: tuple(context.get_tensor_shape(n)) for n in self.outputs})
        return self._slots[key]

    def _output(self, name: str, shape: tuple[int, ...], given: torch.Tensor | None) -> torch.Tensor:
        if given is None:
            self.allocations += 1
            return torch.empty(shape, dtype=self.dtypes[name], device=self.device)
        if tuple(given.shape) != shape or given.dtype != self.dtypes[name] or not given.is_contiguous():
            raise EngineError(f"stage {self.stage!r}: output {name!r} needs a contiguous {self.dtypes[name]} "
                              f"tensor of shape {shape}, got {given.dtype} {tuple(given.shape)}")
        return given

    def infer(self, feed: Mapping[str, torch.Tensor],
              out: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        missing, extra = set(self.inputs) - set(feed), set(feed) - set(self.inputs)
        if missing or extra:
            raise EngineError(f"stage {self.stage!r}: missing inputs {sorted(missing)}, unexpected {sorted(extra)}")
        inputs = {n: feed[n].to(self.device, self.dtypes[n]).contiguous() for n in self.inputs}
        stream = torch.cuda.current_stream(self.device).cuda_stream
        slot = self._slot({n: tuple(t.shape) for n, t in inputs.items()}, stream)
        outputs = {n: self._output(n, slot.shapes[n], (out or {}).get(n)) for n in self.outputs}
        for name, tensor in {**inputs, **outputs}.items():
            slot.context.set_tensor_address(name, tensor.data_ptr())
        if not slot.context.execute_async_v3(stream):
            raise EngineError(f"stage {self.stage!r}: execute_async_v3 failed")
        return outputs


class TensorRTBackend(Backend):
    """Runners for the engines in ``engine_dir`` built for ``target`` (``trt`` or ``trt-rtx``).

    Pass ``onnx_dir`` (the export the engines came from) to refuse stale engines.
    Use as a context manager, or call :meth:`close`, to free device memory.
    """

    def __init__(self, engine_dir: str | Path, onnx_dir: str | Path | None = None, *, target: str = "trt",
                 precision: str = "fp16", cuda_graph: bool = False, device: int = 0) -> None:
        self.name = {"trt": "tensorrt", "trt-rtx": "tensorrt-rtx"}.get(target, target)
        self.precision, self.mode = precision, "engine"
        self._trt = import_tensorrt(target)
        self._device = cuda_device_info(device)
        self.device = torch.device("cuda", device)
        self._target, self._engine_dir, self._onnx_dir = target, Path(engine_dir), onnx_dir
        self._cuda_graph = cuda_graph
        self._logger = make_logger(self._trt)
        self._runtime = self._trt.Runtime(self._logger)
        self._runners: dict[str, Runner] = {}

    def _check_record(self, path: Path, record: dict[str, Any]) -> None:
        """Refuse engines of another precision or for another GPU before TensorRT does, cryptically."""
        if record.get("precision") != self.precision:
            raise EngineError(f"engine {path} is {record.get('precision')}, backend wants {self.precision}")
        built_for, cap = record.get("device", {}), self._device["compute_capability"]
        if self._target == "trt" and built_for.get("compute_capability") != cap:
            raise EngineError(f"engine {path} was built on {built_for} but this GPU is {self._device}; rebuild it")
        sm = "SM" + cap.replace(".", "")
        if self._target == "trt-rtx" and sm not in built_for.get("compute_capabilities", []):
            raise EngineError(f"engine {path} targets {built_for} but this GPU is {sm}; rebuild with it")

    def _context_factory(self, engine: Any) -> Callable[[], Any]:
        if self._target == "trt-rtx" and self._cuda_graph:
            config = engine.create_runtime_config()
            config.cuda_graph_strategy = self._trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
            return lambda: engine.create_execution_context(config)
        return engine.create_execution_context

    def runner(self, stage: str) -> Runner:
        if stage not in self._runners:
            path = engine_path(self._engine_dir, stage, self._target)
            record = check_engine(path, self._onnx_dir, self._target)
            self._check_record(path, record)
            engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise EngineError(f"TensorRT could not deserialize {path}: {self._logger.errors}")
            runner: Runner = TensorRTRunner(stage, engine, self._trt, self._context_factory(engine), self.device)
            if self._cuda_graph and self._target == "trt":
                runner = CudaGraphRunner(runner, self.device)
            self._runners[stage] = runner
        return self._runners[stage]

    def close(self) -> None:
        """Drop the engines and their contexts."""
        self._runners.clear()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
