"""Export one network stage to an ONNX graph with dynamic frame size.

The dynamo exporter (``torch.export``) needs every dynamic dim as a symbol; the
stage's input dims become symbols through ``models.stages.dynamic_dims`` (the
``H/k`` dims tied to one ``H/16`` per axis, each ``ceil(H/k)`` its own symbol), as
they do for the AOTInductor packages.

The exporter names dims after its own symbols (``s9``, ``Min(H16, 4*H64)``...).
Those names are replaced by the stage's manifest expressions verbatim (``"H/8"``,
``"ceil(H/64)"``) on every graph input and output, so a dim is called the same in
every graph that carries it; intermediate ``value_info`` (which still uses the
exporter's names) is dropped, consumers re-infer it.
"""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import onnx
import torch

from ..models.precision import PRECISIONS
from ..models.stages import Stage, TensorSpec, dynamic_dims, stage_inputs

# Trace size: H/16 = 13, W/16 = 21 are odd, unequal and not multiples of 4, so the
# tracer cannot tie H to W or drop the zero-width case of the pad to a multiple of 4.
TRACE_HEIGHT, TRACE_WIDTH = 208, 336
ONNX_DTYPES = {"float32": onnx.TensorProto.FLOAT, "float16": onnx.TensorProto.FLOAT16, "int32": onnx.TensorProto.INT32}
MANIFEST_FLOAT = {"fp32": "float32", "fp16": "float16"}


def manifest_dtype(spec: TensorSpec, precision: str) -> str:
    """``"float"`` follows the export precision; fixed dtypes (the int32 qp) stay."""
    return MANIFEST_FLOAT[precision] if spec.dtype == "float" else spec.dtype


def _name_dims(model: onnx.ModelProto, stage: Stage, precision: str) -> None:
    """Write the manifest shapes onto the graph's inputs and outputs, checking names
    and dtypes so a mismatch fails here, not in an engine build."""
    graph = model.graph
    for values, specs, kind in ((graph.input, stage.inputs, "inputs"), (graph.output, stage.outputs, "outputs")):
        names = [v.name for v in values]
        if names != [s.name for s in specs]:
            raise RuntimeError(f"stage {stage.name!r}: exported {kind} {names} differ from the stage's "
                               f"{[s.name for s in specs]}")
        for value, spec in zip(values, specs):
            tensor = value.type.tensor_type
            want = ONNX_DTYPES[manifest_dtype(spec, precision)]
            if tensor.elem_type != want:
                raise RuntimeError(f"stage {stage.name!r}: {spec.name} exported as "
                                   f"{onnx.TensorProto.DataType.Name(tensor.elem_type)}, expected "
                                   f"{onnx.TensorProto.DataType.Name(want)}")
            tensor.shape.ClearField("dim")
            for d in spec.shape:
                dim = tensor.shape.dim.add()
                if isinstance(d, int):
                    dim.dim_value = d
                else:
                    dim.dim_param = d
    del graph.value_info[:]


# Known exporter noise that says nothing about our graphs: it buried the table of the
# first ``ui2c demo`` (which exports on first use) under dozens of lines.
_NOISY_LOGGER = "torch.onnx._internal.exporter._registration"  # "torchvision is not installed"
_NOISY_WARNINGS = (
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),  # torch's own pytree use
    (UserWarning, r"# The axis name: .* will not be used"),  # our derived H/16, W/16 dims, by design
)


@contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence exactly the known exporter noise; any other warning still shows."""
    logger = logging.getLogger(_NOISY_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category, message in _NOISY_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        logger.setLevel(level)


def export_stage(stage: Stage, path: Path, precision: str, opset: int,
                 metadata: dict[str, str]) -> None:
    """Trace ``stage`` (its module already in ``precision``) and save it to ``path``."""
    # Random values (seed 0) at the trace size: what the trace sees does not matter, only
    # that it is not degenerate.
    example = stage_inputs(stage.inputs, TRACE_HEIGHT, TRACE_WIDTH, PRECISIONS[precision], seed=0)
    with torch.no_grad(), quiet_exporter():
        program = torch.onnx.export(
            stage.module.eval(), tuple(example),
            input_names=[s.name for s in stage.inputs], output_names=[s.name for s in stage.outputs],
            # The stage module takes ``*inputs``: one varargs entry holding every input's dims.
            dynamic_shapes=(dynamic_dims(stage.inputs),), opset_version=opset, dynamo=True, verbose=False,
        )
    model = program.model_proto
    _name_dims(model, stage, precision)
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
