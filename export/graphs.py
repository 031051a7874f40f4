"""Export one network stage to an ONNX graph with dynamic frame size.

The dynamo exporter (``torch.export``) needs every dynamic dim as a symbol.  All the
``H/k`` dims of a stage are *derived* from one base symbol per axis, ``H/16`` (so
``H/8`` is ``2*(H/16)`` and ``H`` is ``16*(H/16)``): the exporter then knows those
dims are tied, and no dim is specialised to the trace size.  ``ceil(H/64)`` dims
(the hyper-latent) are independent symbols: only the network relates them to
``H/16`` (pad to a multiple of 4, crop back), and that arithmetic stays in the graph.

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
from torch.export import Dim

from ..models.stages import Stage, TensorSpec, parse_dim, resolve_shape

# Trace size: H/16 = 13, W/16 = 21 are odd, unequal and not multiples of 4, so the
# tracer cannot tie H to W or drop the zero-width case of the pad to a multiple of 4.
TRACE_HEIGHT, TRACE_WIDTH = 208, 336
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
ONNX_DTYPES = {"float32": onnx.TensorProto.FLOAT, "float16": onnx.TensorProto.FLOAT16, "int32": onnx.TensorProto.INT32}
MANIFEST_FLOAT = {"fp32": "float32", "fp16": "float16"}


def manifest_dtype(spec: TensorSpec, precision: str) -> str:
    """``"float"`` follows the export precision; fixed dtypes (the int32 qp) stay."""
    return MANIFEST_FLOAT[precision] if spec.dtype == "float" else spec.dtype


class _Symbols:
    """One ``torch.export.Dim`` per base symbol, derived dims built from them."""

    def __init__(self) -> None:
        self.base = {axis: Dim(f"{axis}16", min=1) for axis in "HW"}
        self.ceil: dict[str, Dim] = {}

    def dim(self, expr: str) -> Dim:
        parsed = parse_dim(expr)
        if isinstance(parsed, int):
            raise ValueError(f"dim {expr!r}: a fixed size needs no symbol")
        if parsed.ceil:
            # Independent symbol per distinct ceil expression, named e.g. H_ceil64.
            key = f"{parsed.var}_ceil{parsed.div}"
            if key not in self.ceil:
                self.ceil[key] = Dim(key, min=1)
            return self.ceil[key]
        if 16 % parsed.div:
            raise ValueError(f"dim {expr!r}: only H/k with k dividing 16 can be tied to H/16")
        base = self.base[parsed.var]
        return base * (16 // parsed.div) if parsed.div != 16 else base


def example_inputs(stage: Stage, precision: str, height: int = TRACE_HEIGHT,
                   width: int = TRACE_WIDTH) -> tuple[torch.Tensor, ...]:
    """Random tensors of the stage's input shapes (values do not matter for tracing)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for spec in stage.inputs:
        shape = resolve_shape(spec, height, width)
        if spec.dtype == "int32":
            out.append(torch.randint(0, 64, shape, dtype=torch.int32, generator=gen))
        else:
            out.append(torch.rand(shape, generator=gen).to(TORCH_DTYPES[precision]))
    return tuple(out)


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
    symbols = _Symbols()
    dynamic = tuple({i: symbols.dim(d) for i, d in enumerate(spec.shape) if isinstance(d, str)}
                    for spec in stage.inputs)
    with torch.no_grad(), quiet_exporter():
        program = torch.onnx.export(
            stage.module.eval(), example_inputs(stage, precision),
            input_names=[s.name for s in stage.inputs], output_names=[s.name for s in stage.outputs],
            # The stage module takes ``*inputs``: one varargs entry holding every input's dims.
            dynamic_shapes=(dynamic,), opset_version=opset, dynamo=True, verbose=False,
        )
    model = program.model_proto
    _name_dims(model, stage, precision)
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
