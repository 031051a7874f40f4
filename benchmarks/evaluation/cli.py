"""``ui2c eval``: options checked at parse time, a results folder that is refused when
it exists (without ``-y``) and removed again when the run fails.

Parsing needs neither matplotlib nor ffmpeg (the harness imports its plots where it
draws them), so every other ``ui2c`` command works without the ``eval`` extra.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Sequence

from ...args import (add_overwrite, add_reset_options, non_negative_int, output_path, positive_int, qp_list,
                     refuse_existing, reset_settings)
from ...fileio import replace_dir, staging_dir
from ...models.presets import PAIR_PRESETS
from .anchors import QP_MAX, QP_MIN, AnchorError, AnchorSpec
from .evaluate import DEFAULT_ANCHORS, DEFAULT_QPS, REFERENCE_ANCHOR, EvalConfig, evaluate, format_bd_value, scene_cut_trace


def _anchor_qps(text: str) -> list[int]:
    """Comma-separated anchor (x264/x265) QPs in their 8-bit range."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(QP_MIN <= v <= QP_MAX for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers in {QP_MIN}..{QP_MAX}, got {text!r}")
    return values


def _anchors(text: str) -> list[str]:
    """Comma-separated CODEC-PRESET names, checked now rather than after our encodes."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    for name in names:
        try:
            AnchorSpec.parse(name)
        except AnchorError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return names


def cmd_eval(args: argparse.Namespace) -> int:
    from ...runtime.model import load_codec

    refuse_existing(args.output, args.overwrite)
    # Built in a private folder and swapped in whole: a failed run leaves no half-filled
    # folder, and a replaced one (-y) keeps no file of its earlier run.
    staging = staging_dir(args.output)
    try:
        codec = load_codec(args.model, weights=args.weights, backend=args.backend)
        cfg = EvalConfig(qps=args.qps, anchors=args.anchors, anchor_qps=args.anchor_qps, frames=args.frames,
                         start=args.start, downscale=args.downscale, threads=args.threads,
                         progress=sys.stderr.isatty(), resets=reset_settings(args))
        run = scene_cut_trace if args.cut_plot else evaluate
        results = run(codec, args.input, staging, cfg, weights=None if args.weights is None else str(args.weights))
        replace_dir(staging, args.output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already once published
    for name, v in results.get("bd", {}).items():
        print(f"{name} vs {REFERENCE_ANCHOR}: BD-rate {format_bd_value(v['bd_rate_pct'], '%')}, "
              f"BD-PSNR {format_bd_value(v['bd_psnr_db'], 'dB')}")
    print(f"results in {args.output}")
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``ui2c eval``."""
    p = subparsers.add_parser("eval", help="rate-distortion evaluation against x264/x265 (needs ffmpeg)")
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=output_path, required=True, help="results folder")
    p.add_argument("--qps", type=qp_list, default=list(DEFAULT_QPS),
                   help=f"our qps (default: {','.join(map(str, DEFAULT_QPS))})")
    p.add_argument("--model", default="ui2c-s", choices=PAIR_PRESETS, help="model preset (default: %(default)s)")
    p.add_argument("--weights", type=Path, help="weights file (default: the preset's shipped weights)")
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch"])
    p.add_argument("--threads", type=positive_int, default=1, help="entropy-coder threads (default: %(default)s)")
    p.add_argument("--frames", type=positive_int, help="evaluate the first N frames (from --start)")
    p.add_argument("--start", type=non_negative_int, default=0, metavar="N",
                   help="start at the input's frame N, coded as a first frame: against a whole-clip run, "
                        "drift apart from content (python -m ui2c.training.drift --restart)")
    p.add_argument("--downscale", type=int, default=1, choices=range(1, 9), metavar="F",
                   help="area-downscale the input by F first, e.g. 2 (default: %(default)s)")
    p.add_argument("--anchors", type=_anchors, default=",".join(DEFAULT_ANCHORS),
                   help="comma-separated CODEC-PRESET anchors, empty for none (default: %(default)s)")
    p.add_argument("--anchor-qps", type=_anchor_qps, help="anchor QPs (default: chosen so their rates overlap ours)")
    add_reset_options(p)
    p.add_argument("--cut-plot", action="store_true",
                   help="instead of the RD sweep: per-frame bits/PSNR at the first qp vs x264-medium at "
                        "the closest rate, with reset points marked (scene_cuts.png)")
    add_overwrite(p)
    p.set_defaults(func=cmd_eval)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ui2c.benchmarks.evaluation.cli ARGS`` runs ``ui2c eval ARGS``, errors included."""
    from ...cli import main as ui2c_main

    return ui2c_main(["eval", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
