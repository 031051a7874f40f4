"""TensorRT backend: runs the engines built by ``ui2c build-engines`` on a CUDA GPU.

Each stage's runner deserializes ``<stage>.<target>.engine`` after checking its
sidecar (target, precision, GPU, and - given the export directory - the ONNX
hash), then runs it with ``set_input_shape`` / ``set_tensor_address`` /
``execute_async_v3`` on one CUDA stream made with cuda-bindings.

Memory: the first call at a resolution picks the engine's optimization profile for
those shapes, creates an execution context bound to it and allocates device
buffers for every input and output; later calls at that resolution reuse them, so
steady-state inference allocates no device memory (``allocations`` counts
``cudaMalloc`` calls so this can be checked).  Each resolution used costs one
context's activation memory.  Outputs are fresh NumPy arrays, because the codec
keeps outputs (e.g. reference features) across frames.  Inputs are converted to
the engine's dtype (``float32`` -> ``float16`` for FP16 engines).

CUDA graphs (``cuda_graph=True``): for ``trt`` the enqueue of each context is
captured once after a warm-up run and replayed with ``cudaGraphLaunch`` (shapes and
addresses are fixed per context, which is what a graph requires); for ``trt-rtx``
the library's own whole-graph capture strategy is switched on instead, because its
JIT kernels must not be captured by hand.  Host<->device copies stay outside the
graph.  Engines that cannot be captured raise :class:`EngineError`.

This module imports without TensorRT or a GPU; constructing the backend without
them raises :class:`EngineError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

import numpy as np

from ui2c.engines.sidecar import check_engine, engine_path
from ui2c.engines.targets import cuda_device_info, import_tensorrt, make_logger
from ui2c.errors import EngineError

from .base import Backend, Runner


class _Cuda:
    """The few CUDA runtime calls the backend needs, on one non-blocking stream."""

    def __init__(self, device: int) -> None:
        try:
            from cuda.bindings import runtime
        except ImportError as exc:
            raise EngineError(f"the TensorRT backend needs CUDA Python: pip install cuda-bindings ({exc})") from None
        self.rt = runtime
        count = self.call(runtime.cudaGetDeviceCount(), "cudaGetDeviceCount (is an NVIDIA driver and GPU present?)")
        if device >= count:
            raise EngineError(f"CUDA device {device} requested but {count} visible")
        self.call(runtime.cudaSetDevice(device), "cudaSetDevice")
        self.stream = self.call(runtime.cudaStreamCreateWithFlags(runtime.cudaStreamNonBlocking), "cudaStreamCreate")
        self.handle = int(self.stream)
        self.allocations = 0

    def call(self, result: tuple, what: str) -> Any:
        """Unpack a cuda-bindings ``(error, *values)`` result, raising on error."""
        err, *values = result
        if err != self.rt.cudaError_t.cudaSuccess:
            raise EngineError(f"CUDA {what} failed: {getattr(err, 'name', err)}")
        return values[0] if len(values) == 1 else None

    def malloc(self, nbytes: int) -> int:
        self.allocations += 1
        return int(self.call(self.rt.cudaMalloc(max(nbytes, 1)), f"cudaMalloc({nbytes})"))

    def free(self, ptr: int) -> None:
        self.call(self.rt.cudaFree(ptr), "cudaFree")

    def upload(self, ptr: int, array: np.ndarray) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.call(self.rt.cudaMemcpyAsync(ptr, array.ctypes.data, array.nbytes, kind, self.stream), "upload")

    def download(self, array: np.ndarray, ptr: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.call(self.rt.cudaMemcpyAsync(array.ctypes.data, ptr, array.nbytes, kind, self.stream), "download")

    def sync(self) -> None:
        self.call(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def capture(self, enqueue: Callable[[], bool]) -> Any:
        """Record ``enqueue``'s work on the stream as an instantiated CUDA graph."""
        rt = self.rt
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self.call(rt.cudaStreamBeginCapture(self.stream, mode), "cudaStreamBeginCapture")
        try:
            ok = enqueue()
        finally:
            graph = self.call(rt.cudaStreamEndCapture(self.stream), "cudaStreamEndCapture")
        try:
            if not ok:
                raise EngineError("execute_async_v3 failed under CUDA graph capture; use cuda_graph=False")
            return self.call(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        finally:
            self.call(rt.cudaGraphDestroy(graph), "cudaGraphDestroy")

    def launch(self, graph_exec: Any) -> None:
        self.call(self.rt.cudaGraphLaunch(graph_exec, self.stream), "cudaGraphLaunch")

    def release_graph(self, graph_exec: Any) -> None:
        self.call(self.rt.cudaGraphExecDestroy(graph_exec), "cudaGraphExecDestroy")

    def close(self) -> None:
        self.call(self.rt.cudaStreamDestroy(self.stream), "cudaStreamDestroy")


@dataclass
class _Slot:
    """An execution context fixed to one profile and one set of input shapes, with its buffers."""

    context: Any
    shapes: dict[str, tuple[int, ...]]
    buffers: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (ptr, nbytes)
    graph: Any = None


class TensorRTRunner(Runner):
    """Runs one stage's engine; see the module docstring for the memory model."""

    def __init__(self, stage: str, engine: Any, trt: ModuleType, cuda: _Cuda, make_context: Callable[[], Any],
                 capture: bool) -> None:
        self.stage = stage
        self._engine, self._cuda, self._make_context, self._capture = engine, cuda, make_context, capture
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        self.dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._slots: dict[tuple, _Slot] = {}

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

    def _slot(self, shapes: dict[str, tuple[int, ...]]) -> _Slot:
        """The context for these input shapes, created (and its buffers allocated) once."""
        key = tuple(shapes[n] for n in self.inputs)
        if key in self._slots:
            return self._slots[key]
        profile, cuda = self._profile_for(shapes), self._cuda
        context = self._make_context()
        if context is None or not context.set_optimization_profile_async(profile, cuda.handle):
            raise EngineError(f"stage {self.stage!r}: cannot create an execution context for profile {profile}")
        for name, shape in shapes.items():
            if not context.set_input_shape(name, shape):
                raise EngineError(f"stage {self.stage!r}: TensorRT rejected shape {shape} for input {name!r}")
        unresolved = context.infer_shapes()
        if unresolved:
            raise EngineError(f"stage {self.stage!r}: cannot infer shapes of {unresolved}")
        slot = _Slot(context, {n: tuple(context.get_tensor_shape(n)) for n in self.inputs + self.outputs})
        for name, shape in slot.shapes.items():
            nbytes = int(np.prod(shape, dtype=np.int64)) * self.dtypes[name].itemsize
            slot.buffers[name] = (cuda.malloc(nbytes), nbytes)
            context.set_tensor_address(name, slot.buffers[name][0])
        self._slots[key] = slot
        return slot

    def _execute(self, slot: _Slot) -> None:
        if slot.graph is not None:
            self._cuda.launch(slot.graph)
            return
        if not slot.context.execute_async_v3(self._cuda.handle):
            raise EngineError(f"stage {self.stage!r}: execute_async_v3 failed")
        if self._capture:  # the warm-up run above let TensorRT finish its lazy setup
            slot.graph = self._cuda.capture(lambda: slot.context.execute_async_v3(self._cuda.handle))

    def infer(self, feed: Mapping[str, np.ndarray],
              out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        missing, extra = set(self.inputs) - set(feed), set(feed) - set(self.inputs)
        if missing or extra:
            raise EngineError(f"stage {self.stage!r}: missing inputs {sorted(missing)}, unexpected {sorted(extra)}")
        arrays = {n: np.ascontiguousarray(feed[n], dtype=self.dtypes[n]) for n in self.inputs}
        slot = self._slot({n: a.shape for n, a in arrays.items()})
        for name, array in arrays.items():
            self._cuda.upload(slot.buffers[name][0], array)
        self._execute(slot)
        given = out or {}
        outputs = {n: given[n] if n in given else np.empty(slot.shapes[n], self.dtypes[n]) for n in self.outputs}
        for name, array in outputs.items():
            self._cuda.download(array, slot.buffers[name][0])
        self._cuda.sync()
        return outputs

    def close(self) -> None:
        """Free device buffers and graphs; the runner is unusable afterwards."""
        for slot in self._slots.values():
            if slot.graph is not None:
                self._cuda.release_graph(slot.graph)
            for ptr, _ in slot.buffers.values():
                self._cuda.free(ptr)
        self._slots.clear()


class TensorRTBackend(Backend):
    """Runners for the engines in ``engine_dir`` built for ``target`` (``trt`` or ``trt-rtx``).

    Pass ``onnx_dir`` (the export the engines came from) to refuse stale engines.
    Use as a context manager, or call :meth:`close`, to free device memory.
    """

    def __init__(self, engine_dir: str | Path, onnx_dir: str | Path | None = None, *, target: str = "trt",
                 precision: str = "fp16", cuda_graph: bool = False, device: int = 0) -> None:
        self.name = {"trt": "tensorrt", "trt-rtx": "tensorrt-rtx"}.get(target, target)
        self.precision = precision
        self._trt = import_tensorrt(target)
        self._cuda = _Cuda(device)
        self._device = cuda_device_info(device)
        self._target, self._engine_dir, self._onnx_dir = target, Path(engine_dir), onnx_dir
        self._cuda_graph = cuda_graph
        self._logger = make_logger(self._trt)
        self._runtime = self._trt.Runtime(self._logger)
        self._runners: dict[str, TensorRTRunner] = {}

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

    def runner(self, stage: str) -> TensorRTRunner:
        if stage not in self._runners:
            path = engine_path(self._engine_dir, stage, self._target)
            record = check_engine(path, self._onnx_dir, self._target)
            self._check_record(path, record)
            engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise EngineError(f"TensorRT could not deserialize {path}: {self._logger.errors}")
            capture = self._cuda_graph and self._target == "trt"
            self._runners[stage] = TensorRTRunner(
                stage, engine, self._trt, self._cuda, self._context_factory(engine), capture
            )
        return self._runners[stage]

    @property
    def allocations(self) -> int:
        """Device allocations made so far (constant once every resolution is warm)."""
        return self._cuda.allocations

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()
        self._cuda.close()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
