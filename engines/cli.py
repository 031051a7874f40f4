"""``ui2c build-engines``: command-line front end of :func:`build_engines`.

``add_cli(subparsers)`` plugs the sub-command into the ``ui2c`` parser (the handler
is stored as ``func``); ``main(argv)`` runs it standalone.  Errors are
:class:`~ui2c.errors.EngineError`; the top-level CLI prints them.
"""
from __future__ import annotations

import argparse
import logging
from typing import Any, Sequence

from .builder import DEFAULT_PROFILES, build_engines
from .targets import TARGETS

COMMAND = "build-engines"


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the build-engines options to ``parser``."""
    parser.add_argument("--model", required=True, help="model preset; must match the export manifest")
    parser.add_argument("--onnx", required=True, help="export directory (manifest.json + ONNX files)")
    parser.add_argument("-o", "--output", required=True, help="engine output directory")
    parser.add_argument("--target", choices=TARGETS, default="trt", help="trt (needs a GPU) or trt-rtx (builds on CPU)")
    parser.add_argument(
        "--profiles",
        type=_csv,
        default=list(DEFAULT_PROFILES),
        help="comma-separated resolutions, each its own exact profile: 360p,720p,1080p or WIDTHxHEIGHT",
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


def run(args: argparse.Namespace) -> int:
    """Build the engines described by parsed ``args``; prints one line per graph."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = build_engines(
        args.onnx,
        args.output,
        args.target,
        args.profiles,
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
    return configure_parser(subparsers.add_parser(COMMAND, help="build TensorRT / TensorRT-RTX engines from an ONNX export"))


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: ``main(["--model", "ui2c", "--onnx", d, "-o", out])``."""
    parser = configure_parser(argparse.ArgumentParser(prog=f"ui2c {COMMAND}"))
    return run(parser.parse_args(argv))
