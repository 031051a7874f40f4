"""Network stages: the unit shared by export, backends and complexity counting.

A codec is split into stages at the points where the entropy coder (or a cached
reference) sits between networks.  Each stage is an ``nn.Module`` whose
``forward`` takes its inputs positionally in the order of ``inputs`` and returns a
tuple in the order of ``outputs``.  Shapes are written in the padded frame size
(H, W multiples of 16) with the grammar ``"H"``, ``"H/k"``, ``"ceil(H/k)"`` so the
exporter, the engine builder and the runtime agree on every tensor.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence, Union

if TYPE_CHECKING:  # the shape grammar and padding are used by torch-free readers (video I/O)
    import torch
    from torch import nn

Dim = Union[int, str]

PAD_MULTIPLE = 16
"""Frames are padded to a multiple of the largest network stride (spec §4)."""

_DIM = re.compile(r"(?P<int>\d+)|(?P<ceil>ceil\()?(?P<var>[HW])(?:/(?P<div>\d+))?(?(ceil)\))")


@dataclass(frozen=True)
class TensorSpec:
    """One stage input or output.  ``dtype`` ``"float"`` follows the model precision
    (a stage definition); an export manifest records the concrete dtype instead."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float"


@dataclass
class Stage:
    name: str
    module: nn.Module
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    # How many times an encoder / decoder runs the stage per coding unit in steady
    # state (0 = not at all; stages used only at reset points count 0).
    encode_calls: int = 1
    decode_calls: int = 1
    note: str = field(default="")


def padded(size: int) -> int:
    """``size`` rounded up to :data:`PAD_MULTIPLE`: the network size of a frame side."""
    return -(-size // PAD_MULTIPLE) * PAD_MULTIPLE


@dataclass(frozen=True)
class DimExpr:
    """A parsed symbolic dim: ``var`` ("H" or "W") divided by ``div``, rounded up if ``ceil``."""

    var: str
    div: int
    ceil: bool


def parse_dim(expr: str) -> int | DimExpr:
    """Parse one shape entry written as text: a number, ``H``, ``H/k`` or ``ceil(H/k)`` (or W).

    The grammar is matched by a regular expression, never ``eval()``, because export
    manifests are data files that may come from elsewhere; the exporter, the engine
    builder and the runtime all read it through this one function.
    """
    match = _DIM.fullmatch(expr.replace(" ", ""))
    if match is None:
        raise ValueError(f"bad shape expression {expr!r}: expected int, H, H/k or ceil(H/k) (or W)")
    if match["int"] is not None:
        return int(match["int"])
    divisor = int(match["div"] or 1)
    if divisor == 0:
        raise ValueError(f"division by zero in shape expression {expr!r}")
    return DimExpr(match["var"], divisor, bool(match["ceil"]))


def resolve_dim(dim: Dim, height: int, width: int) -> int:
    """Evaluate one shape entry for a padded frame of ``height`` × ``width``.

    ``H/k`` must divide exactly: a fractional size means ``ceil`` was meant, and
    flooring it silently would size a buffer or an engine profile that cannot match
    the graph.  Every problem is a ``ValueError``; manifest readers turn it into
    their own error.
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, str)):
        raise ValueError(f"shape entry {dim!r} is neither an int nor an expression")
    expr = parse_dim(dim) if isinstance(dim, str) else dim
    if isinstance(expr, int):
        if expr < 0:
            raise ValueError(f"negative shape entry {expr}")
        return expr
    size = height if expr.var == "H" else width
    if expr.ceil:
        return -(-size // expr.div)
    if size % expr.div:
        raise ValueError(f"{dim!r} is fractional for {expr.var}={size}; the shape should say ceil({dim})")
    return size // expr.div


def resolve_shape(spec: TensorSpec, height: int, width: int) -> tuple[int, ...]:
    """Every dim of ``spec`` for a padded frame of ``height`` × ``width``."""
    return tuple(resolve_dim(d, height, width) for d in spec.shape)


def stage_inputs(specs: Sequence[TensorSpec], height: int, width: int, dtype: torch.dtype, *,
                 seed: int | None = None, device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """One tensor per spec for a padded frame of ``height`` × ``width``, for tracing,
    timing or counting a stage without real data: zeros, or uniform random values from
    ``seed`` where the values must not be degenerate (a trace of all-zero inputs may
    take paths real data does not).  ``"float"`` specs get ``dtype``, fixed dtypes stay;
    int32 values lie in [0, 8): a valid qp and a valid symbol."""
    import torch

    from .precision import TENSOR_DTYPES

    gen = None if seed is None else torch.Generator().manual_seed(seed)
    out = []
    for spec in specs:
        shape, kind = resolve_shape(spec, height, width), TENSOR_DTYPES.get(spec.dtype, dtype)
        if gen is None:
            out.append(torch.zeros(shape, dtype=kind, device=device))
        elif kind == torch.int32:
            out.append(torch.randint(0, 8, shape, dtype=kind, generator=gen).to(device))
        else:
            out.append(torch.rand(shape, generator=gen).to(device=device, dtype=kind))
    return out


def dynamic_dims(specs: Sequence[TensorSpec], min_size: int = PAD_MULTIPLE,
                 max_size: int | None = None) -> tuple[dict[int, torch.export.Dim], ...]:
    """``torch.export`` dynamic shapes of the inputs ``specs`` for padded sides of
    ``min_size``..``max_size`` (no upper bound when None).

    Every ``H/k`` dim is *derived* from one base symbol per axis, ``H/16`` (``H/8`` is
    ``2*(H/16)``, ``H`` is ``16*(H/16)``), so export knows those dims are tied and
    specialises none of them to the trace size; hence k must divide 16.  Each distinct
    ``ceil(H/k)`` is its own symbol: only the network relates it to ``H/16`` (pad to a
    multiple, crop back), and that arithmetic stays in the graph.
    """
    from torch.export import Dim as Symbol  # not this module's Dim (a shape entry)

    base = {axis: Symbol(f"{axis}16", min=min_size // PAD_MULTIPLE,
                         max=None if max_size is None else max_size // PAD_MULTIPLE) for axis in "HW"}
    ceil: dict[str, Symbol] = {}

    def symbol(expr: str) -> Symbol:
        parsed = parse_dim(expr)
        if isinstance(parsed, int):
            raise ValueError(f"dim {expr!r}: a fixed size is written as an int, not text")
        if parsed.ceil:
            key = f"{parsed.var}_ceil{parsed.div}"
            if key not in ceil:
                ceil[key] = Symbol(key, min=-(-min_size // parsed.div),
                                   max=None if max_size is None else -(-max_size // parsed.div))
            return ceil[key]
        if PAD_MULTIPLE % parsed.div:
            raise ValueError(f"dim {expr!r}: only H/k with k dividing {PAD_MULTIPLE} can be tied to H/16")
        return base[parsed.var] * (PAD_MULTIPLE // parsed.div) if parsed.div != PAD_MULTIPLE else base[parsed.var]

    return tuple({axis: symbol(d) for axis, d in enumerate(spec.shape) if isinstance(d, str)} for spec in specs)
