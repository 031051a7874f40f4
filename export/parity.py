"""Parity of exported graphs with PyTorch, measured with Polygraphy.

For every graph of an export, a :class:`TorchStageRunner` (the fp32 PyTorch stage,
the golden) and Polygraphy's ``OnnxrtRunner`` (ONNX Runtime CPU) run the same
realistic feeds (:mod:`.feeds`) through ``Comparator.run``; ``Comparator.compare_accuracy``
does the comparing.  For an FP16 export the feeds are cast to float16 for *both*
runners (the golden upcasts them to fp32), so the error measured is the graph's own,
not the rounding of its inputs.

``python -m ui2c.export.parity --model ui2c-s --out benchmarks/results/onnx_fp16_error.md``
exports the preset in both precisions and writes the FP16 error report (+ ``.json``).
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from polygraphy.backend.base import BaseRunner
from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
from polygraphy.common import TensorMetadata
from polygraphy.comparator import Comparator, PsnrCompareFunc, SimpleCompareFunc, SnrCompareFunc
from polygraphy.logger import G_LOGGER
from torch import nn

from ..models.checkpoint import weights_fingerprint
from ..models.stages import Stage
from ..shipped import default_weights
from .cli import read_weights
from .exporter import StateDict, build_networks, export_model, graph_stages
from .feeds import DEFAULT_QP, Feed, clip_frames, model_feeds

FP32_ATOL = 1e-4
GOLDEN, GRAPH = "torch-fp32", "onnxruntime-cpu"


class TorchStageRunner(BaseRunner):
    """The golden: one stage of the fp32 PyTorch model behind Polygraphy's runner API.

    Its input metadata is the graph's (float16 inputs for an FP16 export) so that both
    runners accept the same feeds; float inputs are upcast to fp32 before running."""

    def __init__(self, stage: Stage, input_dtype: np.dtype, name: str = GOLDEN):
        super().__init__(name=name)
        self.stage = stage
        self.input_dtype = np.dtype(input_dtype)

    def get_input_metadata_impl(self) -> TensorMetadata:
        meta = TensorMetadata()
        for spec in self.stage.inputs:
            dtype = np.dtype(np.int32) if spec.dtype == "int32" else self.input_dtype
            meta.add(spec.name, dtype=dtype, shape=[d if isinstance(d, int) else None for d in spec.shape])
        return meta

    def infer_impl(self, feed_dict: Mapping[str, np.ndarray]) -> OrderedDict:
        inputs = [torch.from_numpy(np.asarray(feed_dict[s.name])) for s in self.stage.inputs]
        inputs = [x.float() if x.is_floating_point() else x for x in inputs]
        start = time.perf_counter()
        with torch.no_grad():
            outputs = self.stage.module(*inputs)
        self.inference_time = time.perf_counter() - start
        return OrderedDict((s.name, o.numpy()) for s, o in zip(self.stage.outputs, outputs))


def load_export(manifest_path: Path, weights: StateDict | None = None,
                intra_weights: StateDict | None = None) -> dict[str, nn.Module]:
    """The fp32 torch networks an export was made from (``weights`` as given to
    ``export_model``; None means the preset's seeded random weights).

    The manifest's weights fingerprints must match, so parity never compares a graph
    against other weights than it carries."""
    manifest = json.loads(Path(manifest_path).read_text())
    networks = build_networks(manifest["preset"], weights, intra_weights)
    for role, net in networks.items():
        recorded = manifest["weights"][role]["fingerprint"]
        if weights_fingerprint(net) != recorded:
            raise ValueError(f"{manifest_path}: the {role} graphs carry weights {recorded}, "
                             f"not the given ones ({weights_fingerprint(net)})")
    return networks


def run_graphs(manifest_path: Path, networks: Mapping[str, nn.Module],
               feeds: Mapping[str, Sequence[Feed]]) -> dict[str, object]:
    """``Comparator.run`` of golden and ONNX Runtime on every graph that has feeds."""
    manifest = json.loads(Path(manifest_path).read_text())
    dtype = np.float16 if manifest["precision"] == "fp16" else np.float32
    stages = graph_stages(networks)
    results = {}
    for name, entry in manifest["graphs"].items():
        if name not in feeds:
            continue
        cast = [{k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in f.items()} for f in feeds[name]]
        graph = OnnxrtRunner(SessionFromOnnx(str(Path(manifest_path).parent / entry["file"])), name=GRAPH)
        results[name] = Comparator.run([TorchStageRunner(stages[name][1], dtype), graph], data_loader=cast)
    return results


def check_parity(manifest_path: Path, networks: Mapping[str, nn.Module], feeds: Mapping[str, Sequence[Feed]],
                 atol: float = FP32_ATOL) -> dict[str, object]:
    """Per graph, Polygraphy's verdict that every output element is within ``atol``
    of the golden (rtol 0).  ``bool(result)`` is the pass/fail of a graph."""
    compare = SimpleCompareFunc(atol=atol, rtol=0.0, check_error_stat="elemwise")
    return {name: Comparator.compare_accuracy(run, compare_func=compare)
            for name, run in run_graphs(manifest_path, networks, feeds).items()}


def _worst(result, field: str, pick) -> dict[str, float]:
    """Per output, ``pick`` (max or min) of one metric over the iterations of a
    single-pair ``AccuracyResult``."""
    iterations = next(iter(result.values()))
    return {out: pick(getattr(it[out], field) for it in iterations) for out in iterations[0]}


def error_report(manifest_path: Path, networks: Mapping[str, nn.Module],
                 feeds: Mapping[str, Sequence[Feed]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per graph and output: worst max/mean abs error, SNR and PSNR over the feeds.

    Thresholds are irrelevant here (every metric is recorded), so they are left at
    values that always pass to keep the log quiet."""
    funcs = [SimpleCompareFunc(atol=math.inf, rtol=math.inf, check_error_stat="max"),
             SnrCompareFunc(snr_threshold=-math.inf), PsnrCompareFunc(psnr_threshold=-math.inf)]
    report = {}
    for name, run in run_graphs(manifest_path, networks, feeds).items():
        simple, snr, psnr = Comparator.compare_accuracy(run, compare_func=funcs)
        columns = {"max_abs": _worst(simple, "max_absdiff", max), "mean_abs": _worst(simple, "mean_absdiff", max),
                   "snr_db": _worst(snr, "snr", min), "psnr_db": _worst(psnr, "psnr", min)}
        report[name] = {out: {k: float(v[out]) for k, v in columns.items()} for out in columns["max_abs"]}
    return report


def format_report(meta: dict, fp16: dict, fp32: dict) -> str:
    lines = [
        f"# ONNX FP16 error: {meta['preset']}",
        "",
        f"Generated by `python -m ui2c.export.parity` ({meta['feeds']}).",
        "Per graph output, the worst case over all feeds of the ONNX Runtime CPU graph vs the fp32",
        "PyTorch stage on the same (fp16-rounded) inputs; SNR and PSNR are Polygraphy's (signal =",
        "golden, PSNR peak = golden max).  The FP32 graph's max abs error is listed for scale.",
        "",
        "| graph | output | fp16 max abs | fp16 mean abs | fp16 SNR dB | fp16 PSNR dB | fp32 max abs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for graph, outputs in fp16.items():
        for out, m in outputs.items():
            lines.append(f"| {graph} | {out} | {m['max_abs']:.3g} | {m['mean_abs']:.3g} | {m['snr_db']:.1f} "
                         f"| {m['psnr_db']:.1f} | {fp32[graph][out]['max_abs']:.2g} |")
    lines += [
        "",
        "`z_hat` is integer (rounded in the graph): its error is the fraction of elements whose",
        "rounding flips by 1 (mean abs), a different but valid coding decision, since the encoder",
        "transmits `z_hat` and the decoder never recomputes it.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui2c.export.parity", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ui2c-s")
    parser.add_argument("--out", type=Path, required=True, help="report path (.md; a .json is written beside it)")
    parser.add_argument("--weights", type=Path, help="weights file (default: the preset's shipped weights, else random)")
    parser.add_argument("--frames", type=int, default=4, help="clip frames to code (default: %(default)s)")
    args = parser.parse_args(argv)
    G_LOGGER.module_severity = G_LOGGER.WARNING
    weights_path = args.weights or default_weights(args.model)
    weights = read_weights(args.model, weights_path)
    frames = clip_frames(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        reports = {}
        for precision in ("fp32", "fp16"):
            manifest = export_model(args.model, Path(tmp) / precision, precision, weights=weights)
            networks = load_export(manifest, weights)
            reports[precision] = error_report(manifest, networks, model_feeds(networks, frames))
        fingerprint = json.loads(manifest.read_text())["weights"]["inter"]["fingerprint"]
    height, width = frames[0].shape[1:]
    source = weights_path.name if weights_path else "random, seed 0"
    meta = {"preset": args.model, "weights": {"source": source, "fingerprint": fingerprint},
            "feeds": f"{args.frames} frames of the demo clip padded to {width}x{height}, qp {DEFAULT_QP}, "
                     f"weights {source} (fingerprint {fingerprint})"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(format_report(meta, reports["fp16"], reports["fp32"]))
    args.out.with_suffix(".json").write_text(json.dumps({**meta, **reports}, indent=2) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
