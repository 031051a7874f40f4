"""Network stages: the unit shared by export, backends and complexity counting.

A codec is split into stages at the points where the entropy coder (or a cached
reference) sits between networks.  Each stage is an ``nn.Module`` whose
``forward`` takes its inputs positionally in the order of ``inputs`` and returns a
tuple in the order of ``outputs``.  Shapes are written in the padded frame size
(H, W multiples of 16) with the grammar ``"H"``, ``"H/k"``, ``"ceil(H/k)"`` so the
exporter, the engine builder and the runtime agree on every tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from torch import nn

Dim = Union[int, str]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float"  # "float" follows the model precision; else a fixed dtype


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


def resolve_dim(dim: Dim, height: int, width: int) -> int:
    """Evaluate one shape entry for a padded frame of ``height`` × ``width``."""
    if isinstance(dim, int):
        return dim
    expr = dim.replace(" ", "")
    ceil = expr.startswith("ceil(") and expr.endswith(")")
    if ceil:
        expr = expr[5:-1]
    base, _, div = expr.partition("/")
    value = {"H": height, "W": width}[base]
    k = int(div) if div else 1
    return -(-value // k) if ceil else value // k


def resolve_shape(spec: TensorSpec, height: int, width: int) -> tuple[int, ...]:
    return tuple(resolve_dim(d, height, width) for d in spec.shape)
