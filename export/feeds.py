"""Realistic inputs for every stage: real frames through the previous stages in torch.

Parity on random tensors would test the graphs on values the codec never sees (a
random ``z_hat`` is not integer, a random ``y_hat0`` has no checkerboard zeros).
Here frames of the demo clip are coded unit by unit in fp32 torch, with the
entropy coder's part done by the runtime's own latent codec (rounding against the
prior's means, skipping, the two checkerboard steps), and every stage's inputs are
recorded.  Each
recorded feed is one Polygraphy iteration.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models.ops import frame_qps
from ..entropy import latent
from ..video_io import frame_to_array, open_video, pad
from ..shipped import DEMO_CLIP
from .exporter import INTRA_PREFIX

Feed = dict[str, np.ndarray]
DEFAULT_QP = 32


def demo_clip() -> Path:
    """The shipped 320x180 Big Buck Bunny clip (``ui2c/assets``)."""
    return DEMO_CLIP


def clip_frames(count: int, path: Path | None = None, crop: tuple[int, int] | None = None,
                scale: int = 1) -> list[np.ndarray]:
    """The first ``count`` frames of ``path`` (default: the demo clip) as float
    (3, H, W), optionally cropped to ``crop`` (height, width) and/or upscaled
    ×``scale`` (nearest), then padded to 16."""
    path = demo_clip() if path is None else path
    frames = []
    with open_video(path) as reader:
        for frame, _ in zip(reader, range(count)):
            x = frame_to_array(frame)
            if crop is not None:
                x = x[:, : crop[0], : crop[1]]
            frames.append(pad(x.repeat(scale, axis=1).repeat(scale, axis=2)))
    return frames


def _stage(net: nn.Module, name: str, record: dict[str, list[Feed]], feed: dict[str, torch.Tensor]) -> tuple:
    """Run stage ``name`` on ``feed`` (ordered like its inputs) and record the feed."""
    record.setdefault(name, []).append({k: v.numpy() for k, v in feed.items()})
    return net.run_stage(name, *feed.values())


def _quantize(ys: torch.Tensor, scales: torch.Tensor, means: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """What the decoder reconstructs for one step: the runtime's own latent codec."""
    return latent.quantize_step(ys, means, mask, latent.step_indexes(scales, mask))[1]


@torch.no_grad()
def inter_feeds(net: nn.Module, frames: list[np.ndarray], qp: int = DEFAULT_QP) -> dict[str, list[Feed]]:
    """Feeds of the conditional codec's stages for ``frames`` coded unit by unit from
    a reset point (blank-frame reference), plus the adaptor on the first real frame."""
    f = net.cfg.frames
    record: dict[str, list[Feed]] = {}
    first = torch.from_numpy(frames[0])[None]
    (ref,) = _stage(net, "adaptor", record, {"frame": torch.zeros_like(first)})
    _stage(net, "adaptor", record, {"frame": first})
    for start in range(0, len(frames) - f + 1, f):
        x = torch.from_numpy(np.concatenate(frames[start : start + f]))[None]
        qps = torch.tensor(frame_qps(qp, start, f), dtype=torch.int32)
        ctx, temporal = _stage(net, "context", record, {"ref": ref, "qp": qps})
        y, z_hat = _stage(net, "encoder", record, {"frames": x, "ctx": ctx, "qp": qps})
        q_dec, scales, means, params = _stage(net, "prior", record, {"z_hat": z_hat, "temporal": temporal})
        ys = y / q_dec
        mask0, mask1 = latent.checkerboard_masks(*ys.shape[1:])
        y_hat0 = _quantize(ys, scales, means, mask0)
        scales1, means1 = _stage(net, "spatial_prior", record, {"y_hat0": y_hat0, "params": params})
        y_hat = y_hat0 + _quantize(ys, scales1, means1, mask1)
        feature, ref = _stage(net, "decoder", record, {"y_hat": y_hat * q_dec, "ctx": ctx, "qp": qps})
        _stage(net, "recon", record, {"feature": feature, "qp": qps})
    return record


def _quad_mask(step: int, like: torch.Tensor) -> torch.Tensor:
    """Positions decoded before spatial-prior step ``step`` (1..3) of the I-model:
    the first ``step`` of the four 2×2 phases."""
    mask = torch.zeros_like(like)
    for phase in range(step):
        mask[..., phase // 2 :: 2, phase % 2 :: 2] = 1
    return mask


@torch.no_grad()
def intra_feeds(net: nn.Module, frames: list[np.ndarray], qp: int = DEFAULT_QP) -> dict[str, list[Feed]]:
    """Feeds of DCVC-RT's I-model stages, each frame coded as an I-frame.

    The quad spatial prior is approximated for the inputs only: step ``k`` sees the
    rounded latent on the phases decoded so far (the graphs are what is compared)."""
    record: dict[str, list[Feed]] = {}
    qps = torch.tensor([qp], dtype=torch.int32)
    for frame in frames:
        y, z_hat = _stage(net, "encoder", record, {"frame": torch.from_numpy(frame)[None], "qp": qps})
        _, common = _stage(net, "prior", record, {"z_hat": z_hat, "y_like": y})
        y_hat = torch.round(y)
        for k in (1, 2, 3):
            _stage(net, f"spatial_prior_{k}", record, {"y_hat_so_far": y_hat * _quad_mask(k, y), "common": common})
        _stage(net, "decoder", record, {"y_hat": y_hat, "qp": qps})
    return {INTRA_PREFIX + k: v for k, v in record.items()}


def model_feeds(networks: dict[str, nn.Module], frames: list[np.ndarray], qp: int = DEFAULT_QP) -> dict[str, list[Feed]]:
    """Feeds for every graph of an export (graph names as in the manifest)."""
    feeds = inter_feeds(networks["inter"], frames, qp)
    if "intra" in networks:
        feeds.update(intra_feeds(networks["intra"], frames[:1], qp))
    return feeds
