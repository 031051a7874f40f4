"""Summarise a whole-clip ``ui2c eval`` run: does quality drift, and does qp control it?

    python -m ui2c.training.drift work_dirs/eval/cockatoo [more eval folders...]

Reads only what ``ui2c eval`` writes (``results.json`` and ``frames/*.csv``) and prints,
per qp, YUV-PSNR and bpp of the first and last ``--span`` frames, their difference (issue
14 asks for ≤ 0.5 dB), the whole clip, and the PSNR span over the tested qps (≥ 8 dB).
With ``--against BASE`` it also prints each folder's BD-rate and BD-PSNR against the
ui2c points of BASE (same clip, other encoder settings or weights), e.g. to measure
the encoder's drift guard (``scripts/eval_drift_guard.sh``).
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from ui2c.benchmarks.evaluation.bdrate import NoOverlapError, bd_psnr, bd_rate


def _model_points(folder: Path) -> tuple[dict, list[dict]]:
    """An eval folder's results and its model's RD points, by qp."""
    results = json.loads((folder / "results.json").read_text())
    return results, sorted((p for p in results["points"] if p["codec"] == results["model"]), key=lambda p: p["qp"])


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
        frames_csv = folder / "frames" / f"{point['codec']}_qp{point['qp']:02d}.csv"
        if not frames_csv.exists():
            raise FileNotFoundError(f"{frames_csv} is missing: the per-frame data of ui2c eval is needed")
        with frames_csv.open() as f:
            rows = list(csv.DictReader(f))
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
    args = parser.parse_args(argv)
    folders = list(dict.fromkeys(args.folders + ([args.against] if args.against else [])))
    for folder in folders:
        if not (folder / "results.json").exists():
            parser.error(f"{folder} holds no results.json (not a ui2c eval output folder)")
        try:
            print(summarise(folder, args.span, args.shot) + "\n")
        except FileNotFoundError as exc:
            parser.error(str(exc))
    for folder in folders if args.against else []:
        if folder != args.against:
            try:
                print(compare(args.against, folder))
            except ValueError as exc:  # too few or repeated points for a curve
                parser.error(f"{folder} vs {args.against}: {exc}")


if __name__ == "__main__":
    main()
