"""``bench complexity``: the paper's Table 2 beside our counts, from two counters.

Our columns come from the PyTorch-hook counter (``complexity.py``) and, separately,
from the exported ONNX graphs (``onnx_macs.py``).  Conventions follow Table 2:
enc/dec are the inter model's costs per frame pixel (DCVC-RT's P model ``DMC``;
the pair model's unit cost divided by its two frames), params are every network the
codec needs (DCVC-RT: ``DMC`` + ``DMCI`` = 66.34M, spec §0), latent channels are y's,
and decoding steps are the spatial-prior steps per *frame* (a pair codes one
two-step latent for two frames, hence 1).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from ..export import MANIFEST
from ..export.exporter import INTRA_PREFIX
from ..models.presets import build_intra_model, build_model
from ..models.stages import padded
from .complexity import count_preset, stage_macs
from .onnx_macs import export_dir, export_macs

# UI2C paper (CVPR 2026), Table 2.
PAPER_TABLE2 = {
    "dcvc-rt": {"enc_kmacs_px": 142.0, "dec_kmacs_px": 167.0, "params_m": 66.4, "latent_ch": 128, "dec_steps": 2},
    "ui2c": {"enc_kmacs_px": 157.0, "dec_kmacs_px": 233.0, "params_m": 46.7, "latent_ch": 64, "dec_steps": 1},
}


@dataclass
class Table2Row:
    model: str
    width: int
    height: int
    params: int
    enc_kmacs_px: float
    dec_kmacs_px: float
    latent_ch: int
    dec_steps: float
    onnx_enc_kmacs_px: float | None = None
    onnx_dec_kmacs_px: float | None = None
    # graph name -> {"torch": MACs, "onnx": MACs} per call at the padded size
    stage_macs: dict[str, dict[str, int]] = field(default_factory=dict)
    paper: dict | None = None


def torch_stage_macs(preset: str, height: int, width: int) -> dict[str, int]:
    """Hook-counted MACs per call of every graph (``intra_`` prefix for DMCI)."""
    with torch.device("meta"):
        networks = {"": build_model(preset), INTRA_PREFIX: build_intra_model(preset)}
    return {prefix + name: sum(stage_macs(net, name, height, width).values())
            for prefix, net in networks.items() if net is not None for name in net.stages()}


def table2_row(preset: str, width: int, height: int, onnx: bool = True) -> Table2Row:
    counts = count_preset(preset, width, height)
    inter = counts[0]
    with torch.device("meta"):
        model = build_model(preset)
    stages = model.stages()
    row = Table2Row(preset, width, height, sum(c.params for c in counts), inter.enc_kmacs_px, inter.dec_kmacs_px,
                    model.cfg.ch_y, (1 + stages["spatial_prior"].decode_calls) / model.cfg.frames,
                    paper=PAPER_TABLE2.get(preset))
    if onnx:
        ph, pw = padded(height), padded(width)
        manifest = export_dir(preset) / MANIFEST
        graphs = json.loads(manifest.read_text())["graphs"]
        from_onnx, from_torch = export_macs(manifest, ph, pw), torch_stage_macs(preset, ph, pw)
        row.stage_macs = {g: {"torch": from_torch[g], "onnx": from_onnx[g]} for g in graphs}
        pixels = inter.pixels * 1e3
        inter_graphs = [g for g in graphs if graphs[g]["model"] == "inter"]
        row.onnx_enc_kmacs_px = sum(from_onnx[g] * graphs[g]["encode_calls"] for g in inter_graphs) / pixels
        row.onnx_dec_kmacs_px = sum(from_onnx[g] * graphs[g]["decode_calls"] for g in inter_graphs) / pixels
    return row


def _vs_paper(ours: float, paper: float | None, fmt: str) -> str:
    if paper is None:
        return format(ours, fmt)
    return f"{ours:{fmt}} ({paper:{fmt}}, {100 * (ours - paper) / paper:+.1f}%)"


def _vs_paper_exact(ours: float, paper: float | None) -> str:
    return f"{ours:g}" if paper is None else f"{ours:g} ({paper:g})"


def format_table2(rows: list[Table2Row]) -> str:
    """Markdown: ours (paper, difference) per Table 2 column, plus the ONNX count."""
    lines = [f"Complexity at {rows[0].width}x{rows[0].height} (kMAC per frame pixel; ours (paper, Δ))", "",
             "| model | enc kMAC/px | dec kMAC/px | params (M) | latent ch | dec steps/frame | ONNX enc / dec |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = r.paper or {}
        onnx = "—" if r.onnx_enc_kmacs_px is None else f"{r.onnx_enc_kmacs_px:.1f} / {r.onnx_dec_kmacs_px:.1f}"
        lines.append(
            f"| {r.model} | {_vs_paper(r.enc_kmacs_px, p.get('enc_kmacs_px'), '.1f')} "
            f"| {_vs_paper(r.dec_kmacs_px, p.get('dec_kmacs_px'), '.1f')} "
            f"| {_vs_paper(r.params / 1e6, p.get('params_m'), '.2f')} "
            f"| {_vs_paper_exact(r.latent_ch, p.get('latent_ch'))} "
            f"| {_vs_paper_exact(r.dec_steps, p.get('dec_steps'))} | {onnx} |")
    return "\n".join(lines)


def format_stage_check(rows: list[Table2Row]) -> str:
    """Markdown: per-graph GMAC per call from the PyTorch hooks and from the ONNX graph."""
    lines = ["| model | graph | PyTorch GMAC | ONNX GMAC | equal |", "|---|---|---:|---:|:-:|"]
    for r in rows:
        for graph, c in r.stage_macs.items():
            lines.append(f"| {r.model} | {graph} | {c['torch'] / 1e9:.3f} | {c['onnx'] / 1e9:.3f} "
                         f"| {'yes' if c['torch'] == c['onnx'] else '**no**'} |")
    return "\n".join(lines)

