"""Synthetic camera motion over a still photograph: pans, zooms, slight roll, hand shake.

Real camera footage is scarce here (the real clips are held out for evaluation), so
long training windows are also made by moving a virtual camera over photographs.  The
camera path is smooth (a drifting velocity plus a small random-walk jitter, as from a
hand-held camera) and stops at the photo's border instead of leaving it.  Frames are
resampled with bicubic interpolation, which keeps sub-pixel shifts about as sharp as
whole-pixel ones, so sharpness does not flicker from frame to frame.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

MAX_SPEED = 8.0  # output pixels per frame
MAX_ZOOM = 0.02  # log-scale change per frame
MAX_ROLL = math.radians(0.3)  # radians per frame


def camera_path(frames: int, crop: int, height: int, width: int, rng: np.random.Generator) -> torch.Tensor:
    """(frames, 2, 3) ``affine_grid`` matrices of one random camera move over an image."""
    scale0 = min(rng.uniform(1.0, 1.6), 0.9 * min(height, width) / crop)
    zoom = rng.uniform(-MAX_ZOOM, MAX_ZOOM) if rng.random() < 0.3 else 0.0
    roll = rng.uniform(-MAX_ROLL, MAX_ROLL) if rng.random() < 0.2 else 0.0
    speed = MAX_SPEED * rng.random() ** 1.5
    heading = rng.uniform(0, 2 * math.pi)
    velocity = speed * np.array([math.cos(heading), math.sin(heading)])
    jitter = np.cumsum(rng.normal(0.0, 0.3, size=(frames, 2)), axis=0)
    t = np.arange(frames)
    scale = np.minimum(scale0 * np.exp(zoom * t), 0.95 * min(height, width) / crop / math.sqrt(2))
    offset = velocity[None] * t[:, None] * scale[:, None] + jitter * scale[:, None]
    half = crop * scale[:, None] / 2 * math.sqrt(2)  # room for any roll angle
    lo, hi = (half - offset).max(0), (np.array([width, height]) - half - offset).min(0)
    start = np.where(hi > lo, lo + rng.random(2) * (hi - lo), (lo + hi) / 2)
    centre = np.clip(start + offset, half, np.array([width, height]) - half)
    angle = roll * t
    theta = np.zeros((frames, 2, 3))
    cos, sin = np.cos(angle) * scale * crop, np.sin(angle) * scale * crop
    theta[:, 0, 0], theta[:, 0, 1] = cos / width, -sin / width
    theta[:, 1, 0], theta[:, 1, 1] = sin / height, cos / height
    theta[:, 0, 2] = 2 * centre[:, 0] / width - 1
    theta[:, 1, 2] = 2 * centre[:, 1] / height - 1
    return torch.from_numpy(theta).float()


def render(photo: torch.Tensor, theta: torch.Tensor, crop: int) -> torch.Tensor:
    """Frames (T, C, crop, crop) in [0, 1] seen by the camera path ``theta`` over ``photo`` (C, H, W) in [0, 1]."""
    grid = F.affine_grid(theta.to(photo.device), [theta.shape[0], photo.shape[0], crop, crop], align_corners=False)
    frames = F.grid_sample(photo.unsqueeze(0).expand(theta.shape[0], -1, -1, -1), grid, mode="bicubic",
                           padding_mode="reflection", align_corners=False)
    return frames.clamp_(0.0, 1.0)
