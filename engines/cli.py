"""``ui2c build-engines``: command-line front end of the engine builders.

TensorRT / TensorRT-RTX engines (``--target trt`` / ``trt-rtx``) are built from an
ONNX export (``--onnx``) by :func:`build_engines`; AOTInductor packages
(``--target aoti``) are compiled from the preset's networks by
:func:`~ui2c.engines.aoti.build_aoti`, no ONNX export needed.

``add_cli(subparsers)`` plugs the sub-command into the ``ui2c`` parser (the handler
is stored as ``func``); ``main(argv)`` runs it standalone.  Errors are
:class:`~ui2c.errors.EngineError`; the top-level CLI prints them.
"""
from __future__ import annotations

import argparse
import logging
from typing import Any, Sequence

from ui2c import args as opt
from ui2c.errors import EngineError, UsageError
from ui2c.models.precision import PRECISIONS

from .builder import DEFAULT_PROFILES, build_engines
from .targets import TARGETS

COMMAND = "build-engines"


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the build-engines options to ``parser``."""
    parser.add_argument("--model", required=True, help="model preset; must match the export manifest")
    parser.add_argument("--onnx", help="export directory (manifest.json + ONNX files); TensorRT targets only")
    parser.add_argument("-o", "--output", required=True, help="engine output directory")
    parser.add_argument("--target", choices=(*TARGETS, "aoti"), default="trt",
                        help="trt (needs a GPU), trt-rtx (builds on CPU) or aoti (AOTInductor packages)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="aoti only: device to build for (default: cpu)")
    parser.add_argument("--precision", choices=tuple(PRECISIONS),
                        help="aoti only (default: fp16 on cuda, fp32 on cpu, as `ui2c encode` assumes)")
    parser.add_argument("--weights", help="aoti only: weights file (default: the preset's shipped weights)")
    parser.add_argument("--allow-random", action="store_true", help="aoti only: random weights (tests)")
    parser.add_argument("--jobs", type=opt.positive_int, help="aoti only: graphs compiled at once, in processes (default: 1)")
    parser.add_argument(
        "--profiles",
        type=_csv,
        help="TensorRT targets only: comma-separated resolutions, each its own exact profile: 360p,720p,1080p or "
             f"WIDTHxHEIGHT (default: {','.join(DEFAULT_PROFILES)}; aoti packages take any size)",
    )
    parser.add_argument(
        "--compute-capabilities",
        type=_csv,
        default=None,
        help="trt-rtx only: comma-separated targets such as SM86,SM89,SM120 (default: the portable set)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even over engines from another ONNX")
    parser.set_defaults(func=run)
    return parser


# The options only one kind of target reads: given to another, they would be ignored.
AOTI_ONLY = ("device", "precision", "weights", "allow_random", "jobs")
TENSORRT_ONLY = ("onnx", "profiles")
RTX_ONLY = ("compute_capabilities",)


def _refuse_foreign_options(args: argparse.Namespace) -> None:
    aoti = args.target == "aoti"
    foreign = [*(AOTI_ONLY if not aoti else ()), *(TENSORRT_ONLY if aoti else ()),
               *(RTX_ONLY if args.target != "trt-rtx" else ())]
    given = [f"--{name.replace('_', '-')}" for name in foreign if getattr(args, name) not in (None, False)]
    if given:
        raise UsageError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to --target {args.target}")


def run(args: argparse.Namespace) -> int:
    """Build the engines described by parsed ``args``; prints one line per graph."""
    _refuse_foreign_options(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.target == "aoti":
        from .aoti import build_aoti

        device = args.device or "cpu"
        for graph, package, built in build_aoti(args.model, args.output, device,
                                                args.precision or opt.default_precision("aoti", device),
                                                weights=args.weights, allow_random=args.allow_random, force=args.force,
                                                jobs=args.jobs or 1):
            print(f"{graph}: {package} ({'built' if built else 'up to date'})")
        return 0
    if args.onnx is None:
        raise EngineError(f"--target {args.target} needs --onnx (an export directory)")
    results = build_engines(
        args.onnx,
        args.output,
        args.target,
        args.profiles or DEFAULT_PROFILES,
        model=args.model,
        force=args.force,
        compute_capabilities=args.compute_capabilities,
    )
    for r in results:
        state = f"built in {r.record['build_seconds']:.1f}s" if r.built else "up to date"
        print(f"{r.graph}: {r.engine} ({state})")
    return 0


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``build-engines`` on the ``ui2c`` sub-parsers; dispatch with ``args.func(args)``."""
    return configure_parser(subparsers.add_parser(
        COMMAND, help="build TensorRT / TensorRT-RTX engines from an ONNX export, "
                      "or AOTInductor packages (--target aoti, no ONNX needed)"))


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: ``main(["--model", "ui2c", "--onnx", d, "-o", out])``."""
    parser = configure_parser(argparse.ArgumentParser(prog=f"ui2c {COMMAND}"))
    return run(parser.parse_args(argv))
