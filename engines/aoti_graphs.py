"""The latent graphs an AOTInductor engine directory holds beside the model's stages.

The latent codec between the stages (``ui2c.entropy.latent``: checkerboard masks,
rounding against the means, skip mask from the folded scales, scale -> CDF index,
fold/unfold) is compiled into packages too, so the C++ runtime runs the very
functions the Python sessions run instead of a second implementation of them.
Each graph is an ``nn.Module`` with positional tensor inputs and a tuple output,
with inputs described in the stages' ``TensorSpec`` grammar (``H``/``W`` = padded
frame size) so export can mark H/W dynamic.

Flat int32 vectors (symbols, indexes: the entropy-coder seam) only leave graphs:
export can relate input dims linearly to H and W but not as the product C/2*H*W,
so a graph that takes symbols takes them as the folded (C/2, H/16, W/16) view.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.ops import checkerboard_masks
from ..models.stages import TensorSpec
from ..entropy import latent


def _masks(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return checkerboard_masks(y.shape[1], y.shape[2], y.shape[3], y.device)


def _encode_step(ys: torch.Tensor, means: torch.Tensor, scales: torch.Tensor,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(indexes, symbols, y_hat contribution) of one encoder step."""
    indexes = latent.step_indexes(scales, mask)
    return (indexes, *latent.quantize_step(ys, means, mask, indexes))


def _dequantize(symbols: torch.Tensor, means: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return latent.dequantize_step(symbols.reshape(-1), means, mask)


def _z_indexes(z_hat: torch.Tensor, qp: torch.Tensor) -> torch.Tensor:
    """The z CDF rows for the unit's slot-0 qp (a tensor here, an int in the session)."""
    return latent.z_indexes(tuple(z_hat.shape), qp[0], z_hat.device)


class _Graph(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.fn(*inputs)
        return out if isinstance(out, tuple) else (out,)


def latent_graphs(ch_y: int, ch_z: int) -> dict[str, tuple[nn.Module, tuple[TensorSpec, ...], tuple[TensorSpec, ...]]]:
    """name -> (module, inputs, outputs) of the latent graphs for a model's widths."""
    at16 = lambda name, ch: TensorSpec(name, (1, ch, "H/16", "W/16"))  # noqa: E731
    flat = lambda name: TensorSpec(name, ("C/2*H/16*W/16",), "int32")  # noqa: E731
    mask = TensorSpec("mask", (1, ch_y, "H/16", "W/16"), "float32")
    return {
        "masks": (_Graph(_masks), (at16("y", ch_y),),
                  (TensorSpec("mask0", mask.shape, "float32"), TensorSpec("mask1", mask.shape, "float32"))),
        "encode_step": (_Graph(_encode_step), (at16("ys", ch_y), at16("means", ch_y),
                                               at16("scales", ch_y), mask),
                        (flat("indexes"), flat("symbols"), TensorSpec("y_hat_part", mask.shape, "float32"))),
        "step_indexes": (_Graph(latent.step_indexes), (at16("scales", ch_y), mask), (flat("indexes"),)),
        "dequantize": (_Graph(_dequantize), (TensorSpec("symbols", (ch_y // 2, "H/16", "W/16"), "int32"),
                                             at16("means", ch_y), mask),
                       (TensorSpec("y_hat_part", mask.shape, "float32"),)),
        "z_indexes": (_Graph(_z_indexes), (TensorSpec("z_hat", (1, ch_z, "ceil(H/64)", "ceil(W/64)")),
                                           TensorSpec("qp", (2,), "int32")),
                      (TensorSpec("indexes", ("C*ceil(H/64)*ceil(W/64)",), "int32"),)),
    }
