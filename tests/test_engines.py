"""Engine building on CPU: TensorRT-RTX builds ahead of time without a GPU, so the
whole builder (parse, profiles, sidecars, staleness) is exercised here on a tiny
synthetic export.  Running the engines is covered by ``tests/gpu``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from ui2c.engines import build_engines, check_engine, engine_path, parse_resolution
from ui2c.engines.builder import load_timing_cache
from ui2c.engines.cli import main
from ui2c.engines.manifest import load_manifest, manifest_shape
from ui2c.fileio import file_sha256
from ui2c.models.stages import TensorSpec, resolve_dim, resolve_shape
from ui2c.engines.synthetic import write_export
from ui2c.errors import EngineError

try:
    from ui2c.engines.targets import import_tensorrt

    import_tensorrt("trt-rtx")
    HAVE_RTX = True
except EngineError:
    HAVE_RTX = False
needs_rtx = pytest.mark.skipif(not HAVE_RTX, reason="tensorrt-rtx wheels not installed")

PROFILES = ["360p", "720p"]


# --- shape grammar -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [(3, 3), ("7", 7), ("H", 368), ("W", 640), ("H/8", 46), ("W/16", 40), ("ceil(H/32)", 12),
     ("ceil(W/32)", 20), (" ceil( H / 32 ) ", 12), ("H/1", 368), ("ceil(H/368)", 1)],
)
def test_resolve_dim(expr: int | str, expected: int) -> None:
    assert resolve_dim(expr, height=368, width=640) == expected


@pytest.mark.parametrize(
    "expr",
    ["H/32", "H*2", "H+1", "__import__('os')", "ceil(H/0)", "H/0", "ceil(H", "H/", "h", "floor(H/2)",
     "ceil(H)/2", "HW", -1, 1.5, True, None],
)
def test_resolve_dim_rejects(expr: object) -> None:
    with pytest.raises(ValueError):
        resolve_dim(expr, height=368, width=640)  # type: ignore[arg-type]
    with pytest.raises(EngineError, match="tensor 'x'"):  # from a manifest, the manifest is at fault
        manifest_shape(TensorSpec("x", (1, expr)), height=368, width=640)  # type: ignore[arg-type]


def test_resolve_shape_and_resolutions() -> None:
    assert resolve_shape(TensorSpec("x", (1, 384, "H/8", "W/8")), 1088, 1920) == (1, 384, 136, 240)
    r360, r1080, custom = parse_resolution("360p"), parse_resolution("1080p"), parse_resolution("1000x500")
    assert (r360.width, r360.height) == (640, 368)
    assert (r1080.width, r1080.height) == (1920, 1088)
    assert (custom.width, custom.height, custom.frame_height) == (1008, 512, 500)
    for bad in ("999p", "0x100", "100x", ""):
        with pytest.raises(EngineError):
            parse_resolution(bad)


def test_every_command_reads_frame_sizes_alike() -> None:
    """Engine profiles and command options share one parser: names in any case, WxH."""
    from ui2c.args import even_size, size

    assert size("1080P") == even_size("1080p") == (1920, 1080) == size("1920X1080")
    assert size("854x480") == size("480p") and parse_resolution("480p").frame_height == 480


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def export16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_export(tmp_path_factory.mktemp("onnx16"), "float16")


@pytest.fixture(scope="module")
def built(export16: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    if not HAVE_RTX:
        pytest.skip("tensorrt-rtx wheels not installed")
    out = tmp_path_factory.mktemp("engines16")
    return out, build_engines(export16, out, "trt-rtx", PROFILES, model="synthetic", compute_capabilities=["SM86", "SM89"])


# --- building ----------------------------------------------------------------------


@needs_rtx
def test_builds_engine_and_sidecar_per_graph(built: tuple[Path, list], export16: Path) -> None:
    out, results = built
    manifest = load_manifest(export16)
    assert [r.graph for r in results] == list(manifest.graphs) and all(r.built for r in results)
    for r in results:
        assert r.engine == engine_path(out, r.graph, "trt-rtx") and r.engine.stat().st_size > 10_000
        side = json.loads(r.sidecar.read_text())
        assert side == r.record
        assert side["target"] == "trt-rtx" and side["tensorrt_version"].startswith("1.")
        assert side["device"] == {"compute_capabilities": ["SM86", "SM89"]}
        assert side["onnx_sha256"] == file_sha256(manifest.graphs[r.graph].path)
        assert side["engine_sha256"] == file_sha256(r.engine)
        assert side["precision"] == "fp16" and side["strongly_typed"] is True
        assert set(side["io"]["inputs"]) == set(manifest.graphs[r.graph].inputs)
        assert [p["name"] for p in side["profiles"]] == PROFILES
        assert side["build_seconds"] >= 0 and side["built_at"].endswith("+00:00")
        assert side["timing_cache"] is None  # RTX times nothing ahead of time
    encoder = json.loads(results[0].sidecar.read_text())
    assert encoder["io"] == {"inputs": {"pair": "float16", "ctx": "float16", "qp": "int32"},
                             "outputs": {"y": "float16", "z": "float16"}}
    assert encoder["profiles"][0]["shapes"] == {"pair": [1, 6, 368, 640], "ctx": [1, 8, 46, 80], "qp": [2]}
    assert encoder["profiles"][1]["shapes"]["ctx"] == [1, 8, 90, 160]
    assert not list(out.glob("*.cache"))
    assert check_engine(results[0].engine, export16, target="trt-rtx") == encoder


@needs_rtx
def test_up_to_date_engines_are_kept_and_option_changes_rebuild(export16: Path, tmp_path: Path) -> None:
    first = build_engines(export16, tmp_path, "trt-rtx", ["360p"], compute_capabilities=["SM86"])
    stamp = first[0].engine.stat().st_mtime_ns
    again = build_engines(export16, tmp_path, "trt-rtx", ["360p", "640x360"], compute_capabilities=["SM86"])
    assert not any(r.built for r in again) and again[0].engine.stat().st_mtime_ns == stamp
    # Same ONNX, other profiles or hardware: rebuilt without --force.
    more = build_engines(export16, tmp_path, "trt-rtx", ["360p", "720p"], compute_capabilities=["SM86"])
    assert all(r.built for r in more) and len(more[0].record["profiles"]) == 2
    other_hw = build_engines(export16, tmp_path, "trt-rtx", ["360p", "720p"], compute_capabilities=["SM120"])
    assert all(r.built for r in other_hw)


@needs_rtx
def test_fp32_export_builds_fp32_on_rtx(tmp_path: Path) -> None:
    export = write_export(tmp_path / "onnx32", "float32")
    results = build_engines(export, tmp_path / "eng", "trt-rtx", ["360p"], compute_capabilities=["SM89"])
    record = results[0].record
    assert record["precision"] == "fp32" and record["io"]["outputs"]["y"] == "float32"


@needs_rtx
def test_changed_onnx_is_stale_and_needs_force(tmp_path: Path) -> None:
    export = write_export(tmp_path / "onnx", "float16", seed=1)
    out = tmp_path / "eng"
    engine = build_engines(export, out, "trt-rtx", ["360p"], compute_capabilities=["SM86"])[0].engine
    write_export(export, "float16", seed=2)  # new weights: new hashes
    with pytest.raises(EngineError, match="hash mismatch"):
        check_engine(engine, export)
    with pytest.raises(EngineError, match="different ONNX"):
        build_engines(export, out, "trt-rtx", ["360p"], compute_capabilities=["SM86"])
    rebuilt = build_engines(export, out, "trt-rtx", ["360p"], compute_capabilities=["SM86"], force=True)
    assert all(r.built for r in rebuilt)
    check_engine(engine, export, target="trt-rtx")


@needs_rtx
def test_check_engine_failures(built: tuple[Path, list], export16: Path, tmp_path: Path) -> None:
    out, results = built
    missing = tmp_path / "nope.trt-rtx.engine"
    with pytest.raises(EngineError, match=str(missing)):
        check_engine(missing, export16)
    with pytest.raises(EngineError, match="target 'trt-rtx', not 'trt'"):
        check_engine(results[0].engine, export16, target="trt")
    tampered = tmp_path / results[0].engine.name
    tampered.write_bytes(results[0].engine.read_bytes()[:-1] + b"\0")
    (tmp_path / results[0].sidecar.name).write_text(results[0].sidecar.read_text())
    with pytest.raises(EngineError, match="replaced or corrupt"):
        check_engine(tampered, export16)
    (tmp_path / results[0].sidecar.name).unlink()
    with pytest.raises(EngineError, match="no sidecar"):
        check_engine(tampered, export16)
    with pytest.raises(EngineError, match="refusing to overwrite"):
        build_engines(export16, tmp_path, "trt-rtx", ["360p"])


def test_export_inconsistencies(export16: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="no manifest.json"):
        build_engines(tmp_path, tmp_path / "eng", "trt-rtx")
    (tmp_path / "manifest.json").write_text(json.dumps({"preset": "x", "graphs": {}}))
    with pytest.raises(EngineError, match="malformed"):
        build_engines(tmp_path, tmp_path / "eng", "trt-rtx")
    with pytest.raises(EngineError, match="is for model 'synthetic', not 'ui2c'"):
        build_engines(export16, tmp_path / "eng", "trt-rtx", model="ui2c")
    copy = write_export(tmp_path / "copy", "float16")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["graphs"]["encoder"]["sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    if HAVE_RTX:
        with pytest.raises(EngineError, match="manifest says 000000000000"):
            build_engines(copy, tmp_path / "eng", "trt-rtx", ["360p"])
    for field, value in (("file", "../encoder.onnx"), ("file", "/etc/passwd"), ("name", "../../evil")):
        hostile = json.loads(json.dumps(manifest))
        if field == "file":
            hostile["graphs"]["encoder"]["file"] = value
        else:
            hostile["graphs"][value] = hostile["graphs"].pop("encoder")
        (copy / "manifest.json").write_text(json.dumps(hostile))
        with pytest.raises(EngineError, match="must be a plain name inside the export directory"):
            load_manifest(copy)


@needs_rtx
def test_parser_rejection_lists_errors(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 4, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 4, "H", "W"])
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="ui2c.custom")
    model = helper.make_model(
        helper.make_graph([node], "bad", [x], [y]),
        opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("ui2c.custom", 1)],
        ir_version=10,
    )
    onnx.save(model, tmp_path / "bad.onnx")
    spec = {"dtype": "float16", "shape": [1, 4, "H", "W"]}
    (tmp_path / "manifest.json").write_text(json.dumps({
        "preset": "bad", "precision": "fp16", "opset": 20,
        "graphs": {"bad": {"file": "bad.onnx", "sha256": file_sha256(tmp_path / "bad.onnx"),
                           "inputs": {"x": spec}, "outputs": {"y": spec}}},
    }))
    with pytest.raises(EngineError, match=r"parser rejected graph 'bad'.*\n.*NoSuchOp") as info:
        build_engines(tmp_path, tmp_path / "eng", "trt-rtx", ["360p"])
    assert "with 1 error(s)" in str(info.value)
    assert not (tmp_path / "eng" / "bad.trt-rtx.engine").exists()


def test_trt_target_without_tensorrt(export16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(EngineError, match="needs TensorRT.*pip install"):
        build_engines(export16, tmp_path, "trt", ["360p"])
    with pytest.raises(EngineError, match="unknown engine target"):
        build_engines(export16, tmp_path, "onnx", ["360p"])


class _FakeConfig:
    """Stands in for IBuilderConfig: accepts caches that start with ``good``."""

    def create_timing_cache(self, data: bytes) -> bytes:
        return data

    def set_timing_cache(self, cache: bytes, ignore_mismatch: bool) -> bool:
        self.attached = cache
        return cache == b"" or cache.startswith(b"good")


def test_timing_cache_reuse_and_fallback(tmp_path: Path) -> None:
    config, path = _FakeConfig(), tmp_path / "timing-trt.cache"
    assert load_timing_cache(config, path) == (b"", 0)
    path.write_bytes(b"good cache")
    assert load_timing_cache(config, path) == (b"good cache", 10) and config.attached == b"good cache"
    path.write_bytes(b"from another gpu")
    assert load_timing_cache(config, path) == (b"", 0) and config.attached == b""


@needs_rtx
def test_cli(export16: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "synthetic", "--onnx", str(export16), "-o", str(tmp_path), "--target", "trt-rtx",
            "--profiles", "360p", "--compute-capabilities", "SM86"]
    assert main(argv) == 0
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("encoder: ") and "built in" in lines[0] and "up to date" in lines[-1]
    with pytest.raises(EngineError, match="cannot target"):
        main(argv[:-1] + ["SM90"])


# --- runtime backend without a GPU -------------------------------------------------


def test_tensorrt_backend_without_gpu_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui2c.runtime.backends import tensorrt as backend_module

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(EngineError, match="needs TensorRT"):
        backend_module.TensorRTBackend(tmp_path, target="trt")
    if HAVE_RTX:  # the RTX library imports here, but there is no CUDA device
        with pytest.raises(EngineError, match="CUDA"):
            backend_module.TensorRTBackend(tmp_path, target="trt-rtx")


def test_synthetic_export_matches_manifest(export16: Path) -> None:
    import onnxruntime as ort

    manifest = load_manifest(export16)
    rng = np.random.default_rng(0)
    for graph in manifest.graphs.values():
        session = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])
        feed = {name: (rng.integers(0, 64, shape).astype(np.int32) if name == "qp"
                       else rng.standard_normal(shape).astype(np.float16))
                for name, shape in graph.input_shapes(368, 640).items()}
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
        for name, spec in graph.outputs.items():
            assert outputs[name].shape == resolve_shape(spec, 368, 640)
            assert np.isfinite(outputs[name]).all()
