"""TensorRT engines on a real GPU: build the synthetic export for ``trt``, run it
through :class:`TensorRTBackend` on torch CUDA tensors and compare with onnxruntime
on the CPU.

The whole module skips when no CUDA device is visible; the ``trt`` tests skip with a
line saying so where TensorRT is absent (it cannot be installed on any machine this
project reaches, so they are kept for machines that have it).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def _cuda_visible() -> bool:
    try:
        from cuda.bindings import runtime

        err, count = runtime.cudaGetDeviceCount()
        return err == runtime.cudaError_t.cudaSuccess and count > 0
    except ImportError:
        smi = shutil.which("nvidia-smi")
        return bool(smi) and subprocess.run([smi, "-L"], capture_output=True, check=False).returncode == 0


if not _cuda_visible():
    pytest.skip("no CUDA device visible", allow_module_level=True)

import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from ui2c.engines import build_engines, check_engine  # noqa: E402
from ui2c.engines.manifest import load_manifest  # noqa: E402
from ui2c.engines.synthetic import write_export  # noqa: E402
from ui2c.engines.targets import cuda_device_info  # noqa: E402
from ui2c.errors import EngineError  # noqa: E402
from ui2c.runtime.backends.tensorrt import TensorRTBackend  # noqa: E402

SIZES = {"360p": (368, 640), "720p": (720, 1280)}


@pytest.fixture(scope="module", params=["float16", "float32"])
def export_and_engines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("tensorrt", reason="TensorRT is absent on this machine: the trt engine tests cannot run")
    root = tmp_path_factory.mktemp(request.param)
    export = write_export(root / "onnx", request.param)
    build_engines(export, root / "engines", "trt", list(SIZES), model="synthetic")
    return export, root / "engines"


def _backend(engines: Path, export: Path, **options: object) -> TensorRTBackend:
    """A backend at the export's precision, which is the engines' (built strongly typed)."""
    precision = load_manifest(export).precision
    assert check_engine(engines / "encoder.trt.engine", None)["precision"] == precision
    return TensorRTBackend(engines, export, precision=precision, **options)


def _on_gpu(feed: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(a).cuda() for name, a in feed.items()}


def _infer(runner, feed: dict[str, np.ndarray], **out: torch.Tensor) -> dict[str, np.ndarray]:
    """Run on the GPU through the runner contract; results back on the host."""
    return {name: t.cpu().numpy() for name, t in runner.infer(_on_gpu(feed), out or None).items()}


def _feed(graph, height: int, width: int, seed: int, qp: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    dtype = np.float16 if load_manifest(graph.path.parent).precision == "fp16" else np.float32
    return {
        name: np.array([qp, 63 - qp], np.int32) if name == "qp" else rng.standard_normal(shape).astype(dtype)
        for name, shape in graph.input_shapes(height, width).items()
    }


def _reference(graph, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))


def test_matches_onnxruntime(export_and_engines: tuple[Path, Path]) -> None:
    export, engines = export_and_engines
    with _backend(engines, export) as backend:
        for graph in load_manifest(export).graphs.values():
            for seed, (height, width) in enumerate(SIZES.values()):
                feed = _feed(graph, height, width, seed)
                got, want = _infer(backend.runner(graph.name), feed), _reference(graph, feed)
                assert set(got) == set(want)
                for name in want:
                    assert got[name].shape == want[name].shape
                    scale = float(np.abs(want[name]).max())
                    np.testing.assert_allclose(got[name].astype(np.float32), want[name].astype(np.float32),
                                               rtol=2e-2, atol=2e-2 * scale, err_msg=f"{graph.name}.{name}")


def test_qp_table_is_applied(export_and_engines: tuple[Path, Path]) -> None:
    export, engines = export_and_engines
    graph = load_manifest(export).graphs["encoder"]
    with _backend(engines, export) as backend:
        runner = backend.runner("encoder")
        low, high = (_infer(runner, _feed(graph, 368, 640, 0, qp))["y"] for qp in (0, 40))
        assert not np.allclose(low, high)
        np.testing.assert_allclose(high.astype(np.float32), _reference(graph, _feed(graph, 368, 640, 0, 40))["y"],
                                   rtol=2e-2, atol=2e-2 * float(np.abs(high).max()))


def test_outputs_are_written_in_place(export_and_engines: tuple[Path, Path]) -> None:
    export, engines = export_and_engines
    graph = load_manifest(export).graphs["encoder"]
    with _backend(engines, export) as backend:
        runner = backend.runner("encoder")
        feed = _feed(graph, 368, 640, 0)
        fresh = runner.infer(_on_gpu(feed))
        assert runner.allocations == len(runner.outputs)
        out = {name: torch.empty_like(t) for name, t in fresh.items()}
        given = runner.infer(_on_gpu(feed), out)
        assert runner.allocations == len(runner.outputs)  # nothing allocated when given ``out``
        for name in out:
            assert given[name].data_ptr() == out[name].data_ptr()
            assert torch.equal(given[name], fresh[name])


def test_cuda_graph_replay_matches(export_and_engines: tuple[Path, Path]) -> None:
    export, engines = export_and_engines
    graph = load_manifest(export).graphs["encoder"]
    feeds = [_feed(graph, 368, 640, seed) for seed in range(3)]
    with _backend(engines, export) as plain, _backend(engines, export, cuda_graph=True) as graphed:
        for feed in feeds:  # first call warms up and captures, later ones replay the graph
            want, got = _infer(plain.runner("encoder"), feed), _infer(graphed.runner("encoder"), feed)
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])


def test_sidecar_and_timing_cache(export_and_engines: tuple[Path, Path]) -> None:
    export, engines = export_and_engines
    record = check_engine(engines / "encoder.trt.engine", export, target="trt")
    assert record["device"] == cuda_device_info()
    cache = engines / "timing-trt.cache"
    assert cache.stat().st_size > 0 and record["timing_cache"]["saved_bytes"] > 0
    rebuilt = build_engines(export, engines, "trt", list(SIZES), force=True)
    assert all(r.built for r in rebuilt)
    assert rebuilt[0].record["timing_cache"]["loaded_bytes"] > 0  # the persisted cache was fed back in
    assert json.loads((engines / "encoder.trt.engine.json").read_text()) == rebuilt[0].record


def test_unbuilt_resolution_and_stale_export(export_and_engines: tuple[Path, Path], tmp_path: Path) -> None:
    export, engines = export_and_engines
    graph = load_manifest(export).graphs["encoder"]
    with _backend(engines, export) as backend:
        with pytest.raises(EngineError, match="fit none of the engine's profiles"):
            backend.runner("encoder").infer(_feed(graph, 1088, 1920, 0))
    changed = write_export(tmp_path / "onnx", load_manifest(export).graphs["encoder"].inputs["pair"].dtype, seed=99)
    with _backend(engines, changed) as backend, pytest.raises(EngineError, match="hash mismatch"):
        backend.runner("encoder")


def test_trt_rtx_engine_runs_where_supported(tmp_path: Path) -> None:
    """TensorRT-RTX targets consumer/workstation GPUs (not e.g. Hopper): run it where it can."""
    trt_rtx = pytest.importorskip("tensorrt_rtx_bindings")
    sm = "SM" + cuda_device_info()["compute_capability"].replace(".", "")
    if sm not in trt_rtx.ComputeCapability.__members__:
        pytest.skip(f"TensorRT-RTX cannot target this GPU ({sm})")
    export = write_export(tmp_path / "onnx", "float16")
    build_engines(export, tmp_path / "engines", "trt-rtx", ["360p"], compute_capabilities=[sm])
    graph = load_manifest(export).graphs["encoder"]
    feed = _feed(graph, 368, 640, 0)
    with TensorRTBackend(tmp_path / "engines", export, target="trt-rtx") as backend:
        got = _infer(backend.runner("encoder"), feed)
    want = _reference(graph, feed)
    for name in want:
        np.testing.assert_allclose(got[name].astype(np.float32), want[name].astype(np.float32),
                                   rtol=2e-2, atol=2e-2 * float(np.abs(want[name]).max()))
