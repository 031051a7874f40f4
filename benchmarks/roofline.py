"""How close the network stages come to this machine's dense GEMM throughput.

The peak is measured, not taken from a datasheet: an ``n``×``n`` float32 matrix
product through the same runtime the stages use (``torch.mm`` for the torch
backend, an ONNX ``MatMul`` in ONNX Runtime for onnxruntime), best of ``repeats``.
A stage's achieved rate is its MACs (the spec §0 counter, ``complexity.stage_macs``)
over its measured time per call; the fraction of peak says whether a stage is
compute-bound (near 1) or limited by memory traffic and small/depthwise kernels.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from ..models.presets import build_model
from .complexity import padded, stage_macs

GEMM_N = 1536


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def torch_gemm_gmacs(n: int = GEMM_N, repeats: int = 5) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    with torch.inference_mode():
        return n**3 / _best_seconds(lambda: torch.mm(a, b), repeats) / 1e9


def ort_gemm_gmacs(n: int = GEMM_N, repeats: int = 5) -> float:
    weight = numpy_helper.from_array(np.random.default_rng(0).random((n, n), dtype=np.float32), "B")
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "gemm",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).random((n, n), dtype=np.float32)
    return n**3 / _best_seconds(lambda: session.run(None, {"A": a}), repeats) / 1e9


PEAKS: dict[str, Callable[[], float]] = {"torch": torch_gemm_gmacs, "onnxruntime": ort_gemm_gmacs}


def roofline(run: dict, peak_gmacs: float) -> dict:
    """Achieved GMAC/s and fraction of ``peak_gmacs`` per network stage of an fps run.

    Time per call pools the encode and decode sides (both run most stages)."""
    with torch.device("meta"):
        model = build_model(run["model"])
    height, width = padded(run["height"]), padded(run["width"])
    pooled: dict[str, list[float]] = {}
    for side in ("encode", "decode"):
        for label, part in run[side]["parts"].items():
            if label.startswith("net:"):
                ms, calls = pooled.setdefault(label[4:], [0.0, 0])
                pooled[label[4:]] = [ms + part["ms"], calls + part["calls"]]
    stages, total_macs, total_s = {}, 0, 0.0
    for name, (ms, calls) in sorted(pooled.items()):
        macs = sum(stage_macs(model, name, height, width).values())
        seconds = ms / 1e3 / calls
        rate = macs / seconds / 1e9
        stages[name] = {"gmac_per_call": macs / 1e9, "ms_per_call": seconds * 1e3, "gmac_s": rate,
                        "fraction_of_peak": rate / peak_gmacs}
        total_macs, total_s = total_macs + macs * calls, total_s + ms / 1e3
    overall = total_macs / total_s / 1e9
    return {"peak_gmac_s": peak_gmacs, "gemm": f"{GEMM_N}x{GEMM_N} float32", "stages": stages,
            "network": {"gmac_s": overall, "fraction_of_peak": overall / peak_gmacs}}
