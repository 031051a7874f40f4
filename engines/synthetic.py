"""A tiny synthetic export (ONNX graphs + manifest) shaped like the real one.

It exists so the engine toolchain can be exercised end to end - parse, build,
deserialize, run, compare with onnxruntime - on a machine without trained weights
and in seconds: the CPU tests build it for TensorRT-RTX and ``scripts/gpu_check.sh``
runs it through full TensorRT.  It uses the op patterns of the real stages that
TensorRT support hinges on: strided convolutions, pixel (un)shuffle
(``SpaceToDepth``/``DepthToSpace``), an ``int32`` Gather of a per-QP scale table and
a ``ceil``-sized output, with dynamic ``H``/``W`` dims named like the manifest.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ui2c.fileio import file_sha256

OPSET = 20
CTX_CHANNELS = 8
Y_CHANNELS = 16
QP_LEVELS = 64

_DTYPES = {"float32": (np.float32, TensorProto.FLOAT), "float16": (np.float16, TensorProto.FLOAT16)}

# name -> (inputs, outputs) in the manifest's shape grammar; the graphs below match.
SIGNATURES: dict[str, tuple[dict, dict]] = {
    "encoder": (
        {"pair": [1, 6, "H", "W"], "ctx": [1, CTX_CHANNELS, "H/8", "W/8"], "qp": [2]},
        {"y": [1, Y_CHANNELS, "H/16", "W/16"], "z": [1, 4, "ceil(H/32)", "ceil(W/32)"]},
    ),
    "decoder": ({"y": [1, Y_CHANNELS, "H/16", "W/16"]}, {"feat": [1, 4, "H/4", "W/4"]}),
}


class _Graph:
    """Accumulates nodes and seeded random weights of one graph."""

    def __init__(self, np_type: type, seed: int) -> None:
        self.np_type = np_type
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def conv(self, src: str, out: str, c_in: int, c_out: int, k: int = 3, stride: int = 1) -> str:
        """A 'same'-padded convolution with bias, He-scaled so activations stay O(1)."""
        w = self.rng.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k)
        b = 0.1 * self.rng.standard_normal(c_out)
        return self.node(
            "Conv",
            [src, self.const(f"{out}.w", w.astype(self.np_type)), self.const(f"{out}.b", b.astype(self.np_type))],
            out,
            strides=[stride, stride],
            pads=[k // 2] * 4,
        )


def _build(name: str, dtype: str, seed: int) -> onnx.ModelProto:
    np_type, onnx_type = _DTYPES[dtype]
    g = _Graph(np_type, seed)
    if name == "encoder":
        stem = g.conv("pair", "stem", 6, 4, stride=2)
        cat = g.node("Concat", [g.node("SpaceToDepth", [stem], "unshuffled", blocksize=4), "ctx"], "cat", axis=1)
        mixed = g.conv(cat, "mixed", 64 + CTX_CHANNELS, Y_CHANNELS, stride=2)
        table = g.const("qp_table", (0.5 + g.rng.random((QP_LEVELS, Y_CHANNELS))).astype(np_type))
        level = g.node("Gather", ["qp", g.const("qp_slot", np.array(0, np.int32))], "qp_level", axis=0)
        scale = g.node("Gather", [table, level], "qp_scale", axis=0)
        shape = g.const("scale_shape", np.array([1, Y_CHANNELS, 1, 1], np.int64))
        g.node("Mul", [mixed, g.node("Reshape", [scale, shape], "scale4d")], "y")
        g.conv("y", "z", Y_CHANNELS, 4, stride=2)
    else:
        wide = g.node("Relu", [g.conv("y", "wide", Y_CHANNELS, 64, k=1)], "wide_relu")
        g.conv(g.node("DepthToSpace", [wide], "shuffled", blocksize=4, mode="CRD"), "feat", 4, 4)
    inputs, outputs = SIGNATURES[name]

    def info(tensor: str, shape: list) -> onnx.ValueInfoProto:
        elem = TensorProto.INT32 if tensor == "qp" else onnx_type
        return helper.make_tensor_value_info(tensor, elem, shape)

    graph = helper.make_graph(
        g.nodes,
        f"synthetic_{name}",
        [info(k, v) for k, v in inputs.items()],
        [info(k, v) for k, v in outputs.items()],
        g.inits,
    )
    # IR 10 is what opset 20 was released with; newer onnx defaults to an IR version
    # that onnxruntime and the TensorRT parsers may not read yet.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return model


def write_export(out_dir: str | Path, dtype: str = "float16", seed: int = 0) -> Path:
    """Write ``encoder.onnx``, ``decoder.onnx`` and ``manifest.json`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    graphs = {}
    for index, (name, (inputs, outputs)) in enumerate(SIGNATURES.items()):
        path = out / f"{name}.onnx"
        onnx.save(_build(name, dtype, seed + index), path)

        def spec(tensors: dict) -> dict:
            return {k: {"dtype": "int32" if k == "qp" else dtype, "shape": v} for k, v in tensors.items()}

        graphs[name] = {
            "file": path.name,
            "sha256": file_sha256(path),
            "inputs": spec(inputs),
            "outputs": spec(outputs),
        }
    precision = "fp16" if dtype == "float16" else "fp32"
    manifest = {"preset": "synthetic", "precision": precision, "opset": OPSET, "graphs": graphs}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out
