"""Markdown for the speed results, and updating ``benchmarks/RESULTS.md`` in place.

Each command owns marked blocks (``<!-- bench:KEY -->`` … ``<!-- /bench:KEY -->``)
and rewrites only those, so sections other engineers add by hand stay untouched.
A block seen for the first time is appended at the end of the file.
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import sys
from pathlib import Path

import onnxruntime
import torch


def _command() -> str:
    """The command line as typed: ``ui2c ...`` or ``python -m ui2c.<module> ...``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None and spec.name != "ui2c.cli" else "ui2c"
    return " ".join([program, *sys.argv[1:]])


def provenance() -> str:
    """Command, date and machine, for the top of every block."""
    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        cpu = model
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"`{_command()}` — {datetime.date.today().isoformat()}, {cpu}, {cores} cores "
            f"(shared), torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"onnxruntime {onnxruntime.__version__}")


def format_fps(run: dict) -> str:
    """Per-part ms per frame of both sides, fps, memory."""
    enc, dec = run["encode"], run["decode"]
    labels = sorted(set(enc["parts"]) | set(dec["parts"]), key=lambda k: (k == "other", k))
    lines = [f"**{run['model']}, {run['producer']}, {run['width']}x{run['height']}** on {run['device']}: "
             f"{run['frames']} frames after {run['warmup_units']} warm-up unit(s), qp {run['qp']}, "
             f"{run['bpp']:.4f} bpp ({run['weights']} weights), entropy coder {run['entropy_coder']} "
             f"({run['entropy_threads']} thread(s), {run['bits_per_lane']} bits per lane)",
             "",
             "| part | encode ms/frame | share | decode ms/frame | share |", "|---|---:|---:|---:|---:|"]
    for label in labels:
        cells = []
        for side in (enc, dec):
            ms = side["parts"].get(label, {"ms": 0.0})["ms"] / side["frames"]
            cells += [f"{ms:.1f}", f"{100 * ms / side['ms_per_frame']:.0f}%"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [f"| **total** | **{enc['ms_per_frame']:.1f}** | | **{dec['ms_per_frame']:.1f}** | |",
              f"| **fps** | **{enc['fps']:.2f}** | | **{dec['fps']:.2f}** | |",
              f"| network-only fps (ceiling) | {run['network_only_fps']['encode']:.2f} | "
              f"{100 * run['efficiency']['encode']:.0f}% | {run['network_only_fps']['decode']:.2f} | "
              f"{100 * run['efficiency']['decode']:.0f}% |", ""]
    for side_name, side in (("encode", enc), ("decode", dec)):
        if side["overlapped"]:
            lines.append(f"Overlapped with the networks ({side_name}, worker thread): " + ", ".join(
                f"{k} {v['ms'] / side['frames']:.2f} ms/frame" for k, v in side["overlapped"].items()) + ".")
        if side["device_ms"]:
            lines.append(f"GPU time per frame ({side_name}, CUDA events): " + ", ".join(
                f"{k} {ms / side['frames']:.2f} ms" for k, ms in sorted(side["device_ms"].items())) + ".")
    lines += ["",
              f"Source read + 4:4:4 float conversion (outside the fps timer, spec §5): "
              f"{run['source_convert_ms_per_frame']:.1f} ms/frame. "
              f"Peak RSS: {run['memory']['peak_rss_mib']:.0f} MiB ({run['memory']['scope']})."]
    return "\n".join(lines)


def format_roofline(roof: dict, backend: str) -> str:
    lines = [f"Roofline ({backend}): measured dense GEMM peak {roof['peak_gmac_s']:.1f} GMAC/s ({roof['gemm']}); "
             f"network stages overall {roof['network']['gmac_s']:.1f} GMAC/s = "
             f"{100 * roof['network']['fraction_of_peak']:.0f}% of peak", "",
             "| stage | GMAC/call | ms/call | GMAC/s | of peak |", "|---|---:|---:|---:|---:|"]
    for name, s in roof["stages"].items():
        lines.append(f"| {name} | {s['gmac_per_call']:.2f} | {s['ms_per_call']:.1f} | {s['gmac_s']:.1f} "
                     f"| {100 * s['fraction_of_peak']:.0f}% |")
    return "\n".join(lines)


def format_compare(result: dict) -> str:
    dcvc, lines = result["dcvc-rt"], []
    if dcvc is not None:
        lines += ["| DCVC-RT (composed estimate) | encode ms/frame | decode ms/frame |", "|---|---:|---:|"]
        for kind, name in (("P", "P-frame network (DMC)"), ("I", "I-frame network (DMCI)")):
            lines.append(f"| {name} | {dcvc[kind]['encode']['net_ms']:.1f} | {dcvc[kind]['decode']['net_ms']:.1f} |")
            lines.append(f"| {kind}-frame entropy coding (scaled estimate) "
                         f"| {dcvc[kind]['encode']['entropy_ms_est']:.1f} | {dcvc[kind]['decode']['entropy_ms_est']:.1f} |")
        lines.append("")
    lines += ["| ratio (> 1: first named faster) | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in result["ratios"].items()]
    return "\n".join(lines)


def _block(key: str, body: str) -> str:
    return f"<!-- bench:{key} -->\n{body.rstrip()}\n<!-- /bench:{key} -->"


def update_results(path: Path, key: str, body: str) -> None:
    """Replace block ``key`` of ``path`` with ``body`` (or append it)."""
    text = path.read_text() if path.is_file() else ""
    pattern = re.compile(rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->", re.S)
    block = _block(key, body)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
