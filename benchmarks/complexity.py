"""Complexity counter: parameters and multiply-accumulates per pixel.

Counting rule (spec §0): a Conv2d costs (#output elements)·(C_in/groups)·k_h·k_w
MACs; bias, activations, pixel (un)shuffle, scaling, concatenation and entropy coding
are free.  Stages run on PyTorch's ``meta`` device, so a 1080p count allocates
nothing and takes a fraction of a second.  A unit's encode (decode) cost is the sum
of its stages times their ``encode_calls`` (``decode_calls``); per-pixel figures
divide by frames·width·height of the *unpadded* frame, as the paper does (1080p is
coded at 1088 rows).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..models.presets import build_intra_model, build_model
from ..models.stages import padded, stage_inputs


def _top_level_names(model: nn.Module) -> dict[nn.Module, str]:
    owner = {}
    for top_name, top in model.named_children():
        for sub in top.modules():
            owner[sub] = top_name
    return owner


def stage_macs(model: nn.Module, stage_name: str, height: int, width: int) -> dict[str, int]:
    """MACs of one stage per top-level module, for a padded ``height``×``width``."""
    stage = model.stages()[stage_name]
    owner = _top_level_names(model)
    counts: dict[str, int] = {}

    def hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1]
        macs = output.numel() * (module.in_channels // module.groups) * k
        counts[owner[module]] = counts.get(owner[module], 0) + macs

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        inputs = stage_inputs(stage.inputs, height, width, torch.float32, device="meta")
        with torch.no_grad():
            stage.module(*inputs)
    finally:
        for h in handles:
            h.remove()
    return counts


@dataclass
class ModelComplexity:
    model: str
    frames_per_unit: int
    width: int
    height: int
    params: int
    enc_macs: int  # per coding unit
    dec_macs: int
    per_module_kmacs_px: dict[str, float] = field(default_factory=dict)  # per padded pixel, one call each

    @property
    def pixels(self) -> int:
        return self.frames_per_unit * self.width * self.height

    @property
    def enc_kmacs_px(self) -> float:
        return self.enc_macs / self.pixels / 1e3

    @property
    def dec_kmacs_px(self) -> float:
        return self.dec_macs / self.pixels / 1e3

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(enc_kmacs_px=round(self.enc_kmacs_px, 2), dec_kmacs_px=round(self.dec_kmacs_px, 2))
        return d


def count_model(model: nn.Module, name: str, frames: int, width: int, height: int) -> ModelComplexity:
    """Complexity of ``model`` (built on any device; weights are not touched)."""
    ph, pw = padded(height), padded(width)
    enc = dec = 0
    per_module: dict[str, float] = {}
    for stage in model.stages().values():
        macs = stage_macs(model, stage.name, ph, pw)
        total = sum(macs.values())
        enc += total * stage.encode_calls
        dec += total * stage.decode_calls
        for module, m in macs.items():
            per_module[module] = per_module.get(module, 0.0) + m / (ph * pw) / 1e3
    params = sum(p.numel() for p in model.parameters())
    return ModelComplexity(name, frames, width, height, params, enc, dec,
                           {k: round(v, 3) for k, v in sorted(per_module.items())})


def count_preset(preset: str, width: int, height: int) -> list[ModelComplexity]:
    """One row per network of the preset (dcvc-rt: P then I model)."""
    with torch.device("meta"):
        model = build_model(preset)
        intra = build_intra_model(preset)
    rows = [count_model(model, preset if intra is None else f"{preset} (P)", model.cfg.frames, width, height)]
    if intra is not None:
        rows.append(count_model(intra, f"{preset} (I)", 1, width, height))
    return rows


def format_table(rows: list[ModelComplexity]) -> str:
    lines = ["| model | params | enc kMAC/px | dec kMAC/px |", "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.model} | {r.params / 1e6:.2f}M | {r.enc_kmacs_px:.1f} | {r.dec_kmacs_px:.1f} |")
    return "\n".join(lines)


def format_modules(row: ModelComplexity) -> str:
    lines = [f"{row.model}: kMAC per padded pixel per call, at {padded(row.width)}x{padded(row.height)}"]
    lines += [f"  {name:<28} {v:9.2f}" for name, v in row.per_module_kmacs_px.items()]
    return "\n".join(lines)


def complexity_json(rows: list[ModelComplexity]) -> str:
    return json.dumps([r.to_dict() for r in rows], indent=2)
