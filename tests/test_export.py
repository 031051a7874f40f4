"""ONNX export: manifest contract, dynamic shapes, strongly typed FP16, and parity
with PyTorch measured by Polygraphy on real frames of the demo clip.

Exports are made once per module (they dominate the runtime); ``ui2c-s`` goes
through the CLI so the command is covered by the same artefacts.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from ui2c.engines.manifest import load_manifest, verified_sha256
from ui2c.errors import OutputError
from ui2c.export import export_model
from ui2c.export.cli import main as export_cli, read_weights
from ui2c.export.exporter import build_networks, graph_stages
from ui2c.export.feeds import clip_frames, model_feeds
from ui2c.export.parity import check_parity, error_report, load_export
from ui2c.models.presets import build_intra_model, build_model
from ui2c.models.stages import resolve_shape

FLOAT_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.DOUBLE: "float64"}


@pytest.fixture(scope="module")
def ui2c_s(tmp_path_factory) -> dict[str, Path]:
    """``ui2c export --model ui2c-s --precision fp32,fp16``: manifest path per precision."""
    out = tmp_path_factory.mktemp("ui2c-s")
    assert export_cli(["--model", "ui2c-s", "-o", str(out), "--precision", "fp32,fp16"]) == 0
    return {p: out / p / "manifest.json" for p in ("fp32", "fp16")}


@pytest.fixture(scope="module")
def ui2c_s_nets(ui2c_s) -> dict:
    """The torch networks the CLI exported (shipped weights if present, else seeded)."""
    return load_export(ui2c_s["fp32"], read_weights("ui2c-s", None))


@pytest.fixture(scope="module")
def dcvc_rt(tmp_path_factory) -> Path:
    return export_model("dcvc-rt", tmp_path_factory.mktemp("dcvc-rt"), "fp32")


def _all_float_types(model: onnx.ModelProto) -> set[str]:
    """Every floating dtype the graph declares: I/O, weights, Constant values and Cast targets."""
    g = model.graph
    types = {v.type.tensor_type.elem_type for v in [*g.input, *g.output]}
    types |= {t.data_type for t in g.initializer}
    for node in g.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.type == onnx.AttributeProto.TENSOR:
                types.add(attr.t.data_type)
            if node.op_type == "Cast" and attr.name == "to":
                types.add(attr.i)
    return {FLOAT_TYPES[t] for t in types if t in FLOAT_TYPES}


# --- manifest and graph structure ---------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_manifest_matches_stages_and_builder_reads_it(ui2c_s, precision):
    manifest = load_manifest(ui2c_s[precision].parent)  # the engine builder's own parser
    raw = json.loads(ui2c_s[precision].read_text())
    stages = build_model("ui2c-s").stages()
    float_dtype = {"fp32": "float32", "fp16": "float16"}[precision]
    assert (manifest.preset, manifest.precision, manifest.opset) == ("ui2c-s", precision, 20)
    assert list(manifest.graphs) == list(stages)
    assert raw["exporter"]["torch"] == torch.__version__ and raw["frames_per_unit"] == 2
    for name, stage in stages.items():
        graph, entry = manifest.graphs[name], raw["graphs"][name]
        verified_sha256(graph)
        assert (entry["encode_calls"], entry["decode_calls"], entry["note"]) == (stage.encode_calls, stage.decode_calls, stage.note)
        for specs, tensors in ((stage.inputs, graph.inputs), (stage.outputs, graph.outputs)):
            assert list(tensors) == [s.name for s in specs]
            for spec in specs:
                assert tensors[spec.name].shape == spec.shape
                assert tensors[spec.name].dtype == ("int32" if spec.dtype == "int32" else float_dtype)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_graph_dims_are_the_manifest_expressions(ui2c_s, precision):
    manifest = load_manifest(ui2c_s[precision].parent)
    for graph in manifest.graphs.values():
        model = onnx.load(str(graph.path), load_external_data=False)
        for values, tensors in ((model.graph.input, graph.inputs), (model.graph.output, graph.outputs)):
            for value in values:
                dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
                assert tuple(dims) == tensors[value.name].shape, (graph.name, value.name)


def test_fp16_graphs_are_strongly_typed(ui2c_s):
    for graph in load_manifest(ui2c_s["fp16"].parent).graphs.values():
        model = onnx.load(str(graph.path))
        assert _all_float_types(model) == {"float16"}, graph.name
        qp = [v for v in model.graph.input if v.name == "qp"]
        assert all(v.type.tensor_type.elem_type == onnx.TensorProto.INT32 for v in qp)
    fp32 = onnx.load(str(ui2c_s["fp32"].parent / "decoder.onnx"))
    assert _all_float_types(fp32) == {"float32"}


def test_export_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        export_model("ui2c-s", tmp_path, "int8")
    with pytest.raises(ValueError, match="unknown stages"):
        export_model("ui2c-s", tmp_path, stages=["intra_encoder"])
    with pytest.raises(SystemExit):
        export_cli(["--model", "ui2c-s", "-o", str(tmp_path), "--precision", "fp32,bf16"])
    with pytest.raises(SystemExit):
        export_cli(["--model", "ui2c-s", "-o", str(tmp_path), "--opset", "0"])
    assert not (tmp_path / "manifest.json").exists()
    (tmp_path / "fp16").mkdir()
    (tmp_path / "fp16" / "manifest.json").write_text("the user's export")
    with pytest.raises(OutputError, match="fp16 exists; pass -y"):  # refused before exporting fp32 either
        export_cli(["--model", "ui2c-s", "-o", str(tmp_path), "--precision", "fp32,fp16"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp16"]
    assert (tmp_path / "fp16" / "manifest.json").read_text() == "the user's export"


def test_stage_subset_and_given_weights(tmp_path):
    """``stages`` limits the graphs; a state dict is exported and fingerprinted, and
    parity refuses to compare the graphs against other weights."""
    torch.manual_seed(1)
    state = build_model("ui2c-s").state_dict()
    path = export_model("ui2c-s", tmp_path, "fp32", weights=state, stages=["spatial_prior"])
    raw = json.loads(path.read_text())
    assert list(raw["graphs"]) == ["spatial_prior"] and raw["weights"]["inter"]["source"] == "state_dict"
    with pytest.raises(ValueError, match="weights"):
        load_export(path)
    nets = load_export(path, state)
    feeds = model_feeds(nets, clip_frames(2, crop=(64, 64)))
    assert all(check_parity(path, nets, {"spatial_prior": feeds["spatial_prior"]}).values())


# --- parity (Polygraphy) ----------------------------------------------------------


# (crop, scale): the clip padded to 320x192, cropped to 320x176 (H/16 = 11, not a
# multiple of 4) and upscaled to 640x368 (H/16 = 23): the graphs must stay dynamic.
SIZES = {"320x192": (None, 1), "320x176": ((176, 320), 1), "640x368": (None, 2)}


@pytest.mark.parametrize("size", list(SIZES))
def test_ui2c_s_fp32_parity(ui2c_s, ui2c_s_nets, size):
    crop, scale = SIZES[size]
    frames = clip_frames(4 if size == "320x192" else 2, crop=crop, scale=scale)
    assert "x".join(map(str, frames[0].shape[:0:-1])) == size
    feeds = model_feeds(ui2c_s_nets, frames)
    results = check_parity(ui2c_s["fp32"], ui2c_s_nets, feeds)
    assert list(results) == list(graph_stages(ui2c_s_nets))
    failed = [name for name, ok in results.items() if not ok]
    assert not failed, f"graphs beyond atol 1e-4 at {size}: {failed}"


def test_ui2c_s_fp16_within_error_bound(ui2c_s, ui2c_s_nets):
    """FP16 graphs run in ONNX Runtime CPU at 320x176 (not the trace size; the fp32
    test covers the others) and stay close to the fp32 golden: SNR > 40 dB on every
    float output, while the integer ``z_hat`` may flip a rounding by 1 on a few elements."""
    manifest = load_manifest(ui2c_s["fp16"].parent)
    frames = clip_frames(2, crop=SIZES["320x176"][0])
    report = error_report(ui2c_s["fp16"], ui2c_s_nets, model_feeds(ui2c_s_nets, frames))
    assert list(report) == list(manifest.graphs)
    for name, outputs in report.items():
        assert list(outputs) == list(manifest.graphs[name].outputs)
        for out, metrics in outputs.items():
            if out == "z_hat":
                assert metrics["max_abs"] <= 1 and metrics["mean_abs"] < 0.01, metrics
            else:
                assert metrics["snr_db"] > 40, (name, out, metrics)


def test_parity_catches_a_wrong_graph(ui2c_s, ui2c_s_nets):
    """A golden whose decoder weights differ by 1e-3 must fail the decoder only."""
    nets = build_networks("ui2c-s", read_weights("ui2c-s", None))
    with torch.no_grad():
        nets["inter"].decoder.conv2.bias.add_(1e-3)
    feeds = model_feeds(nets, clip_frames(2, crop=(64, 128)))
    results = check_parity(ui2c_s["fp32"], nets, {k: feeds[k] for k in ("decoder", "spatial_prior")})
    assert not results["decoder"] and results["spatial_prior"]


def test_dcvc_rt_p_and_i_graphs_export_and_match(dcvc_rt):
    raw = json.loads(dcvc_rt.read_text())
    intra = {f"intra_{n}" for n in build_intra_model("dcvc-rt").stages()}
    assert set(raw["graphs"]) == set(build_model("dcvc-rt").stages()) | intra
    assert {raw["graphs"][n]["model"] for n in intra} == {"intra"} and set(raw["weights"]) == {"inter", "intra"}
    assert raw["graphs"]["encoder"]["inputs"]["qp"] == {"dtype": "int32", "shape": [1]}
    nets = load_export(dcvc_rt)
    feeds = model_feeds(nets, clip_frames(2, crop=(64, 128)))
    results = check_parity(dcvc_rt, nets, feeds)
    assert set(results) == set(raw["graphs"])
    assert all(results.values()), [n for n, ok in results.items() if not ok]


def test_ui2c_graph_set_exports(tmp_path):
    """The paper-size preset: every stage exports (fp16) with the manifest's widths
    and runs in ONNX Runtime at a small size."""
    import onnxruntime as ort

    path = export_model("ui2c", tmp_path, "fp16")
    manifest = load_manifest(tmp_path)
    assert list(manifest.graphs) == list(build_model("ui2c").stages())
    assert manifest.graphs["encoder"].inputs["ctx"].shape == (1, 400, "H/8", "W/8")
    graph = manifest.graphs["prior"]
    feed = {n: np.random.default_rng(0).random(resolve_shape(t, 80, 144), np.float32).astype(np.float16)
            for n, t in graph.inputs.items()}
    outs = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"]).run(None, feed)
    assert [o.shape for o in outs] == [resolve_shape(t, 80, 144) for t in graph.outputs.values()]
    assert path == tmp_path / "manifest.json"


def _fake_export(folder: Path, who: str) -> None:
    """An export's manifest with one graph file and its real sha256, tagged ``who``."""
    (folder / "g.onnx").write_bytes(who.encode())
    graphs = {"g": {"file": "g.onnx", "sha256": hashlib.sha256(who.encode()).hexdigest()}}
    (folder / "manifest.json").write_text(json.dumps({"who": who, "graphs": graphs}))


def _who(manifest: Path) -> str:
    return json.loads(manifest.read_text())["who"]


def test_cached_export_survives_a_lost_race(tmp_path, monkeypatch):
    """Two first runs export the same key: each works in its own staging directory and
    the loser keeps the winner's complete export; no staging directory is left."""
    from ui2c.export import cache

    out = tmp_path / "onnx" / "key"

    def export_while_another_run_wins(preset, staging, precision, weights):
        _fake_export(Path(staging), "loser")
        out.mkdir()
        _fake_export(out, "winner")

    monkeypatch.setattr(cache, "export_model", export_while_another_run_wins)
    assert _who(cache.cached_export(out, "ui2c-s", "fp32", {})) == "winner"
    assert [p.name for p in out.parent.iterdir()] == ["key"]

    fresh = tmp_path / "onnx" / "fresh"
    monkeypatch.setattr(cache, "export_model", lambda p, staging, precision, weights: _fake_export(Path(staging), "mine"))
    assert _who(cache.cached_export(fresh, "ui2c-s", "fp32", {})) == "mine"
    assert sorted(p.name for p in out.parent.iterdir()) == ["fresh", "key"]


def test_a_damaged_cached_export_is_exported_again_not_loaded(tmp_path, monkeypatch):
    from ui2c.export import cache

    out = tmp_path / "onnx" / "key"
    out.mkdir(parents=True)
    _fake_export(out, "old")
    monkeypatch.setattr(cache, "export_model", lambda p, staging, precision, weights: _fake_export(Path(staging), "new"))
    assert _who(cache.cached_export(out, "ui2c-s", "fp32", {})) == "old"  # intact: reused
    (out / "g.onnx").write_bytes(b"truncat")
    assert _who(cache.cached_export(out, "ui2c-s", "fp32", {})) == "new"
    assert [p.name for p in out.parent.iterdir()] == ["key"]  # nothing set aside is left


def test_export_cache_key_names_the_exporter_versions(monkeypatch):
    from ui2c.export import cache

    before = cache.export_dir("ui2c-s", "w", "fp32")
    monkeypatch.setattr(cache.torch, "__version__", "0.0.0-other")
    assert cache.export_dir("ui2c-s", "w", "fp32") != before


def test_export_does_not_import_the_codec_model():
    """The runtime runs exports (load_codec → ui2c.export.cache), so the exporter must not
    import ``ui2c.runtime.model`` back (it used to, for the shipped weights' path)."""
    code = ("import sys, ui2c.export.cache, ui2c.export.cli, ui2c.export.parity; "
            "print('ui2c.runtime.model' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
