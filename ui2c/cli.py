"""``ui2c`` command line: encode, decode, evaluate, export, build engines, benchmark.

Conventions follow ffmpeg/x265: input first, ``-o`` for the output, ``--qp`` for the
rate (0..63, larger = better quality and more bits).  Every user error is printed as
one line naming the problem, with exit status 2.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import args as opt
from .errors import ModelMismatchError, OutputError, UI2CError, UsageError

PRESET_HELP = "model preset: ui2c-s (shipped demo weights), ui2c (paper size), dcvc-rt"
PAIR_PRESET_HELP = "model preset: ui2c-s (shipped demo weights) or ui2c (paper size)"


class Interrupted(BaseException):
    """SIGTERM or SIGHUP, raised like KeyboardInterrupt so every ``with`` block unwinds
    and removes its temporary output; a BaseException so no ``except Exception`` eats it."""


def _codec_args(p: argparse.ArgumentParser, encode: bool) -> None:
    from .models.precision import PRECISIONS
    from .models.presets import PAIR_PRESETS
    from .runtime.model import BACKENDS

    if encode:
        p.add_argument("--model", default="ui2c-s", choices=PAIR_PRESETS, help=PAIR_PRESET_HELP + " (default: %(default)s)")
        p.add_argument("--backend", default="onnxruntime", choices=BACKENDS, help="network backend (default: %(default)s)")
        p.add_argument("--device", default="cpu", help="cpu or cuda[:N]: where the networks, the latent codec and "
                                                       "the buffers live (default: %(default)s)")
        p.add_argument("--precision", choices=list(PRECISIONS),
                       help="network precision (default: fp16 for tensorrt and CUDA, else fp32)")
        p.add_argument("--compile", action="store_true",
                       help="torch backend: compile each stage with inductor (on CUDA, stages run as CUDA graphs either way)")
    p.add_argument("--weights", type=Path, help="weights file (default: the preset's shipped weights)")
    p.add_argument("--engines", type=Path, help="engine directory for the tensorrt and aoti backends (ui2c build-engines)")
    p.add_argument("--threads", type=opt.positive_int, default=1, help="entropy-coder threads (default: %(default)s)")
    opt.add_overwrite(p)


def _load(args: argparse.Namespace, preset: str, backend: str, precision: str, device: str = "cpu",
          compile: bool = False, threads: int | None = None):
    from .runtime.model import load_codec

    return load_codec(preset, weights=args.weights, backend=backend, precision=precision, engine_dir=args.engines,
                      device=device, compile=compile, threads=threads)


def _prepare_output(path: Path, overwrite: bool, protect: list[Path] = ()) -> None:
    """Every output problem is found before a model is loaded."""
    from .fileio import check_output

    check_output(path, protect)
    opt.refuse_existing(path, overwrite)


def _progress() -> bool:
    """Progress bars only on a terminal: in a log they are noise around the result."""
    return sys.stderr.isatty()


def _refuse_unused_options(args: argparse.Namespace) -> None:
    """An option the chosen setup would ignore is refused: the user meant something by it."""
    problems = []
    if args.size and args.input.suffix.lower() != ".yuv":
        problems.append(f"--size is for raw .yuv input; {args.input.suffix or 'this input'} carries its own size")
    if args.compile and args.backend != "torch":
        problems.append(f"--compile applies to the torch backend, not {args.backend}")
    if args.engines and args.backend not in ("tensorrt", "aoti"):
        problems.append(f"--engines applies to the tensorrt and aoti backends, not {args.backend}")
    if args.backend == "tensorrt" and not args.device.startswith("cuda"):
        problems.append("--backend tensorrt runs on a GPU: pass --device cuda[:N]")
    if problems:
        raise UsageError("; ".join(problems))


def cmd_encode(args: argparse.Namespace) -> int:
    from .runtime.api import encode_file

    _refuse_unused_options(args)
    _prepare_output(args.output, args.overwrite, protect=[args.input])
    precision = args.precision or opt.default_precision(args.backend, args.device)
    codec = _load(args, args.model, args.backend, precision, args.device, args.compile)
    width, height = args.size if args.size else (None, None)
    res = encode_file(codec, args.input, args.output, args.qp, width=width, height=height, max_frames=args.frames,
                      threads=args.threads, progress=_progress(), bits_per_lane=args.bits_per_lane,
                      **opt.reset_settings(args))
    print(f"{args.output}: {res.frames} frames {res.width}x{res.height}, {res.file_bytes} bytes, "
          f"{res.bpp:.4f} bpp, reset points at frames {res.resets}")
    return 0


def producer_setup(producer: str):
    """What can decode a stream (a ``runtime.backends.base.Producer``), from its producer
    string; parsed only here, compared whole elsewhere."""
    from .runtime.backends.base import parse_producer
    from .runtime.model import BACKENDS

    setup = parse_producer(producer)
    if setup is None or setup.backend not in BACKENDS:
        raise ModelMismatchError(f"stream was produced by {producer!r}, which this build cannot run "
                                 f"(backends: {', '.join(BACKENDS)})")
    return setup


def cmd_decode(args: argparse.Namespace) -> int:
    from .models.presets import PAIR_PRESETS
    from .runtime.api import decode_file
    from .runtime.container import ContainerReader
    from .video_io import check_writer_path

    with ContainerReader(args.input) as reader:  # read once: the input may be a pipe
        header = reader.header
        if header.preset not in PAIR_PRESETS:
            raise ModelMismatchError(f"stream names model preset {header.preset!r}, which this build does not have")
        setup = producer_setup(header.backend)
        _prepare_output(args.output, args.overwrite, protect=[args.input])
        check_writer_path(args.output)
        codec = _load(args, header.preset, setup.backend, setup.precision, setup.device, setup.compile, setup.threads)
        n = decode_file(codec, args.input, args.output, from_reset=args.from_reset, threads=args.threads,
                        progress=_progress(), reader=reader)
    print(f"{args.output}: {n} frames {header.width}x{header.height}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import format_rows, run_demo

    if args.output.exists() and not args.output.is_dir():
        raise OutputError(f"{args.output} is a file, not a folder")
    opt.refuse_existing(args.output, args.overwrite)
    rows = run_demo(args.output, backend=args.backend, progress=print)
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


def build_parser() -> argparse.ArgumentParser:
    parser = opt.Parser(prog="ui2c", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="encode + decode the shipped clip with the shipped weights at 4 qps")
    p.add_argument("-o", "--output", type=opt.output_path, default=Path("ui2c_demo"), help="folder (default: %(default)s)")
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch"])
    opt.add_overwrite(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("encode", help="encode a video (.y4m, .yuv, .mp4) into a .ui2c stream")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=opt.output_path, required=True)
    p.add_argument("--qp", type=opt.qp, required=True, help=f"rate 0..{opt.QP_MAX}; larger = higher quality")
    p.add_argument("--size", type=opt.size,
                   help="WxH (or a name such as 1080p) for raw .yuv input without the size in its name")
    p.add_argument("--frames", type=opt.positive_int, help="code only the first N frames")
    opt.add_reset_options(p)
    opt.add_bits_per_lane(p)
    _codec_args(p, encode=True)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decode a .ui2c stream to .y4m or .yuv (model and backend: the stream's)")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=opt.output_path, required=True)
    p.add_argument("--from-reset", type=opt.non_negative_int, help="start at the N-th reset point (random access)")
    _codec_args(p, encode=False)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("complexity", help="parameters and kMACs per pixel of a preset")
    p.add_argument("--model", default="ui2c", choices=("ui2c", "ui2c-s", "dcvc-rt"), help=PRESET_HELP)
    p.add_argument("--size", type=opt.size, default=(1920, 1080),
                   help="frame size, WxH or a name such as 1080p (default: 1920x1080)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_complexity)

    from .training.cli import add_cli as add_train_cli

    add_train_cli(sub)

    from .benchmarks.cli import add_cli as add_bench_cli
    from .engines.cli import add_cli as add_engines_cli
    from .export.cli import add_cli as add_export_cli
    from .benchmarks.evaluation.cli import add_cli as add_eval_cli

    add_eval_cli(sub)
    add_bench_cli(sub)
    add_export_cli(sub)
    add_engines_cli(sub)
    return parser


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _one_line(exc: BaseException) -> str:
    """The problem in one line: multi-line messages (ONNX parser lists) are joined."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    if isinstance(exc, Interrupted):
        return f"interrupted ({exc})"
    if isinstance(exc, BrokenPipeError):
        return "output pipe closed"
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run one command.  User errors, signals and I/O failures end as one line on
    stderr and exit status 2, after every partial output has been removed.  The
    signal handlers are restored on return, so calling ``main`` in-process (tests)
    leaves the caller's handlers alone."""
    # An ignored signal stays ignored: under nohup, SIGHUP must not abort an encode.
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    command = "ui2c"
    try:
        args = build_parser().parse_args(argv)
        command = f"ui2c {args.command}"
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe fails here, inside the handler, not at exit
        return status
    except (UI2CError, OSError, MemoryError, KeyboardInterrupt, Interrupted) as exc:
        if isinstance(exc, BrokenPipeError):  # nothing more can reach the reader
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"{command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
