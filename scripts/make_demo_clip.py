"""Cut the shipped demo clip ``ui2c/assets/bbb_320x180_16f.y4m`` from Big Buck Bunny.

The package ships one small real clip so the examples and tests run without the
shared data folder.  320×180 is chosen because 180 is not a multiple of 16, so every
run through the codec exercises the replicate padding and the crop of spec §4.
Downscaling is a 4×4 box average done on the YUV planes themselves (an exact "area"
filter for an integer factor, rounded half up), so no RGB round trip or swscale
version can change the bytes.

Source: Big Buck Bunny, (c) Blender Foundation, CC-BY 3.0; see ui2c/assets/LICENSE.md.
Run:  python scripts/make_demo_clip.py [--source PATH] [--frames 16] [--factor 4]
"""
from __future__ import annotations

import argparse
from itertools import islice
from pathlib import Path

from ui2c.video_io import Frame, Y4MWriter, box_downscale, open_video

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/work/shared/data/bigbuckbunny.mp4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--factor", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    reader = open_video(args.source)
    if reader.chroma != "420":
        raise SystemExit(f"{args.source} is 4:{reader.chroma[1:]}, expected a 4:2:0 source")
    if reader.width % (2 * args.factor) or reader.height % (2 * args.factor):  # box_downscale would crop
        raise SystemExit(f"{args.source}: {reader.width}x{reader.height} 4:2:0 planes do not divide by {args.factor}")
    width, height = reader.width // args.factor, reader.height // args.factor
    out = args.out or ROOT / "ui2c" / "assets" / f"bbb_{width}x{height}_{args.frames}f.y4m"
    with Y4MWriter(out, fps=reader.fps, protect=[args.source]) as writer:
        for frame in islice(reader, args.frames):
            writer.write(Frame(*(box_downscale(p, args.factor) for p in frame.planes), "420"))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
