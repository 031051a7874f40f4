"""``ui2c`` command line: encode, decode, evaluate, export, build engines, benchmark.

Conventions follow ffmpeg/x265: input first, ``-o`` for the output, ``--qp`` for the
rate (0..63, larger = better quality and more bits).  Every user error is printed as
one line naming the problem, with exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import UI2CError

PRESET_HELP = "model preset: ui2c-s (shipped demo weights), ui2c (paper size), dcvc-rt"


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1920x1080, got {text!r}") from None
    return w, h


def _codec_args(p: argparse.ArgumentParser, default_backend: str | None = "onnxruntime") -> None:
    p.add_argument("--model", default="ui2c-s", help=PRESET_HELP + " (default: %(default)s)")
    p.add_argument("--weights", type=Path, help="weights file (default: the preset's shipped weights)")
    p.add_argument("--backend", default=default_backend, choices=["onnxruntime", "torch", "tensorrt"],
                   help="network backend (default: %(default)s; decode: the one named in the stream)")
    p.add_argument("--engines", type=Path, help="engine directory for --backend tensorrt (ui2c build-engines)")
    p.add_argument("--threads", type=int, default=1, help="entropy-coder threads (default: %(default)s)")


def _load(args: argparse.Namespace, backend: str):
    from .runtime.model import load_codec

    precision = "fp16" if backend == "tensorrt" else "fp32"
    return load_codec(args.model, weights=args.weights, backend=backend, precision=precision, engine_dir=args.engines)


def cmd_encode(args: argparse.Namespace) -> int:
    from .runtime.api import encode_file

    codec = _load(args, args.backend)
    width, height = args.size if args.size else (None, None)
    res = encode_file(codec, args.input, args.output, args.qp, width=width, height=height, max_frames=args.frames,
                      reset_interval=args.reset_interval,
                      scene_cut_threshold=None if args.scene_cut <= 0 else args.scene_cut, threads=args.threads)
    print(f"{args.output}: {res.frames} frames {res.width}x{res.height}, {res.file_bytes} bytes, "
          f"{res.bpp:.4f} bpp, reset points at frames {res.resets}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from .runtime.api import decode_file
    from .runtime.container import ContainerReader

    with ContainerReader(args.input) as reader:
        header = reader.header
    args.model = header.preset
    backend = args.backend or header.backend.split("-")[0]
    n = decode_file(_load(args, backend), args.input, args.output, from_reset=args.from_reset, threads=args.threads)
    print(f"{args.output}: {n} frames {header.width}x{header.height}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import format_rows, run_demo

    rows = run_demo(args.output, backend=args.backend)
    print("ui2c-s (shipped demo weights) on the shipped Big Buck Bunny clip, 16 frames 320x180:")
    print(format_rows(rows))
    print(f"streams and side-by-side preview in {args.output}/")
    return 0


def cmd_complexity(args: argparse.Namespace) -> int:
    from .benchmarks.complexity import complexity_json, count_preset, format_modules, format_table

    width, height = args.size
    rows = count_preset(args.model, width, height)
    if args.json:
        print(complexity_json(rows))
    else:
        print(f"complexity at {width}x{height} (kMAC per frame pixel; spec §0 counting rule)")
        print(format_table(rows))
        for row in rows:
            print(format_modules(row))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .training.trainer import TrainConfig, train

    cfg = TrainConfig(preset=args.model, video=str(args.video), out_dir=str(args.out), minutes=args.minutes,
                      batch=args.batch, crop=args.crop)
    print(f"checkpoint: {train(cfg)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ui2c", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="encode + decode the shipped clip with the shipped weights at 4 qps")
    p.add_argument("-o", "--output", type=Path, default=Path("ui2c_demo"))
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch"])
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("encode", help="encode a video (.y4m, .yuv, .mp4) into a .ui2c stream")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--qp", type=int, required=True, help="rate 0..63; larger = higher quality")
    p.add_argument("--size", type=_size, help="WxH for raw .yuv input without the size in its name")
    p.add_argument("--frames", type=int, help="code only the first N frames")
    p.add_argument("--reset-interval", type=int, default=0, help="insert a reset point every N frames (0 = never)")
    p.add_argument("--scene-cut", type=float, default=0.1,
                   help="mean |ΔY| (0..1) that starts a reset point; 0 disables (default: %(default)s)")
    _codec_args(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decode a .ui2c stream to .y4m or .yuv")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--from-reset", type=int, help="start at the N-th reset point (random access)")
    _codec_args(p, default_backend=None)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("complexity", help="parameters and kMACs per pixel of a preset")
    p.add_argument("--model", default="ui2c", help=PRESET_HELP)
    p.add_argument("--size", type=_size, default=(1920, 1080))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_complexity)

    p = sub.add_parser("train", help="train a pair model on CPU (resumable)")
    p.add_argument("--model", default="ui2c-s", help=PRESET_HELP)
    p.add_argument("--video", type=Path, required=True, help="training video, e.g. ../shared/data/bbb.mp4")
    p.add_argument("-o", "--out", type=Path, default=Path("work_dirs/ui2c-s"))
    p.add_argument("--minutes", type=float, default=120.0, help="training-time budget (resumes count it)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=128)
    p.set_defaults(func=cmd_train)

    from .benchmarks.cli import add_cli as add_bench_cli
    from .engines.cli import add_cli as add_engines_cli
    from .export.cli import add_cli as add_export_cli
    from .benchmarks.evaluation.evaluate import add_cli as add_eval_cli

    add_eval_cli(sub)
    add_bench_cli(sub)
    add_export_cli(sub)
    add_engines_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UI2CError as exc:
        print(f"ui2c {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
