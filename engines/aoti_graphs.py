"""The graphs an AOTInductor engine directory holds: the model's stages plus the
latent ops that run between them.

The latent ops (checkerboard masks, rounding against the means, skip mask from the
folded scales, scale -> CDF index, fold/unfold) are compiled into packages too, so
the C++ runtime calls the same compiled code as the Python one instead of carrying
a second implementation of them.  Every graph is an ``nn.Module`` with positional
tensor inputs and a tuple output, described by the same ``TensorSpec`` grammar as
the stages (``H``/``W`` = padded frame size), which is what export needs to mark
H/W dynamic.

Symbols and indexes are int32 in the folded (C/2, H/16, W/16) layout; flattened (a
free view) they are the entropy-coder seam's vectors (``ui2c.entropy.coder``): raster
order, index -1 = skipped (symbol 0).  They stay 3-D in the graphs because export
can only relate dims linearly to H and W, not as the product C/2*H*W.
"""
from __future__ import annotations

import torch
from torch import nn

from ..entropy.tables import scale_index_torch
from ..models.ops import checkerboard_masks
from ..models.stages import TensorSpec
from ..runtime.latent import SKIP_THRESHOLD


def fold(x: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) masked tensor -> dense (C/2, H, W): the halves are disjoint."""
    half = x.shape[1] // 2
    return x[0, :half] + x[0, half:]


def unfold(folded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.cat([folded, folded])[None] * mask


def step_indexes(scales: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CDF row per folded symbol, -1 where the folded scale is at most the skip threshold."""
    folded = fold(scales * mask)
    index = scale_index_torch(folded).to(torch.int32)
    return torch.where(folded > SKIP_THRESHOLD, index, torch.full_like(index, -1))


def quantize(y: torch.Tensor, q_dec: torch.Tensor, means: torch.Tensor, mask: torch.Tensor,
             indexes: torch.Tensor) -> torch.Tensor:
    """Symbols of one step: round((y / q_dec - means) * mask) half to even, folded; 0 where skipped."""
    q = fold(torch.round((y / q_dec - means) * mask))
    return torch.where(indexes >= 0, q, torch.zeros_like(q)).to(torch.int32)


def dequantize(symbols: torch.Tensor, means: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """This step's share of y_hat: (unfold(q) + means) * mask; encoder and decoder both use it."""
    return (unfold(symbols.to(means.dtype), mask) + means) * mask


def z_indexes(z_hat: torch.Tensor, qp: torch.Tensor) -> torch.Tensor:
    """CDF row of every z element in (C, H, W) order: qp[0] * C + channel."""
    channels = z_hat.shape[1]
    rows = qp[:1].to(torch.int32) * channels + torch.arange(channels, dtype=torch.int32, device=z_hat.device)
    return rows.view(channels, 1, 1).expand(channels, z_hat.shape[2], z_hat.shape[3]).contiguous()


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
    folded = lambda name: TensorSpec(name, (ch_y // 2, "H/16", "W/16"), "int32")  # noqa: E731
    qp = TensorSpec("qp", (2,), "int32")
    z = TensorSpec("z_hat", (1, ch_z, "ceil(H/64)", "ceil(W/64)"))
    masks = lambda y: checkerboard_masks(y.shape[1], y.shape[2], y.shape[3], y.device)  # noqa: E731
    return {
        "masks": (_Graph(lambda y: tuple(m.to(y.dtype) for m in masks(y))), (at16("y", ch_y),),
                  (at16("mask0", ch_y), at16("mask1", ch_y))),
        "step_indexes": (_Graph(step_indexes), (at16("scales", ch_y), at16("mask", ch_y)), (folded("indexes"),)),
        "quantize": (_Graph(quantize), (at16("y", ch_y), at16("q_dec", ch_y), at16("means", ch_y), at16("mask", ch_y),
                                        folded("indexes")), (folded("symbols"),)),
        "dequantize": (_Graph(dequantize), (folded("symbols"), at16("means", ch_y), at16("mask", ch_y)),
                       (at16("y_hat_part", ch_y),)),
        "merge": (_Graph(lambda a, b, q: (a + b) * q), (at16("y_hat0", ch_y), at16("y_hat1", ch_y), at16("q_dec", ch_y)),
                  (at16("y_hat", ch_y),)),
        "z_indexes": (_Graph(z_indexes), (z, qp), (TensorSpec("indexes", (ch_z, "ceil(H/64)", "ceil(W/64)"), "int32"),)),
    }
