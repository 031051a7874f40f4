"""PNG figures of an evaluation: rate-distortion curves and per-frame traces.

The per-frame trace is the paper's Fig. 1 view: where a codec resets (first frame,
scene cut) the bits jump and the PSNR dips, so reset points are drawn as vertical lines.
Matplotlib runs headless (Agg) since evaluations run on servers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)

Series = tuple[Sequence[float], Sequence[float]]


def plot_rd(path: Path, title: str, curves: Mapping[str, Series]) -> None:
    """bpp (x) against YUV-PSNR (y), one line per codec; ``curves`` maps name → (bpps, psnrs)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for name, (rates, psnrs) in curves.items():
        order = sorted(range(len(rates)), key=lambda i: rates[i])
        ax.plot([rates[i] for i in order], [psnrs[i] for i in order], marker="o", label=name)
    ax.set(xlabel="bpp", ylabel="PSNR (6Y+U+V)/8 [dB]", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_frames(path: Path, title: str, traces: Mapping[str, Series], resets: Sequence[int] = ()) -> None:
    """Per-frame bits (top) and YUV-PSNR (bottom); ``traces`` maps name → (bits, psnrs),
    ``resets`` are frame indices drawn as dashed vertical lines."""
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    for name, (bits, psnrs) in traces.items():
        top.plot(range(len(bits)), bits, label=name, linewidth=1)
        bottom.plot(range(len(psnrs)), psnrs, label=name, linewidth=1)
    for i, frame in enumerate(resets):
        for ax in (top, bottom):
            ax.axvline(frame, color="grey", linestyle="--", linewidth=0.8, label="reset point" if i == 0 else None)
    top.set(ylabel="bits per frame", yscale="log", title=title)
    bottom.set(xlabel="frame", ylabel="PSNR (6Y+U+V)/8 [dB]")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
