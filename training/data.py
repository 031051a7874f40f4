"""Training clips from real video: short windows of consecutive frames.

Frames are decoded once with PyAV, area-downscaled 2× in YUV 4:2:0 (this washes out
the source's compression artefacts), converted to 4:4:4 by nearest-neighbour chroma
upsampling exactly as the codec's input path does, and kept in memory as uint8.
Random crops and flips are drawn per batch.
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch


def _downscale2(plane: np.ndarray) -> np.ndarray:
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    p = plane[:h, :w].astype(np.uint16)
    return ((p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2] + 2) // 4).astype(np.uint8)


def load_windows(path: str | Path, window: int, stride: int, max_windows: int | None = None) -> np.ndarray:
    """Decode ``window`` consecutive frames every ``stride`` frames.

    Returns uint8 (N, window, 3, H/2, W/2) YUV 4:4:4 at half the source size.
    """
    clips, current = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index % stride >= window:
                continue
            yuv = frame.to_ndarray(format="yuv420p")
            h, w = frame.height, frame.width
            y = _downscale2(yuv[:h])
            u = _downscale2(yuv[h : h + h // 4].reshape(h // 2, w // 2))
            v = _downscale2(yuv[h + h // 4 :].reshape(h // 2, w // 2))
            up = lambda c: c.repeat(2, axis=0).repeat(2, axis=1)[: y.shape[0], : y.shape[1]]  # noqa: E731
            current.append(np.stack([y, up(u), up(v)]))
            if len(current) == window:
                clips.append(np.stack(current))
                current = []
                if max_windows is not None and len(clips) >= max_windows:
                    break
    if not clips:
        raise ValueError(f"no {window}-frame windows could be decoded from {path}")
    return np.stack(clips)


class ClipSampler:
    """Random crops (and horizontal/vertical flips) of the decoded windows."""

    def __init__(self, clips: np.ndarray, crop: int, seed: int = 0):
        self.clips = clips
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        """float32 (size, window, 3, crop, crop) in [0, 1]."""
        n, t, c, h, w = self.clips.shape
        out = np.empty((size, t, c, self.crop, self.crop), dtype=np.uint8)
        for i in range(size):
            k = self.rng.integers(n)
            y0, x0 = self.rng.integers(h - self.crop + 1), self.rng.integers(w - self.crop + 1)
            clip = self.clips[k, :, :, y0 : y0 + self.crop, x0 : x0 + self.crop]
            if self.rng.random() < 0.5:
                clip = clip[..., ::-1]
            if self.rng.random() < 0.5:
                clip = clip[..., ::-1, :]
            out[i] = clip
        return torch.from_numpy(out).float().div_(255.0)
