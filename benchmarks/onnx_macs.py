"""MACs counted from exported ONNX graphs, independently of the PyTorch hooks.

``complexity.py`` counts convolutions while PyTorch runs the stages; this module
reads what the exporter actually wrote, so a layer lost, duplicated or reshaped in
export shows up as a difference between the two counts.

The graphs have dynamic frame sizes and compute some shapes at run time (pixel
unshuffle's reshape, the replicate pad of y to a multiple of 4).  ONNX's own shape
inference cannot follow that integer arithmetic, so one pass in topological order
does two things: nodes whose inputs are all known *values* (small initializers,
``Shape`` outputs and what is computed from them) are evaluated with ONNX's
reference evaluator (constant folding of the shape arithmetic; no float tensor of
the frame size is ever computed), and every other node gets its output types from
ONNX's per-node shape inference, fed with those values.  Counting rule as in spec §0:
Conv = output elements × C_in/groups × k_h × k_w; ConvTranspose = input elements ×
C_out/groups × k_h × k_w; MatMul and Gemm = output elements × the reduced dimension.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TypeProto, defs, helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from ..export import cache
from ..models.checkpoint import load_preset, weights_fingerprint
from ..models.stages import resolve_dim

# Initializers up to this size are shape constants worth folding; weights are larger.
MAX_FOLD_ELEMENTS = 4096


def export_dir(preset: str) -> Path:
    """The fp32 export of ``preset`` (shipped weights, else seeded random ones) in the
    runtime's export cache, made on first use.

    The very export ``load_codec`` runs on for these weights, so the speed benchmark and
    the MAC count share it, and keyed like it by the network and exporter code: a
    changed network is exported again, never counted from stale graphs."""
    network, _ = load_preset(preset, allow_random=True)
    out = cache.export_dir(preset, weights_fingerprint(network), "fp32")
    return cache.cached_export(out, preset, "fp32", network.state_dict()).parent


def _fixed_input_types(graph: onnx.GraphProto, height: int, width: int) -> dict[str, TypeProto]:
    types = {}
    for value in graph.input:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else resolve_dim(d.dim_param, height, width)
                for d in tensor.shape.dim]
        types[value.name] = helper.make_tensor_type_proto(tensor.elem_type, dims)
    return types


def _dims(t: TypeProto) -> list[int]:
    dims = t.tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        raise ValueError(f"unresolved shape {[str(d).strip() for d in dims]}")
    return [d.dim_value for d in dims]


def _evaluate(node: onnx.NodeProto, values: dict[str, np.ndarray], types: dict[str, TypeProto],
              opsets) -> list[np.ndarray]:
    """Run one shape-arithmetic node on known values."""
    if node.op_type == "Shape":
        attrs = {a.name: a.i for a in node.attribute}
        shape = _dims(types[node.input[0]])
        return [np.array(shape[attrs.get("start", 0):attrs.get("end", len(shape))], dtype=np.int64)]
    inputs = [i for i in node.input if i]
    graph = helper.make_graph(
        [node], "fold", [helper.make_tensor_value_info(i, types[i].tensor_type.elem_type, None) for i in inputs],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output])
    return ReferenceEvaluator(helper.make_model(graph, opset_imports=opsets)).run(None, {i: values[i] for i in inputs})


def _node_macs(node: onnx.NodeProto, types: dict[str, TypeProto]) -> int:
    if node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
        return 0
    out, a, b = _dims(types[node.output[0]]), _dims(types[node.input[0]]), _dims(types[node.input[1]])
    if node.op_type == "Conv":  # weight (C_out, C_in/groups, kh, kw)
        return math.prod(out) * math.prod(b[1:])
    if node.op_type == "ConvTranspose":  # weight (C_in, C_out/groups, kh, kw)
        return math.prod(a) * math.prod(b[1:])
    trans_a = any(attr.name == "transA" and attr.i for attr in node.attribute)
    reduced = a[0] if node.op_type == "Gemm" and trans_a else a[-1]
    return math.prod(out) * reduced


def graph_macs(model: onnx.ModelProto, height: int, width: int) -> int:
    """MACs of one graph at the padded size ``height`` × ``width`` (see module docstring)."""
    graph = model.graph
    opsets = list(model.opset_import)
    opset_of = {o.domain: o.version for o in opsets}
    types = _fixed_input_types(graph, height, width)
    values: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        types[init.name] = helper.make_tensor_type_proto(init.data_type, list(init.dims))
        if math.prod(init.dims) <= MAX_FOLD_ELEMENTS:
            values[init.name] = numpy_helper.to_array(init)
    macs = 0
    for node in graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type == "Shape" or all(i in values for i in inputs):
            for name, value in zip(node.output, _evaluate(node, values, types, opsets)):
                value = np.asarray(value)
                values[name] = value
                types[name] = helper.make_tensor_type_proto(helper.np_dtype_to_tensor_dtype(value.dtype),
                                                            list(value.shape))
            continue
        schema = defs.get_schema(node.op_type, opset_of[node.domain], node.domain)
        known = {i: numpy_helper.from_array(values[i], i) for i in inputs if i in values}
        types.update(shape_inference.infer_node_outputs(schema, node, {i: types[i] for i in inputs}, known))
        macs += _node_macs(node, types)
    return macs


def export_macs(manifest_path: Path, height: int, width: int) -> dict[str, int]:
    """MACs of every graph in an export, at the padded size; keyed by graph name."""
    manifest = json.loads(Path(manifest_path).read_text())
    root = Path(manifest_path).parent
    return {name: graph_macs(onnx.load(str(root / g["file"])), height, width)
            for name, g in manifest["graphs"].items()}
