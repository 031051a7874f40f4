"""Summarise a whole-clip ``ui2c eval`` run: does quality drift, and does qp control it?

    python -m ui2c.training.drift work_dirs/eval/cockatoo [more eval folders...]

Reads only what ``ui2c eval`` writes (``results.json`` and ``frames/*.csv``) and prints,
per qp, YUV-PSNR and bpp of the first and last ``--span`` frames, their difference (issue
14 asks for ≤ 0.5 dB), the whole clip, and the PSNR span over the tested qps (≥ 8 dB).
With ``--against BASE`` it also prints each folder's BD-rate and BD-PSNR against the
ui2c points of BASE (same clip, other encoder settings or weights), e.g. to measure
the encoder's drift guard (``scripts/eval_drift_guard.sh``).  Where the eval ran an
anchor (x264, …), the PSNR gap at equal rate at five rates across the shared range shows
where along the curve the BD-PSNR average comes from.

First against last frames mixes drift with content: a clip whose later shots are
easier gains at the end with no drift at all.  ``--restart FOLDER`` separates them.
FOLDER is an eval of the same clip from a later frame (``ui2c eval --start N``), so
its frames are coded from a blank reference, as a first frame is.  Each whole-clip
folder's PSNR on those same frames, minus FOLDER's, is what the long reference chain
lost (negative) or gained (positive): drift on identical content.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from ui2c.benchmarks.evaluation.bdrate import NoOverlapError, bd_psnr, bd_rate, psnr_gaps
from ui2c.models.ops import HIERARCHICAL_QP_OFFSETS


def _model_points(folder: Path) -> tuple[dict, list[dict]]:
    """An eval folder's results and its model's RD points, by qp."""
    results = json.loads((folder / "results.json").read_text())
    return results, sorted((p for p in results["points"] if p["codec"] == results["model"]), key=lambda p: p["qp"])


def _frame_rows(folder: Path, point: dict) -> list[dict]:
    """The per-frame CSV rows of one RD point."""
    frames_csv = folder / "frames" / f"{point['codec']}_qp{point['qp']:02d}.csv"
    if not frames_csv.exists():
        raise FileNotFoundError(f"{frames_csv} is missing: the per-frame data of ui2c eval is needed")
    with frames_csv.open() as f:
        return list(csv.DictReader(f))


def summarise(folder: Path, span: int, shot: tuple[int, int] | None = None) -> str:
    """Markdown table per qp; with ``shot`` = (first, end) frames of one shot without a cut,
    also the PSNR of its first and last 10 frames: drift that a whole-clip mean hides
    when the clip's later shots are simply harder."""
    results, points = _model_points(folder)
    width, height = results["width"], results["height"]
    shot_head = f" shot {shot[0]}–{shot[1] - 1}: first 10 → last 10 |" if shot else ""
    lines = [f"**{Path(results['input']).name}**, {results['frames']} frames {width}x{height}, "
             f"weights `{results.get('weights') or 'shipped'}` ({results['weights_fingerprint']})", "",
             f"| qp | PSNR first {span} | PSNR last {span} | last − first | PSNR all | bpp first {span} | bpp last {span} | bpp all | resets |{shot_head}",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---|" if shot else "")]
    psnr_all = {}
    for point in points:
        rows = _frame_rows(folder, point)
        psnr = np.array([float(r["psnr_yuv"]) for r in rows])
        bpp = np.array([float(r["bits"]) for r in rows]) / (width * height)
        resets = sum(int(r["reset"]) for r in rows)
        psnr_all[point["qp"]] = point["psnr_yuv"]
        lines.append(f"| {point['qp']} | {psnr[:span].mean():.2f} | {psnr[-span:].mean():.2f} | "
                     f"{psnr[-span:].mean() - psnr[:span].mean():+.2f} | {point['psnr_yuv']:.2f} | {bpp[:span].mean():.4f} | "
                     f"{bpp[-span:].mean():.4f} | {point['bpp']:.4f} | {resets} |"
                     + (f" {psnr[shot[0]:shot[0] + 10].mean():.2f} → {psnr[shot[1] - 10:shot[1]].mean():.2f} |"
                        if shot else ""))
    if len(psnr_all) > 1:
        values = [psnr_all[q] for q in sorted(psnr_all)]
        lines += ["", f"PSNR span over qp {min(psnr_all)}–{max(psnr_all)}: {values[-1] - values[0]:.2f} dB, "
                      f"monotone: {bool(np.all(np.diff(values) > 0))}", ""]
    fmt = lambda v, unit: "n/a" if v is None else f"{v:+.2f}{unit}"  # noqa: E731
    for codec, bd in results.get("bd", {}).items():
        lines.append(f"- {codec} vs {results['bd_vs']}: BD-rate {fmt(bd.get('bd_rate_pct'), ' %')}, "
                     f"BD-PSNR {fmt(bd.get('bd_psnr_db'), ' dB')}")
        lines += _gaps_line(results, codec)
    return "\n".join(lines)


def _gaps_line(results: dict, codec: str) -> list[str]:
    """Where along the rate axis ``codec``'s BD-PSNR against the anchor comes from."""
    curves = {name: ([p["bpp"] for p in results["points"] if p["codec"] == name],
                     [p["psnr_yuv"] for p in results["points"] if p["codec"] == name]) for name in (codec, results["bd_vs"])}
    try:
        gaps = psnr_gaps(*curves[results["bd_vs"]], *curves[codec])
    except (NoOverlapError, ValueError):  # fewer than two points or no shared rates: nothing to place
        return []
    return ["  - PSNR gap at equal rate: " + ", ".join(f"{gap:+.2f} dB at {rate:.4f} bpp" for rate, gap in gaps)]


def _frame_psnrs(folder: Path, point: dict) -> np.ndarray:
    return np.array([float(r["psnr_yuv"]) for r in _frame_rows(folder, point)])


def restart_table(whole: Path, restarted: Path, span: int) -> str:
    """Markdown: per qp, the whole-clip run's PSNR on ``restarted``'s frames against the
    restarted run's own, over all of them and over their last ``span``."""
    (full, full_points), (part, part_points) = _model_points(whole), _model_points(restarted)
    start, frames = part.get("start", 0), part["frames"]
    differ = [k for k in ("downscale", "weights_fingerprint") if full.get(k) != part.get(k)]
    differ += ["input clip"] if Path(full["input"]).name != Path(part["input"]).name else []
    if differ:
        raise ValueError(f"{restarted} is not a restart of {whole}: their {', '.join(differ)} differ")
    if full.get("start", 0):
        raise ValueError(f"{whole} starts at frame {full['start']}: the whole-clip run must start at frame 0")
    if start % len(HIERARCHICAL_QP_OFFSETS):  # else the two runs code the same frame at different qps
        raise ValueError(f"{restarted} starts at frame {start}: a restart must start at a multiple of "
                         f"{len(HIERARCHICAL_QP_OFFSETS)} frames, so every frame keeps its qp")
    if start <= 0 or start + frames > full["frames"]:
        raise ValueError(f"{restarted} codes frames {start}..{start + frames - 1}, not a later part of {whole}'s "
                         f"0..{full['frames'] - 1} (evaluate it with ui2c eval --start N)")
    by_qp = {p["qp"]: p for p in full_points}
    lines = [f"Drift on identical content: `{whole.name}` (coded from frame 0) against `{restarted.name}` "
             f"(coded from frame {start}), frames {start}–{start + frames - 1}", "",
             f"| qp | from 0 | from {start} | difference | last {span}: from 0 | from {start} | difference |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for point in part_points:
        if point["qp"] not in by_qp:
            continue
        chain = _frame_psnrs(whole, by_qp[point["qp"]])[start:start + frames]
        fresh = _frame_psnrs(restarted, point)
        tail = slice(-min(span, frames), None)
        lines.append(f"| {point['qp']} | {chain.mean():.2f} | {fresh.mean():.2f} | {chain.mean() - fresh.mean():+.2f} | "
                     f"{chain[tail].mean():.2f} | {fresh[tail].mean():.2f} | {chain[tail].mean() - fresh[tail].mean():+.2f} |")
    if len(lines) == 4:
        raise ValueError(f"{whole} and {restarted} share no qp")
    return "\n".join(lines)


def _curve(folder: Path) -> tuple[list[float], list[float]]:
    _, points = _model_points(folder)
    return [p["bpp"] for p in points], [p["psnr_yuv"] for p in points]


def compare(base: Path, folder: Path) -> str:
    """One line: BD-rate and BD-PSNR of ``folder``'s ui2c curve against ``base``'s."""
    (rates0, psnrs0), (rates1, psnrs1) = _curve(base), _curve(folder)
    values = []
    for bd, unit in ((bd_rate, " %"), (bd_psnr, " dB")):
        try:
            values.append(f"{bd(rates0, psnrs0, rates1, psnrs1):+.2f}{unit}")
        except NoOverlapError:
            values.append("n/a (no overlap)")
    return f"- {folder.name} vs {base.name}: BD-rate {values[0]}, BD-PSNR {values[1]}"


def _shot(text: str) -> tuple[int, int]:
    first, _, end = text.partition(":")
    if not (first.isdigit() and end.isdigit() and int(end) - int(first) >= 20):
        raise argparse.ArgumentTypeError(f"expected FIRST:END with END - FIRST >= 20, got {text!r}")
    return int(first), int(end)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of ui2c eval")
    parser.add_argument("--span", type=int, default=50, help="frames at each end")
    parser.add_argument("--shot", metavar="FIRST:END", type=_shot,
                        help="frames [FIRST, END) of one shot (>= 20 frames): its first and last 10 frames' PSNR")
    parser.add_argument("--against", type=Path, metavar="BASE",
                        help="also print BD-rate / BD-PSNR of every folder against this eval folder")
    parser.add_argument("--restart", type=Path, metavar="FOLDER",
                        help="an eval of the same clip from a later frame (ui2c eval --start N): each folder's "
                             "PSNR on its frames against its own (drift on identical content)")
    args = parser.parse_args(argv)
    folders = list(dict.fromkeys(args.folders + ([args.against] if args.against else [])))
    for folder in folders + ([args.restart] if args.restart else []):
        if not (folder / "results.json").exists():
            parser.error(f"{folder} holds no results.json (not a ui2c eval output folder)")
    for folder in folders:
        try:
            print(summarise(folder, args.span, args.shot) + "\n")
        except FileNotFoundError as exc:
            parser.error(str(exc))
    for folder in args.folders if args.restart else []:
        try:
            print(restart_table(folder, args.restart, args.span) + "\n")
        except (FileNotFoundError, ValueError) as exc:
            parser.error(str(exc))
    for folder in folders if args.against else []:
        if folder != args.against:
            try:
                print(compare(args.against, folder))
            except ValueError as exc:  # too few or repeated points for a curve
                parser.error(f"{folder} vs {args.against}: {exc}")


if __name__ == "__main__":
    main()
