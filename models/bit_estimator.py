"""Factorized prior for the hyper-latent z (DCVC's ``BitEstimator``, spec §3.1).

One monotone CDF per (qp row, channel): four stacked layers ``x·softplus(h) + b``
with a ``tanh`` gate on the first three; the CDF is ``sigmoid`` of the result.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class _Layer(nn.Module):
    def __init__(self, rows: int, channels: int, final: bool):
        super().__init__()
        self.h = nn.Parameter(torch.zeros(rows, channels, 1, 1))
        self.b = nn.Parameter(torch.zeros(rows, channels, 1, 1))
        self.a = None if final else nn.Parameter(torch.zeros(rows, channels, 1, 1))

    def forward(self, x: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        h = self.h.index_select(0, row)
        b = self.b.index_select(0, row)
        x = x * F.softplus(h) + b
        if self.a is not None:
            x = x + torch.tanh(x) * torch.tanh(self.a.index_select(0, row))
        return x


class BitEstimator(nn.Module):
    """CDF logits of z for one qp row; ``cdf(x) = sigmoid(logits(x))``."""

    def __init__(self, rows: int, channels: int):
        super().__init__()
        self.rows, self.channels = rows, channels
        self.f1 = _Layer(rows, channels, final=False)
        self.f2 = _Layer(rows, channels, final=False)
        self.f3 = _Layer(rows, channels, final=False)
        self.f4 = _Layer(rows, channels, final=True)
        for layer in (self.f1, self.f2, self.f3, self.f4):
            nn.init.normal_(layer.h, 0.0, 0.01)
            nn.init.uniform_(layer.b, -0.5, 0.5)
            if layer.a is not None:
                nn.init.zeros_(layer.a)

    def logits(self, x: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        """``x`` is (N, C, H, W); ``row`` a 1-element long tensor selecting the qp row."""
        for layer in (self.f1, self.f2, self.f3, self.f4):
            x = layer(x, row)
        return x

    def likelihood(self, z: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        """P(z) of integer-centred bins, computed stably via the sign trick."""
        upper = self.logits(z + 0.5, row)
        lower = self.logits(z - 0.5, row)
        sign = -torch.sign(upper + lower).detach()
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

    def cdf_rows(self, x: torch.Tensor) -> torch.Tensor:
        """CDF for every (row, channel) at points ``x`` of shape (rows·C, K).

        Used to build the integer coding tables (``ui2c.entropy.tables``)."""
        k = x.shape[-1]
        xs = x.reshape(self.rows, self.channels, 1, k)
        out = torch.empty_like(xs)
        for r in range(self.rows):
            out[r] = torch.sigmoid(self.logits(xs[r : r + 1], torch.tensor([r]))[0])
        return out.reshape(self.rows * self.channels, k)
