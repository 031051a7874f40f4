"""``ui2c demo``: the package's main job on its embedded defaults.

Encodes the shipped clip with the shipped ``ui2c-s`` weights at several qps into real
``.ui2c`` streams, decodes them back, and prints rate and quality per qp: a working
codec shows bpp and PSNR both rising with qp.  A side-by-side PNG (source | decoded,
for the lowest and highest qp) lets a person see the reconstruction.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .runtime.api import decode_frames, encode_file
from .runtime.metrics import frame_psnr, mean_psnr
from .runtime.model import load_codec
from .runtime.video_io import array_to_planes, frame_to_array, open_video

DEMO_CLIP = Path(__file__).resolve().parent / "assets" / "bbb_320x180_16f.y4m"
DEMO_QPS = (8, 24, 40, 56)


def _rgb_preview(x: np.ndarray) -> np.ndarray:
    """(3, H, W) YUV in [0, 1] → (H, W, 3) RGB via BT.709 full range (display only)."""
    y, u, v = x[0], x[1] - 0.5, x[2] - 0.5
    rgb = np.stack([y + 1.5748 * v, y - 0.1873 * u - 0.4681 * v, y + 1.8556 * u], axis=-1)
    return np.clip(rgb, 0.0, 1.0)


def run_demo(out_dir: Path, backend: str = "onnxruntime", qps=DEMO_QPS, clip: Path = DEMO_CLIP) -> list[dict]:
    """Code ``clip`` at each qp; returns one result row per qp."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    codec = load_codec("ui2c-s", backend=backend)
    with open_video(clip) as reader:
        source = list(reader)
    rows, previews = [], []
    for qp in qps:
        stream = out_dir / f"demo_qp{qp}.ui2c"
        res = encode_file(codec, clip, stream, qp, progress=False)
        decoded = [f for _, _, f in decode_frames(codec, stream)]
        psnrs = [frame_psnr(src.planes, array_to_planes(rec, src.chroma)) for src, rec in zip(source, decoded)]
        summary = mean_psnr(psnrs)
        rows.append({"qp": qp, "bpp": res.bpp, "psnr_yuv": summary.yuv, "psnr_y": summary.y, "frames": len(decoded)})
        previews.append((qp, decoded[len(decoded) // 2]))
    middle = frame_to_array(source[len(source) // 2])
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.4))
    for ax, (title, img) in zip(axes, [("source", middle)] + [(f"decoded qp {q}", x) for q, x in (previews[0], previews[-1])]):
        ax.imshow(_rgb_preview(img))
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out_dir / "demo_side_by_side.png", dpi=100)
    plt.close(fig)
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = ["qp   bpp      PSNR-YUV  PSNR-Y   frames"]
    lines += [f"{r['qp']:<4} {r['bpp']:<8.4f} {r['psnr_yuv']:<9.2f} {r['psnr_y']:<8.2f} {r['frames']}" for r in rows]
    return "\n".join(lines)
