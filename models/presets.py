"""Model presets: the names users pass as ``--model``.

* ``dcvc-rt``: DCVC-RT's P-frame model (``DMC``) plus its I-frame model (``DMCI``),
  widths as published, loading the official checkpoints.
* ``ui2c``: the paper's unified pair model.  Widths are chosen so the counted
  complexity lands on the paper's Table 2 (46.7M params, 157 / 233 kMAC per frame
  pixel at 1080p); see ``DESIGN.md`` for each choice the paper leaves open.
* ``ui2c-s``: the same architecture narrowed to train on 2 CPU cores (≈1/8 of the
  MACs); it carries the shipped demo weights.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from .conditional import ConditionalCodec, ConditionalConfig
from .intra import DMCI

DCVC_RT_P = ConditionalConfig(frames=1, ch_d=256, ch_y=128, ch_z=128, ch_fusion=384, ch_spatial=384,
                              ch_recon=320, ch_temporal=256, recon_blocks=4)
UI2C = ConditionalConfig(frames=2, ch_d=400, ch_y=64, ch_z=64, ch_fusion=512, ch_spatial=384,
                         ch_recon=576, ch_temporal=400, recon_blocks=3, head_blocks=1, fusion_blocks=4)
UI2C_S = ConditionalConfig(frames=2, ch_d=144, ch_y=64, ch_z=64, ch_fusion=160, ch_spatial=128,
                           ch_recon=192, ch_temporal=144, recon_blocks=2, head_blocks=1)

PRESETS = ("ui2c", "ui2c-s", "dcvc-rt")
PAIR_PRESETS = ("ui2c", "ui2c-s")
RANDOM_SEED = 0
"""Seed of a network without weights: exporter, runtime and engine builder make the same one."""


@contextlib.contextmanager
def fixed_seed(seed: int) -> Iterator[None]:
    """Random initialisation from ``seed`` (the same networks in every process) that leaves
    the caller's random state as it was.  Networks are built on the CPU, hence no CUDA RNGs."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_model(preset: str) -> nn.Module:
    """The inter/pair codec of ``preset`` (for ``dcvc-rt`` the P-frame model)."""
    configs = {"ui2c": UI2C, "ui2c-s": UI2C_S, "dcvc-rt": DCVC_RT_P}
    if preset not in configs:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return ConditionalCodec(configs[preset])


def build_intra_model(preset: str) -> nn.Module | None:
    """DCVC-RT's I-frame model; UI2C presets have none (blank-frame adaptor instead)."""
    return DMCI() if preset == "dcvc-rt" else None
