"""``ui2c export``: command-line front end of :func:`export_model`.

``add_cli(subparsers)`` registers the sub-command on the ``ui2c`` parser (handler in
``func``); ``main(argv)`` runs it standalone.  Each precision goes to its own
directory ``OUT/<precision>/`` because a manifest describes exactly one precision
(the engine builder's ``--onnx`` takes one of them).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any, Sequence

from .. import args as opt
from ..fileio import replace_dir, staging_dir
from ..models.checkpoint import load_preset
from ..models.precision import PRECISIONS
from ..models.presets import PRESETS
from .exporter import DEFAULT_OPSET, StateDict, export_model

COMMAND = "export"


def _precisions(text: str) -> list[str]:
    items = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in items if p not in PRECISIONS]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"precisions must be a comma-separated subset of {','.join(PRECISIONS)}")
    return items


def read_weights(preset: str, path: Path | None, intra: bool = False) -> StateDict | None:
    """The state dict in ``path``, checked against the preset's network; for the
    inter model without ``path``, the preset's shipped weights if there are any.
    None: no weights file, so the exporter uses (and records) its seeded random ones."""
    if intra and path is None:
        return None  # no intra weights ship, and a preset without an intra model has none to read
    network, source = load_preset(preset, path, allow_random=True, intra=intra)
    return None if source is None else network.state_dict()


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", required=True, choices=PRESETS, help="model preset")
    parser.add_argument("-o", "--output", type=Path, required=True, help="export directory (one sub-directory per precision)")
    parser.add_argument("--precision", type=_precisions, default=list(PRECISIONS),
                        help=f"comma-separated subset of {','.join(PRECISIONS)} (default: all of them)")
    parser.add_argument("--weights", type=Path,
                        help="weights file (default: the preset's shipped weights, else random weights from a fixed seed)")
    parser.add_argument("--intra-weights", type=Path, help="dcvc-rt only: weights of the I-frame model")
    parser.add_argument("--opset", type=opt.positive_int, default=DEFAULT_OPSET, help="ONNX opset (default: %(default)s)")
    opt.add_overwrite(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Export every requested precision; prints one manifest path per precision.

    Each precision is exported into a private folder and published with a rename, so an
    interrupted export leaves the previous one (if ``-y`` allowed replacing it) intact."""
    for precision in args.precision:  # every output problem before any work
        opt.refuse_existing(args.output / precision, args.overwrite)
    weights = read_weights(args.model, args.weights)
    intra = read_weights(args.model, args.intra_weights, intra=True)
    if weights is None:
        print(f"note: no weights for {args.model!r}; exporting random weights (the manifest records it)")
    for precision in args.precision:
        target = args.output / precision
        staging = staging_dir(target)
        try:
            manifest = export_model(args.model, staging, precision, weights=weights, opset=args.opset,
                                    intra_weights=intra)
            replace_dir(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already once published
        print(target / manifest.name)
    return 0


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``export`` on the ``ui2c`` sub-parsers; dispatch with ``args.func(args)``."""
    return configure_parser(subparsers.add_parser(COMMAND, help="export the network stages to ONNX (+ manifest.json)"))


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: ``main(["--model", "ui2c-s", "-o", "exports/ui2c-s"])``."""
    return run(configure_parser(argparse.ArgumentParser(prog=f"ui2c {COMMAND}")).parse_args(argv))
