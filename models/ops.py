"""Small tensor operations shared by the models, the exporter and the runtime."""
from __future__ import annotations

import torch

# Hierarchical qp offsets by frame index modulo 8 (UI2C paper; DCVC-RT's
# index_map [0,1,0,2,0,2,0,2] with shifts [0,8,4] gives the same per-frame offsets).
HIERARCHICAL_QP_OFFSETS = (0, 8, 0, 4, 0, 4, 0, 4)
QP_LEVELS = 64
QP_ROWS = QP_LEVELS + max(HIERARCHICAL_QP_OFFSETS)  # 72 table rows


def frame_qps(base_qp: int, first_frame: int, frames: int) -> list[int]:
    """qp of each frame slot of a coding unit starting at ``first_frame``.

    The later frame of a pair gets the higher qp because it is the next reference.
    """
    if not 0 <= base_qp < QP_LEVELS:
        raise ValueError(f"qp must be in [0, {QP_LEVELS - 1}], got {base_qp}")
    return [base_qp + HIERARCHICAL_QP_OFFSETS[(first_frame + s) % 8] for s in range(frames)]


def slot_scale(table: torch.Tensor, qp: torch.Tensor) -> torch.Tensor:
    """Per-channel scales for one coding unit: the dual-frame qp table lookup.

    ``table`` is (rows, C, 1, 1); ``qp`` holds one row index per frame slot.  The
    channels are split into ``len(qp)`` equal contiguous groups and group ``s`` reads
    row ``qp[s]``, so each frame slot controls its own share of the features.  With
    one slot this is DCVC-RT's plain ``table[qp]`` row lookup.  Returns (1, C, 1, 1).
    """
    slots = qp.shape[0]
    group = table.shape[1] // slots
    rows = [table.index_select(0, qp[s : s + 1])[:, s * group : (s + 1) * group] for s in range(slots)]
    return rows[0] if slots == 1 else torch.cat(rows, dim=1)


def checkerboard_masks(channels: int, height: int, width: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """DCVC-RT's two-step masks (spec §3.3): checkerboard m0 on the first channel
    half and its complement on the second half; step 1 is the complement."""
    yy = torch.arange(height, device=device).view(-1, 1)
    xx = torch.arange(width, device=device).view(1, -1)
    m0 = ((yy + xx) % 2 == 0).to(torch.float32)
    half = channels // 2
    mask0 = torch.cat([m0.expand(half, -1, -1), (1 - m0).expand(channels - half, -1, -1)]).unsqueeze(0)
    return mask0, 1 - mask0
