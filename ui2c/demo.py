"""``ui2c demo``: the package's main job on its embedded defaults.

Encodes the shipped clip with the shipped ``ui2c-s`` weights at several qps into real
``.ui2c`` streams, decodes them back, and prints rate and quality per qp: a working
codec shows bpp and PSNR both rising with qp.  A side-by-side PNG (source | decoded
at the lowest qp | decoded at the highest) lets a person see the reconstruction; it
is written with PyAV, a core dependency, so the demo needs no plotting library.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .fileio import write_atomic
from .runtime.api import decode_frames, encode_file
from .runtime.metrics import frame_psnr, mean_psnr
from .runtime.model import load_codec
from .video_io import array_to_planes, frame_to_array, open_video
from .shipped import DEMO_CLIP

DEMO_QPS = (8, 24, 40, 56)
PREVIEW = "demo_side_by_side.png"


def _rgb_preview(x: np.ndarray) -> np.ndarray:
    """(3, H, W) YUV in [0, 1] → (H, W, 3) RGB via BT.709 full range (display only)."""
    y, u, v = x[0], x[1] - 0.5, x[2] - 0.5
    rgb = np.stack([y + 1.5748 * v, y - 0.1873 * u - 0.4681 * v, y + 1.8556 * u], axis=-1)
    return np.clip(rgb, 0.0, 1.0)


def write_png(path: Path, images: list[np.ndarray], gap: int = 8) -> None:
    """(3, H, W) YUV images side by side, separated by white gaps, as one RGB PNG."""
    import av

    height = images[0].shape[1]
    white = np.ones((height, gap, 3))
    parts = [p for img in images for p in (white, _rgb_preview(img))][1:]
    rgb = np.ascontiguousarray(np.concatenate(parts, axis=1) * 255 + 0.5, dtype=np.uint8)
    # The PNG encoder alone, into memory (no muxer: image2 would read '%' in the path as
    # a frame-number pattern and write in place), then published atomically.
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    packets = [*codec.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")), *codec.encode()]
    write_atomic(path, b"".join(bytes(p) for p in packets))


def run_demo(out_dir: Path, backend: str = "onnxruntime", qps=DEMO_QPS, clip: Path = DEMO_CLIP,
             progress: Callable[[str], None] = lambda line: None) -> list[dict]:
    """Code ``clip`` at each qp; returns one result row per qp.  ``progress`` gets one
    line per step (the first model load exports ONNX graphs, which takes a while)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    progress(f"loading ui2c-s on {backend} (the first run exports the ONNX graphs)")
    codec = load_codec("ui2c-s", backend=backend)
    with open_video(clip) as reader:
        source = list(reader)
    rows, previews = [], []
    for qp in qps:
        progress(f"qp {qp}: encoding and decoding {len(source)} frames")
        stream = out_dir / f"demo_qp{qp}.ui2c"
        res = encode_file(codec, clip, stream, qp, progress=False)
        decoded = [f for _, _, f in decode_frames(codec, stream)]
        psnrs = [frame_psnr(src.planes, array_to_planes(rec, src.chroma)) for src, rec in zip(source, decoded)]
        summary = mean_psnr(psnrs)
        rows.append({"qp": qp, "bpp": res.bpp, "psnr_yuv": summary.yuv, "psnr_y": summary.y, "frames": len(decoded)})
        previews.append(decoded[len(decoded) // 2])
    write_png(out_dir / PREVIEW, [frame_to_array(source[len(source) // 2]), previews[0], previews[-1]])
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = ["qp   bpp      PSNR-YUV  PSNR-Y   frames"]
    lines += [f"{r['qp']:<4} {r['bpp']:<8.4f} {r['psnr_yuv']:<9.2f} {r['psnr_y']:<8.2f} {r['frames']}" for r in rows]
    return "\n".join(lines)
