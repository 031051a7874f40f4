"""``ui2c bench complexity`` and ``ui2c bench fps``.

``add_cli(subparsers)`` registers ``bench`` on the ``ui2c`` parser; each handler is
stored as ``func`` and returns the exit status, like the other sub-commands.
Results print as Markdown; ``--json`` writes the full data and ``--md`` updates
this command's blocks in a results file (``benchmarks/RESULTS.md``).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..args import add_bits_per_lane, even_size, non_negative_int, positive_int
from ..entropy.rans import DEFAULT_BITS_PER_LANE
from ..errors import UsageError
from ..models.precision import PRECISIONS

PRESETS = ("dcvc-rt", "ui2c", "ui2c-s")  # Table 2 order


def _presets(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PRESETS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown presets {unknown}; choose from {', '.join(PRESETS)}")
    return names


def _write(args: argparse.Namespace, key: str, markdown: str, data: Any) -> None:
    from .report import provenance, update_results

    print(markdown)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    if args.md:
        update_results(args.md, key, f"{provenance()}\n\n{markdown}")


def cmd_complexity(args: argparse.Namespace) -> int:
    from .table2 import format_stage_check, format_table2, table2_row

    width, height = args.size
    rows = [table2_row(p, width, height, onnx=not args.no_onnx) for p in args.models]
    markdown = format_table2(rows)
    if not args.no_onnx:
        markdown += "\n\nPer graph, MACs per call from the PyTorch hooks and from the exported ONNX graph:\n\n"
        markdown += format_stage_check(rows)
    _write(args, f"complexity-{width}x{height}", markdown, [asdict(r) for r in rows])
    return 0


def cmd_fps(args: argparse.Namespace) -> int:
    from .compare import compare, dcvc_rt_estimate, entropy_ms_per_element
    from ..models.stages import padded
    from .fps import run_fps
    from .report import format_compare, format_fps, format_roofline
    from .roofline import PEAKS, roofline

    width, height = args.size
    if args.compare and (args.device != "cpu" or args.backend not in ("onnxruntime", "torch")):
        raise UsageError("--compare times DCVC-RT and the other backend on the CPU with onnxruntime and torch; "
                         f"it cannot stand beside a {args.backend} run on {args.device}")
    options = dict(width=width, height=height, frames=args.frames, qp=args.qp, warmup_units=args.warmup,
                   threads=args.threads, video=args.video, device=args.device, precision=args.precision,
                   compile=args.compile, entropy=args.entropy, engine_dir=args.engine_dir,
                   bits_per_lane=args.bits_per_lane)
    run = run_fps(args.model, args.backend, **options)
    runs = [run]
    if args.compare in ("all", "backends"):
        other = "torch" if args.backend == "onnxruntime" else "onnxruntime"
        runs.append(run_fps(args.model, other, **options))
    data: dict[str, Any] = {"runs": runs, "roofline": {}}
    sections = []
    for r in runs:
        sections.append(format_fps(r))
        if args.device == "cpu" and r["backend"] in PEAKS:  # the peaks are this CPU's GEMM rates per runtime
            data["roofline"][r["backend"]] = roofline(r, PEAKS[r["backend"]]())
            sections.append(format_roofline(data["roofline"][r["backend"]], r["backend"]))
    if args.compare:
        dcvc = None
        if args.compare in ("all", "dcvc-rt"):
            entropy = {side: entropy_ms_per_element(run, side) for side in ("encode", "decode")}
            dcvc = dcvc_rt_estimate(args.backend, padded(height), padded(width), args.repeats, entropy)
        data["compare"] = compare(run, runs[1:], dcvc)
        sections.append(f"Compare ({args.backend}, {width}x{height}):\n\n" + format_compare(data["compare"]))
    key = f"fps-{args.model}-{args.backend}-{width}x{height}" + ("" if args.device == "cpu" else f"-{args.device}")
    key += "".join(f"-{tag}" for tag, default in ((args.entropy or "cpu", "cpu"), (args.precision, "fp32"),
                                                  ("compiled" if args.compile else "eager", "eager"),
                                                  (f"t{args.threads}", "t1"),
                                                  (f"b{args.bits_per_lane}", f"b{DEFAULT_BITS_PER_LANE}"))
                   if tag != default)  # variants of one configuration keep their own blocks
    _write(args, key, "\n\n".join(sections), data)
    return 0


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bench`` (sub-commands ``complexity`` and ``fps``) on the ``ui2c`` parser."""
    bench = subparsers.add_parser("bench", help="complexity (Table 2) and speed benchmarks")
    sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")

    p = sub.add_parser("complexity", help="Table 2: kMAC/px, params, latent channels, steps; PyTorch and ONNX counts")
    p.add_argument("--size", type=even_size, default=(1920, 1080),
                   help="frame size, WxH or a name such as 1080p (default: 1920x1080)")
    p.add_argument("--models", type=_presets, default=list(PRESETS),
                   help="comma-separated presets (default: %(default)s)")
    p.add_argument("--no-onnx", action="store_true", help="skip the count from exported ONNX graphs")
    p.set_defaults(func=cmd_complexity)

    p = sub.add_parser("fps", help="encode/decode fps split by stage, peak memory, roofline")
    p.add_argument("--model", default="ui2c-s", choices=["ui2c-s", "ui2c"])
    p.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch", "tensorrt", "aoti"])
    p.add_argument("--engine-dir", type=Path, help="engines or AOTInductor packages (ui2c build-engines)")
    p.add_argument("--size", type=even_size, default=(640, 360),
                   help="frame size, WxH or a name such as 360p (default: 640x360)")
    p.add_argument("--frames", type=positive_int, default=6, help="frames to code (default: %(default)s)")
    p.add_argument("--qp", type=int, default=32)
    p.add_argument("--video", type=Path,
                   help="source video, tiled or cropped to --size (default: the shipped 320x180 clip)")
    p.add_argument("--warmup", type=non_negative_int, default=1, help="untimed coding units (pairs) (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=1, help="entropy-coder threads (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS))
    p.add_argument("--compile", action="store_true",
                   help="torch backend: compile each stage with inductor (on CUDA, stages run as CUDA graphs either way)")
    p.add_argument("--entropy", choices=["cpu", "triton"],
                   help="entropy coder (default: cpu, the C++ coder; triton is opt-in until verified on a GPU)")
    add_bits_per_lane(p)
    p.add_argument("--compare", nargs="?", const="all", choices=["all", "dcvc-rt", "backends"],
                   help="ratios against a DCVC-RT estimate on this backend (dcvc-rt), against the other CPU "
                        "backend running the same model (backends), or both (all, the default)")
    p.add_argument("--repeats", type=positive_int, default=2, help="timed calls per DCVC-RT stage with --compare")
    p.set_defaults(func=cmd_fps)

    for p in sub.choices.values():
        p.add_argument("--json", type=Path, help="write the full results as JSON")
        p.add_argument("--md", type=Path, help="update this command's block in a results file, e.g. "
                                               "benchmarks/RESULTS.md")
    return bench
