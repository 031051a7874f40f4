"""Training windows: real video windows and synthetic camera moves over photographs.

The prepared data is one zip file (``training/prepare.py`` writes it): JPEG frames of
real video windows and JPEG photographs, all YCbCr as the codec sees them, plus a
manifest naming every source.  One small file is what a GPU machine without network
can be handed.  It is decoded once into memory as uint8 4:4:4.

A training window of ``n`` frames is a random crop (with flips and time reversal) of
a video window, or a camera move over a photograph (``motion.py``); with
``cut_rate`` probability it is two such segments back to back, a scene cut that
teaches the model to stop trusting a reference that no longer matches.  With
``chroma_420_share`` probability its chroma is made what the codec gets from a 4:2:0
source: 2×2 means, repeated to 2×2 blocks (``video_io.to_444``).  The stored JPEGs
decode to smooth chroma, so without this the encoder would meet block chroma
only at test time, on every 4:2:0 clip.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .motion import camera_path, render


@dataclass
class Dataset:
    videos: list[torch.Tensor]  # uint8 (T, 3, H, W) YUV 4:4:4 windows
    photos: list[torch.Tensor]  # uint8 (3, H, W) YUV 4:4:4
    manifest: dict


def decode_jpeg(data: bytes) -> np.ndarray:
    """uint8 (3, H, W) YCbCr of a JPEG, without a colour conversion."""
    image = Image.open(io.BytesIO(data))
    image.draft("YCbCr", image.size)
    if image.mode != "YCbCr":
        raise ValueError(f"training JPEGs must be YCbCr, got {image.mode}")
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))


def load_dataset(path: str | Path) -> Dataset:
    """Decode a prepared training file (see ``prepare.py``) into memory."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training data not found: {path} (make it with python -m ui2c.training.prepare)")
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        # numeric order: "video/000/100.jpg" follows 99, not 10 (windows may hold 100+ frames)
        names = sorted((n for n in archive.namelist() if n.endswith(".jpg")),
                       key=lambda n: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", n)])
        blobs = [archive.read(n) for n in names]
    with ThreadPoolExecutor() as pool:
        arrays = dict(zip(names, pool.map(decode_jpeg, blobs)))
    photos = [torch.from_numpy(a) for n, a in arrays.items() if n.startswith("photo/")]
    videos = []
    for index in range(len(manifest["videos"])):
        frames = [a for n, a in arrays.items() if n.startswith(f"video/{index:03d}/")]
        videos.append(torch.from_numpy(np.stack(frames)))
    if not videos and not photos:
        raise ValueError(f"{path} holds no training frames")
    return Dataset(videos, photos, manifest)


class WindowSampler:
    """Random training windows (float (n, 3, crop, crop) in [0, 1] on ``device``)."""

    def __init__(self, data: Dataset, crop: int, device: str | torch.device = "cpu", seed: int | np.random.SeedSequence = 0,
                 video_share: float = 0.5, cut_rate: float = 0.15, chroma_420_share: float = 0.5):
        small = [tuple(v.shape[-2:]) for v in data.videos if min(v.shape[-2:]) < crop]
        small += [tuple(p.shape[-2:]) for p in data.photos if min(p.shape[-2:]) < crop]
        if small:
            raise ValueError(f"crop {crop} is larger than training frames of size {small[0]}")
        self.data, self.crop, self.device = data, crop, torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.video_share = 0.0 if not data.videos else (video_share if data.photos else 1.0)
        self.cut_rate, self.chroma_420_share = cut_rate, chroma_420_share

    def window(self, frames: int) -> torch.Tensor:
        if frames > 2 and self.rng.random() < self.cut_rate:
            cut = int(self.rng.integers(2, frames))
            window = torch.cat((self._segment(cut), self._segment(frames - cut)))
        else:
            window = self._segment(frames)
        return chroma_as_420(window) if self.rng.random() < self.chroma_420_share else window

    def _segment(self, frames: int) -> torch.Tensor:
        if self.rng.random() < self.video_share:
            return self._video(frames)
        photo = self.data.photos[self.rng.integers(len(self.data.photos))]
        theta = camera_path(frames, self.crop, photo.shape[1], photo.shape[2], self.rng)
        return render(photo.to(self.device).float().div_(255.0), theta, self.crop)

    def _video(self, frames: int) -> torch.Tensor:
        long_enough = [v for v in self.data.videos if v.shape[0] >= frames]
        if not long_enough:
            raise ValueError(f"no video window has {frames} frames (longest: {max(v.shape[0] for v in self.data.videos)})")
        video = long_enough[self.rng.integers(len(long_enough))]
        t0 = self.rng.integers(video.shape[0] - frames + 1)
        # even offsets: 2x2 chroma blocks stay on the source's 4:2:0 grid
        y0 = 2 * self.rng.integers((video.shape[2] - self.crop) // 2 + 1)
        x0 = 2 * self.rng.integers((video.shape[3] - self.crop) // 2 + 1)
        clip = video[t0 : t0 + frames, :, y0 : y0 + self.crop, x0 : x0 + self.crop]
        flips = [d for d, flip in ((0, self.rng.random() < 0.5), (2, self.rng.random() < 0.5), (3, self.rng.random() < 0.5)) if flip]
        clip = clip.flip(flips) if flips else clip
        return clip.to(self.device).float().div_(255.0)


def chroma_as_420(frames: torch.Tensor) -> torch.Tensor:
    """Frames (T, 3, H, W), even H and W, with U and V replaced by their 2x2 means
    repeated over each block: the codec's input from a 4:2:0 source."""
    chroma = F.avg_pool2d(frames[:, 1:], 2).repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    return torch.cat((frames[:, :1], chroma), dim=1)
