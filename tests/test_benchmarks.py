"""Benchmarks: complexity against independent figures, ONNX vs PyTorch MAC counts,
and the speed benchmark's JSON (structure and consistency, never timings)."""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from ui2c.benchmarks.cli import add_cli
from ui2c.benchmarks.onnx_macs import graph_macs
from ui2c.benchmarks.table2 import table2_row
from ui2c.errors import EngineError, UsageError

# Spec §0 (measured on the official DCVC-RT code) and the UI2C paper's Table 2.
DMC_PARAMS, DMCI_PARAMS = 20_691_456, 45_651_314
UI2C_PAPER = {"params": 46.7e6, "enc": 157.0, "dec": 233.0}
P_STAGES = {"context", "encoder", "prior", "spatial_prior", "decoder"}


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Exports go to a fresh cache, so the test checks what the exporter writes today."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UI2C_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def bench(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


def test_dcvc_rt_matches_spec_figures():
    row = table2_row("dcvc-rt", 1920, 1080, onnx=False)
    assert row.params == DMC_PARAMS + DMCI_PARAMS
    assert row.enc_kmacs_px == pytest.approx(142.4, abs=0.05)  # per 1920x1080 pixel
    assert row.dec_kmacs_px == pytest.approx(166.8, abs=0.05)
    per_padded = 1080 / 1088
    assert row.enc_kmacs_px * per_padded == pytest.approx(141.3, abs=0.05)  # per 1920x1088 pixel
    assert row.dec_kmacs_px * per_padded == pytest.approx(165.5, abs=0.05)
    assert (row.latent_ch, row.dec_steps) == (128, 2)


def test_ui2c_within_three_percent_of_table2():
    row = table2_row("ui2c", 1920, 1080, onnx=False)
    assert row.params == pytest.approx(UI2C_PAPER["params"], rel=0.03)
    assert row.enc_kmacs_px == pytest.approx(UI2C_PAPER["enc"], rel=0.03)
    assert row.dec_kmacs_px == pytest.approx(UI2C_PAPER["dec"], rel=0.03)
    assert (row.latent_ch, row.dec_steps) == (64, 1)


def test_graph_macs_hand_counted():
    """A Conv (grouped, strided, padded), a MatMul and a Gemm with hand-computed MACs."""
    rng = np.random.default_rng(0)
    init = lambda name, *shape: numpy_helper.from_array(rng.random(shape, dtype=np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2], group=2),
        helper.make_node("Reshape", ["c", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "m"], ["mm"]),
        helper.make_node("Gemm", ["mm", "g"], ["out"], transB=1),
    ]
    shape = numpy_helper.from_array(np.array([8, -1], dtype=np.int64), "shape")
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "H", "W"])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              [init("w", 8, 2, 3, 3), shape, init("m", 60, 5), init("g", 7, 5)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    # x 1x4x20x12 -> conv out 1x8x10x6 (each output reads 2 channels x 3x3) -> 8x60 @ 60x5 -> 8x5 @ 5x7
    expected = 8 * 10 * 6 * 2 * 9 + 8 * 5 * 60 + 8 * 7 * 5
    assert graph_macs(model, 20, 12) == expected


def test_onnx_count_equals_pytorch_count_per_stage(tmp_path):
    """ui2c-s only: exporting every preset would take minutes (RESULTS.md has all three)."""
    out = tmp_path / "complexity.json"
    assert bench("complexity", "--models", "ui2c-s", "--size", "320x192", "--json", str(out)) == 0
    [row] = json.loads(out.read_text())
    assert row["model"] == "ui2c-s"
    assert set(row["stage_macs"]) == P_STAGES | {"adaptor", "recon"}
    for graph, counts in row["stage_macs"].items():
        assert counts["onnx"] == counts["torch"] > 0, graph
    assert row["onnx_enc_kmacs_px"] == pytest.approx(row["enc_kmacs_px"], rel=1e-12)
    assert row["onnx_dec_kmacs_px"] == pytest.approx(row["dec_kmacs_px"], rel=1e-12)


def check_run(run: dict, frames: int) -> None:
    """Frame counts, disjoint parts within the total, stages where they belong,
    the encoder's rANS overlapped on its worker and the decoder's on the critical path."""
    units = frames // 2
    for side, stages in (("encode", P_STAGES), ("decode", P_STAGES - {"encoder"} | {"recon"})):
        result = run[side]
        assert result["frames"] == frames
        parts = result["parts"]
        assert {k[4:] for k in parts if k.startswith("net:")} == stages
        for stage in stages:  # one call per pair
            assert parts[f"net:{stage}"]["calls"] == units
        rans = (result["overlapped"] if side == "encode" else parts)["entropy:rANS"]
        # encode: the z and y streams; decode: decoder, next, finish of z, and of y with a next per step
        assert rans["calls"] == (2 if side == "encode" else 7) * units
        # "other" is defined as the remainder, so only the named parts are evidence: timed
        # independently, they must fit inside the wall-clock total (disjoint, none counted twice).
        named = sum(p["ms"] for name, p in parts.items() if name != "other")
        assert named <= result["total_ms"] * (1 + 1e-6)
        assert all(p["ms"] >= 0 for p in parts.values())
        assert result["fps"] == pytest.approx(frames / result["total_ms"] * 1e3)
    assert "entropy:rANS" not in run["encode"]["parts"]
    assert set(run["network_only_fps"]) == {"encode", "decode"} and min(run["network_only_fps"].values()) > 0
    assert run["stream_bytes"] > 0 and run["memory"]["peak_rss_mib"] > 0


def test_fps_compare_json_is_consistent(tmp_path):
    out, md = tmp_path / "fps.json", tmp_path / "RESULTS.md"
    md.write_text("# Results\n\n## Entropy coder\nhand-written section\n")
    argv = ["fps", "--model", "ui2c-s", "--backend", "torch", "--size", "128x64", "--frames", "4", "--compare",
            "--repeats", "1", "--json", str(out), "--md", str(md)]
    assert bench(*argv) == 0
    data = json.loads(out.read_text())
    assert [r["backend"] for r in data["runs"]] == ["torch", "onnxruntime"]
    for run in data["runs"]:
        check_run(run, frames=4)
        roof = data["roofline"][run["backend"]]
        assert roof["peak_gmac_s"] > 0 and set(roof["stages"]) == P_STAGES | {"recon"}
    compare = data["compare"]
    assert set(compare["dcvc-rt"]) == {"P", "I"}
    assert set(compare["dcvc-rt"]["I"]["stage_ms_per_call"]) == {
        "encoder", "prior", "decoder", *(f"spatial_prior_{k}" for k in (1, 2, 3))}
    assert len(compare["ratios"]) == 6 and all(math.isfinite(v) and v > 0 for v in compare["ratios"].values())
    assert bench(*argv[:-4], "--md", str(md)) == 0  # rerun replaces the block, keeps the rest
    text = md.read_text()
    assert "hand-written section" in text
    assert text.count("<!-- bench:fps-ui2c-s-torch-128x64 -->") == 1


def test_tensorrt_without_gpu_is_a_clear_error():
    with pytest.raises(EngineError, match="(?i)gpu|cuda|tensorrt"):
        bench("fps", "--backend", "tensorrt", "--size", "128x64", "--frames", "4")


def test_compare_is_refused_beside_a_gpu_or_engine_run():
    """Its DCVC-RT estimate and second backend run on the CPU: beside a CUDA run they would
    compare a GPU with a CPU (refused before anything runs)."""
    for extra in (["--device", "cuda"], ["--backend", "aoti"]):
        with pytest.raises(UsageError, match="--compare"):
            bench("fps", "--size", "128x64", "--frames", "4", "--compare", "dcvc-rt", *extra)


def test_entropy_per_element_counts_the_encoders_overlapped_rans():
    from ui2c.benchmarks.compare import entropy_ms_per_element

    side = {"frames": 4, "parts": {"entropy:latent ops": {"ms": 2.0}}, "overlapped": {"entropy:rANS": {"ms": 6.0}}}
    run = {"encode": side, "frames_per_unit": 2, "latent_elements_per_unit": 100}
    assert entropy_ms_per_element(run, "encode") == pytest.approx((2.0 + 6.0) / 2 / 100)
