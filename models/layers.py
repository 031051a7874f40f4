"""Building blocks shared by DCVC-RT and UI2C (spec §1.1).

Parameter names follow DCVC-RT's ``src/layers/layers.py`` so official checkpoints
load key for key.  All blocks are plain PyTorch ops that export to ONNX and build
in TensorRT without plugins.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class WSiLU(nn.Module):
    """``x * sigmoid(4x)``: DCVC-RT's only activation inside the conv networks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(4.0 * x)


def conv1x1(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1)


class DepthConvBlock(nn.Module):
    """DCB: optional 1×1 adaptor, depthwise-conv branch and a gated-sum FFN.

    The FFN expands to 4C, applies WSiLU and sums the two *contiguous* halves before
    projecting back (DCVC-RT's variant; DCVC-UF interleaves four groups instead).
    """

    def __init__(self, in_ch: int, out_ch: int, shortcut: bool = False, force_adaptor: bool = False):
        super().__init__()
        self.adaptor = conv1x1(in_ch, out_ch) if (in_ch != out_ch or force_adaptor) else None
        c = out_ch
        self.dc = nn.Sequential(
            conv1x1(c, c), WSiLU(), nn.Conv2d(c, c, 3, padding=1, groups=c), conv1x1(c, c)
        )
        self.ffn = nn.Sequential(conv1x1(c, 4 * c), WSiLU(), conv1x1(2 * c, c))
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.adaptor is not None:
            x = self.adaptor(x)
        t = self.dc(x) + x
        h = self.ffn[1](self.ffn[0](t))
        half = h.shape[1] // 2
        u = self.ffn[2](h[:, :half] + h[:, half:]) + t
        return u + x if self.shortcut else u


class SubpelConv2x(nn.Module):
    """k×k conv to 4·out channels, then PixelShuffle(2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, padding: int = 0):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_ch, out_ch * 4, kernel_size, padding=padding), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ResidualBlockWithStride2(nn.Module):
    """RBS2: 2×2 stride-2 conv, then a DCB with shortcut."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.down = nn.Conv2d(in_ch, out_ch, 2, stride=2)
        self.conv = DepthConvBlock(out_ch, out_ch, shortcut=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.down(x))


class ResidualBlockUpsample(nn.Module):
    """RBU: 1×1 sub-pixel conv upsampling ×2, then a DCB with shortcut."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.up = SubpelConv2x(in_ch, out_ch, 1)
        self.conv = DepthConvBlock(out_ch, out_ch, shortcut=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


def replicate_pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom/right of ``x`` up to a multiple of ``multiple``.

    Always emits the pad (possibly of zero width) so that exported graphs keep the
    padding for every input size instead of specializing on the trace shape.
    """
    pad_h = (-x.shape[-2]) % multiple
    pad_w = (-x.shape[-1]) % multiple
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
