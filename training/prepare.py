"""Prepare the training data file: video windows and photographs as YCbCr JPEGs in one zip.

    python -m ui2c.training.prepare -o work_dirs/data/train.zip \
        --video ../shared/data/bbb.mp4:12 --photos /usr/share/backgrounds /usr/share/wallpapers

Video is decoded with PyAV, area-downscaled 2× in 4:2:0 (this washes out the source's
compression artefacts, as for evaluation) and cut into ``--window``-frame windows
spread evenly over the clip.  Photographs are area-downscaled to fit ``--photo-size``
and converted to limited-range BT.601 YCbCr, the range decoded video has.  JPEG with
4:2:0 chroma keeps the file small (the chroma it stores is exactly the source's
half-resolution chroma).  Quality 97 (the default) keeps luma at about 47 dB (a demo
frame: 40.4 dB at 92, the codec's top-qp quality, so higher qps learned to code JPEG
artefacts); the GPU file uses 90 to travel within the device tool's limit.  Clips kept
for evaluation and the evaluation wallpaper package are refused.
"""
from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..args import add_overwrite, refuse_existing
from ..errors import UI2CError
from ..fileio import AtomicOutput
from ..video_io import box_downscale

HELD_OUT = ("cockatoo", "bikes", "mate-backgrounds", "mate/")
PHOTO_TYPES = (".jpg", ".jpeg", ".png", ".webp")


def _held_out(path: Path) -> bool:
    return any(word in str(path.resolve()) for word in HELD_OUT)


def _check_not_held_out(path: Path) -> None:
    if _held_out(path):
        raise ValueError(f"{path} is held out for evaluation ({', '.join(HELD_OUT)}); do not train on it")


def _yuv444_half(frame) -> np.ndarray:
    """(H/2, W/2, 3) 4:4:4 (nearest-upsampled chroma) of a decoded 4:2:0 frame at half size."""
    yuv = frame.to_ndarray(format="yuv420p")
    h, w = frame.height, frame.width
    y = box_downscale(yuv[:h], 2)
    planes = [y]
    for chroma in (yuv[h : h + h // 4], yuv[h + h // 4 :]):
        c = box_downscale(chroma.reshape(h // 2, w // 2), 2)
        planes.append(c.repeat(2, axis=0).repeat(2, axis=1)[: y.shape[0], : y.shape[1]])
    return np.stack(planes, axis=-1)


def video_windows(path: Path, count: int, window: int) -> list[list[np.ndarray]]:
    """``count`` windows of ``window`` consecutive frames spread evenly over the clip."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or sum(1 for _ in container.decode(stream))
        starts = np.linspace(0, max(total - window, 0), count).astype(int)
        windows = []
        for start in starts:
            container.seek(0, stream=stream) if start == 0 else container.seek(
                int(start / stream.average_rate / stream.time_base), stream=stream)
            frames = []
            for frame in container.decode(stream):
                index = round(float(frame.pts * stream.time_base * stream.average_rate))
                if index >= start:
                    frames.append(_yuv444_half(frame))
                if len(frames) == window:
                    break
            if len(frames) == window:
                windows.append(frames)
    if not windows:
        raise ValueError(f"{path} has fewer than {window} frames")
    return windows


def find_photos(roots: list[Path], min_side: int) -> list[Path]:
    """The largest landscape raster of each wallpaper (KDE ships several sizes per folder)."""
    best: dict[Path, tuple[int, Path]] = {}
    for root in roots:
        _check_not_held_out(root)
        for path in sorted(root.rglob("*")):  # a root such as /usr/share/backgrounds may hold held-out ones
            if path.suffix.lower() not in PHOTO_TYPES or "screenshot" in path.name or _held_out(path):
                continue
            with Image.open(path) as image:
                w, h = image.size
            if min(w, h) < min_side or h > w:
                continue
            key = path.parent.parent if path.parent.name.startswith("images") else path.with_suffix("")
            if key not in best or w * h > best[key][0]:
                best[key] = (w * h, path)
    return sorted(p for _, p in best.values())


def photo_ycbcr(path: Path, size: int) -> np.ndarray:
    """(H, W, 3) limited-range BT.601 YCbCr, area-downscaled so the long side is ``size``."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    scale = size / max(rgb.size)
    if scale < 1:
        rgb = rgb.resize((round(rgb.width * scale) // 2 * 2, round(rgb.height * scale) // 2 * 2), Image.BOX)
    full = np.asarray(rgb.convert("YCbCr")).astype(np.float32)
    full[..., 0] = 16 + full[..., 0] * 219 / 255
    full[..., 1:] = 128 + (full[..., 1:] - 128) * 224 / 255
    return np.round(full).astype(np.uint8)


def _jpeg(array: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("YCbCr", (array.shape[1], array.shape[0]), array.tobytes()).save(
        buffer, "JPEG", quality=quality, subsampling=2)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--video", action="append", default=[], metavar="PATH:WINDOWS",
                        help="a training clip and how many windows to take from it (repeatable)")
    parser.add_argument("--photos", nargs="*", type=Path, default=[], help="folders searched for wallpapers")
    parser.add_argument("--max-photos", type=int, default=80)
    parser.add_argument("--photo-size", type=int, default=960, help="long side of stored photos")
    parser.add_argument("--window", type=int, default=33, help="frames per video window")
    parser.add_argument("--quality", type=int, default=97)
    add_overwrite(parser)
    args = parser.parse_args(argv)
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        refuse_existing(args.output, args.overwrite)
        with AtomicOutput(args.output) as out:  # a cut-off run leaves no zip without its manifest
            manifest = _write(out.file, args, parser)
    except (UI2CError, ValueError, OSError) as exc:
        parser.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    print(f"{args.output}: {args.output.stat().st_size / 2**20:.1f} MiB, {len(manifest['videos'])} video windows, "
          f"{len(manifest['photos'])} photos")


def _write(file, args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """The archive's members into ``file``; returns the manifest."""
    manifest: dict = {"videos": [], "photos": [], "jpeg_quality": args.quality}
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
        for spec in args.video:
            path_text, _, count = spec.rpartition(":")
            if not path_text or not count.isdigit():
                parser.error(f"--video expects PATH:WINDOWS, got {spec!r}")
            path = Path(path_text)
            _check_not_held_out(path)
            for frames in video_windows(path, int(count), args.window):
                index = len(manifest["videos"])
                for t, frame in enumerate(frames):
                    archive.writestr(f"video/{index:03d}/{t:02d}.jpg", _jpeg(frame, args.quality))
                manifest["videos"].append({"source": path.name, "frames": len(frames), "size": list(frames[0].shape[1::-1])})
        photos = find_photos(args.photos, min_side=args.photo_size // 2)
        step = max(len(photos) / args.max_photos, 1.0)
        for index, path in enumerate(photos[int(i * step)] for i in range(min(len(photos), args.max_photos))):
            array = photo_ycbcr(path, args.photo_size)
            archive.writestr(f"photo/{index:03d}.jpg", _jpeg(array, args.quality))
            source = str(path)
            manifest["photos"].append({"source": source[source.find("usr/share/"):], "size": list(array.shape[1::-1])})
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
    return manifest


if __name__ == "__main__":
    main()
