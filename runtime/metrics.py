"""Quality and rate exactly as DCVC-RT's ``test_video.py`` measures them (spec §5).

Numbers are only comparable with the published ones when computed the same way:
PSNR per plane on the 8-bit scale from the *unrounded* float reconstruction clamped to
[0, 255], combined as (6·Y + U + V) / 8 per frame, each value capped at 99.9, then
averaged over frames; bpp counts every byte of the stream over the original size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

PSNR_CAP = 99.9


def plane_psnr(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """PSNR (dB) of one plane; ``reconstruction`` is on the 8-bit scale, float or integer."""
    if reference.shape != reconstruction.shape:
        raise ValueError(f"plane shapes differ: {reference.shape} vs {reconstruction.shape}")
    rec = np.clip(reconstruction.astype(np.float64), 0, 255)
    mse = float(np.mean((reference.astype(np.float64) - rec) ** 2))
    if mse == 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10 * np.log10(255.0 ** 2 / mse))


@dataclass(frozen=True)
class FramePSNR:
    y: float
    u: float
    v: float

    @property
    def yuv(self) -> float:
        """The single number DCVC-RT reports: luma weighted 6:1:1 (never above the cap,
        since every plane value is capped)."""
        return (6 * self.y + self.u + self.v) / 8


def frame_psnr(reference: Sequence[np.ndarray], reconstruction: Sequence[np.ndarray]) -> FramePSNR:
    """PSNR of (Y, U, V) planes; pass the codec's float planes (``video_io.array_to_planes``)."""
    return FramePSNR(*(plane_psnr(r, x) for r, x in zip(reference, reconstruction, strict=True)))


def mean_psnr(frames: Iterable[FramePSNR]) -> FramePSNR:
    """Per-plane average over frames; ``.yuv`` of the result equals the average of the
    per-frame ``.yuv`` values (DCVC-RT's sequence number) because the weighting is linear."""
    values = np.array([(f.y, f.u, f.v) for f in frames], dtype=np.float64)
    if not len(values):
        raise ValueError("no frames to average")
    return FramePSNR(*values.mean(axis=0))


def bpp(total_bytes: int, frames: int, height: int, width: int) -> float:
    """Bits per pixel over the original (unpadded) size, headers included (spec §5)."""
    if frames <= 0 or height <= 0 or width <= 0:
        raise ValueError(f"bpp needs positive frames/height/width, got {frames}/{height}/{width}")
    return 8 * total_bytes / (frames * height * width)
