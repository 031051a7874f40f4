"""Rate-distortion evaluation of UI2C against x264/x265 (``ui2c eval``).

Every codec codes the *same* prepared source: N frames of the input (the first N,
or N from a ``start`` frame, which is then coded as a first frame), optionally area-downscaled, written once to a temporary .y4m.  Downscaling 2× averages
away the artefacts of the already-lossy public clips, which would otherwise dominate
PSNR.  Rates come from real files (our container, the anchors' elementary streams),
quality from the spec §5 metrics in the input's chroma format: our 4:4:4 float output
is pooled to 4:2:0 exactly as the decoder's output is, but left unrounded.
"""
from __future__ import annotations

import csv
import json
import math
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from ...errors import InputFormatError
from .anchors import QP_MAX, QP_MIN, AnchorSpec, encode, find_ffmpeg, run_anchor
from ...runtime.api import encode_file
from .bdrate import bd_psnr, bd_rate
from ...runtime.metrics import FramePSNR, bpp, frame_psnr, mean_psnr
from ...runtime.model import CodecModel
from ...video_io import Frame, Y4MWriter, array_to_planes, box_downscale, open_video

DEFAULT_QPS = (8, 24, 40, 56)
DEFAULT_ANCHORS = ("x264-medium", "x264-veryslow", "x265-medium", "x265-veryslow")
REFERENCE_ANCHOR = "x264-medium"  # BD-rates are against this one
ANCHOR_POINTS = 5


# --------------------------------------------------------------------------- source
def downscale(frame: Frame, factor: int) -> Frame:
    """Area (box) downscale of every plane by ``factor``, rounded half up; edges that do
    not fill a whole block (or would leave odd 4:2:0 sizes) are cropped."""
    if factor == 1:
        return frame
    step = factor * (2 if frame.chroma == "420" else 1)
    h, w = frame.height - frame.height % step, frame.width - frame.width % step
    sub = 2 if frame.chroma == "420" else 1
    return Frame(box_downscale(frame.y[:h, :w], factor), box_downscale(frame.u[:h // sub, :w // sub], factor),
                 box_downscale(frame.v[:h // sub, :w // sub], factor), frame.chroma)


def prepare_source(src: Path, dst: Path, frames: int | None, factor: int, start: int = 0) -> int:
    """Write the frames every codec will code to ``dst`` (.y4m): ``frames`` of them (all
    if None) from frame ``start`` on; returns their count."""
    count = 0
    with open_video(src) as reader, Y4MWriter(dst, fps=reader.fps, protect=[src]) as writer:
        for index, frame in enumerate(reader):
            if frames is not None and count >= frames:
                break
            if index >= start:
                writer.write(downscale(frame, factor))
                count += 1
    if count == 0:
        raise InputFormatError(f"{src} holds no frames" + (f" from frame {start} on" if start else ""))
    return count


# --------------------------------------------------------------------------- points
@dataclass
class FrameRecord:
    frame: int
    bits: float
    psnr: FramePSNR
    reset: bool


@dataclass
class RatePoint:
    codec: str
    qp: int
    stream: Path
    bpp: float
    frames: list[FrameRecord]

    @property
    def psnr(self) -> FramePSNR:
        return mean_psnr(f.psnr for f in self.frames)

    @property
    def trace(self) -> tuple[list[float], list[float]]:
        """(bits, YUV-PSNR) per frame, for plots."""
        return [f.bits for f in self.frames], [f.psnr.yuv for f in self.frames]

    @property
    def resets(self) -> list[int]:
        return [f.frame for f in self.frames if f.reset]

    def summary(self, root: Path) -> dict:
        p = self.psnr
        return {"codec": self.codec, "qp": self.qp, "stream": str(self.stream.relative_to(root)),
                "bytes": self.stream.stat().st_size, "bpp": self.bpp, "psnr_y": p.y, "psnr_u": p.u,
                "psnr_v": p.v, "psnr_yuv": p.yuv, "resets": self.resets}


def measure(source: Path, decoded: Iterable[Sequence[np.ndarray]], bits: Sequence[float],
            resets: Iterable[int]) -> list[FrameRecord]:
    """Per-frame records: spec §5 PSNR of each decoded (Y, U, V) against the source."""
    reset_set = set(resets)
    with open_video(source) as reader:
        return [FrameRecord(i, b, frame_psnr(ref.planes, rec), i in reset_set)
                for i, (ref, rec, b) in enumerate(zip(reader, decoded, bits, strict=True))]


def source_bpp(source: Path, total_bytes: int) -> float:
    with open_video(source) as reader:
        return bpp(total_bytes, reader.frame_count, reader.height, reader.width)


def ours_point(codec: CodecModel, source: Path, streams: Path, qp: int, cfg: EvalConfig) -> RatePoint:
    stream = streams / f"{codec.preset}_qp{qp:02d}.ui2c"
    res = encode_file(codec, source, stream, qp, keep_recon=True, threads=cfg.threads, progress=cfg.progress,
                      **cfg.resets)
    with open_video(source) as reader:
        chroma = reader.chroma
    planes = (array_to_planes(r, chroma) for r in res.recon)
    return RatePoint(codec.preset, qp, stream, source_bpp(source, res.file_bytes),
                     measure(source, planes, res.frame_bits(), res.resets))


def anchor_point(spec: AnchorSpec, source: Path, streams: Path, scratch: Path, qp: int) -> RatePoint:
    stream = streams / f"{spec.name}_qp{qp:02d}{spec.suffix}"
    run = run_anchor(spec, source, qp, stream, scratch / f"{spec.name}_qp{qp:02d}.y4m")
    with open_video(run.decoded) as reader:
        records = measure(source, (f.planes for f in reader), [8 * b for b in run.frame_bytes], run.keyframes)
    run.decoded.unlink()
    return RatePoint(spec.name, qp, stream, source_bpp(source, stream.stat().st_size), records)


def qp_for_bpp(rate_of: Callable[[int], float], target: float) -> int:
    """Integer QP whose rate is closest (in log-rate) to ``target``, by bisection: an
    anchor's rate falls as its QP rises, so about log2(52) encodes suffice."""
    lo, hi = QP_MIN, QP_MAX
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if rate_of(mid) > target else (lo, mid)
    return min((lo, hi), key=lambda q: abs(math.log(rate_of(q) / target)))


def anchor_grid(q_high_rate: int, q_low_rate: int, points: int = ANCHOR_POINTS, min_span: int = 12) -> list[int]:
    """``points`` QPs spanning the rates of ours with a margin, at least ``min_span``
    wide so a codec whose rate barely moves still gets a curve to compare against."""
    lo, hi = q_high_rate - 2, q_low_rate + 2
    if hi - lo < min_span:
        lo = (lo + hi - min_span) // 2
        hi = lo + min_span
    lo, hi = max(QP_MIN, lo), min(QP_MAX, hi)
    return sorted({int(round(q)) for q in np.linspace(lo, hi, points)})


class RateProbe:
    """bpp of one anchor at a QP from its stream size alone (no decode), memoised."""

    def __init__(self, spec: AnchorSpec, source: Path, scratch: Path):
        self.spec, self.source, self.scratch = spec, source, scratch
        self.cache: dict[int, float] = {}

    def __call__(self, qp: int) -> float:
        if qp not in self.cache:
            stream = self.scratch / f"probe{self.spec.suffix}"
            encode(self.spec, self.source, qp, stream)
            self.cache[qp] = source_bpp(self.source, stream.stat().st_size)
        return self.cache[qp]


# --------------------------------------------------------------------------- outputs
CSV_FIELDS = ("frame", "bits", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "reset")


def write_csv(path: Path, records: Sequence[FrameRecord]) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_FIELDS)
        for r in records:
            out.writerow([r.frame, f"{r.bits:.1f}", f"{r.psnr.y:.6f}", f"{r.psnr.u:.6f}", f"{r.psnr.v:.6f}",
                          f"{r.psnr.yuv:.6f}", int(r.reset)])


BDValue = float | None
BDTable = dict[str, dict[str, BDValue]]


def _defined(metric: Callable[..., float], *curves: list[float]) -> BDValue:
    """The metric, or None where it is undefined (no overlap, or a curve that is not a
    function of its axis), which must not read as zero."""
    try:
        return metric(*curves)
    except ValueError:  # NoOverlapError included
        return None


def bd_table(points: Sequence[RatePoint], reference: str = REFERENCE_ANCHOR) -> BDTable:
    """BD-rate (%) and BD-PSNR (dB) of every other codec against ``reference``."""
    curves: dict[str, list[RatePoint]] = {}
    for p in points:
        curves.setdefault(p.codec, []).append(p)
    if reference not in curves:
        return {}
    ref = curves.pop(reference)
    out: BDTable = {}
    for name, pts in curves.items():
        args = ([p.bpp for p in ref], [p.psnr.yuv for p in ref], [p.bpp for p in pts], [p.psnr.yuv for p in pts])
        out[name] = {"bd_rate_pct": _defined(bd_rate, *args), "bd_psnr_db": _defined(bd_psnr, *args)}
    return out


def format_bd_value(value: BDValue, unit: str) -> str:
    return "n/a (no overlap, or under 2 points)" if value is None else f"{value:+.2f} {unit}"


def markdown(title: str, points: Sequence[RatePoint], bd: BDTable) -> str:
    lines = [f"# {title}", "", "| codec | qp | bpp | PSNR-Y | PSNR-U | PSNR-V | PSNR-YUV |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for p in points:
        s = p.psnr
        lines.append(f"| {p.codec} | {p.qp} | {p.bpp:.4f} | {s.y:.2f} | {s.u:.2f} | {s.v:.2f} | {s.yuv:.2f} |")
    if bd:
        lines += ["", f"Bjøntegaard deltas (PCHIP, YUV-PSNR) against {REFERENCE_ANCHOR}: BD-rate over the shared "
                  "PSNR range (negative = fewer bits), BD-PSNR over the shared rate range (positive = better).", "",
                  "| codec | BD-rate | BD-PSNR |", "|---|---:|---:|"]
        lines += [f"| {name} | {format_bd_value(v['bd_rate_pct'], '%')} | {format_bd_value(v['bd_psnr_db'], 'dB')} |"
                  for name, v in bd.items()]
    return "\n".join(lines) + "\n"


def write_report(out: Path, title: str, info: dict, points: Sequence[RatePoint], bd: BDTable) -> None:
    frames_dir = out / "frames"
    frames_dir.mkdir(exist_ok=True)
    for p in points:
        write_csv(frames_dir / f"{p.stream.stem}.csv", p.frames)
    results = {**info, "points": [p.summary(out) for p in points], "bd_vs": REFERENCE_ANCHOR, "bd": bd}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(title, points, bd))


# --------------------------------------------------------------------------- runs
@dataclass
class EvalConfig:
    qps: Sequence[int] = DEFAULT_QPS
    anchors: Sequence[str] = DEFAULT_ANCHORS
    anchor_qps: Sequence[int] | None = None  # None: chosen to overlap our rates
    frames: int | None = None
    start: int = 0  # the input's frame the coded clip starts at
    downscale: int = 1
    threads: int = 1
    progress: bool = False
    resets: dict = field(default_factory=dict)  # encode_file's reset keywords (ui2c.args.reset_settings)


def _info(src: Path, source: Path, cfg: EvalConfig, codec: CodecModel, weights: str | None) -> dict:
    with open_video(source) as r:
        frames, width, height, chroma = r.frame_count, r.width, r.height, r.chroma
    return {"input": str(src), "start": cfg.start, "frames": frames, "width": width, "height": height,
            "chroma": chroma, "downscale": cfg.downscale, "model": codec.preset, "weights": weights,
            "weights_fingerprint": codec.weights_fingerprint, "backend": codec.producer, "resets": cfg.resets}


def _title(src: Path, info: dict) -> str:
    start = f" from frame {info['start']}" if info["start"] else ""
    return f"{src.name}: {info['frames']} frames{start} {info['width']}x{info['height']}"


@contextmanager
def _prepared(src: Path, out: Path, cfg: EvalConfig) -> Iterator[tuple[Path, Path, Path]]:
    """(source .y4m, scratch folder, streams folder): the prepared source and decoded
    anchor frames live in a temporary folder, only the bitstreams are kept in ``out``."""
    streams = out / "streams"
    streams.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ui2c-eval-") as tmp:
        scratch = Path(tmp)
        prepare_source(src, scratch / "source.y4m", cfg.frames, cfg.downscale, cfg.start)
        yield scratch / "source.y4m", scratch, streams


def evaluate(codec: CodecModel, src: Path, out: Path, cfg: EvalConfig, weights: str | None = None,
             log: Callable[[str], None] = print) -> dict:
    """The RD sweep: ours at every qp, each anchor at QPs overlapping our rates, then
    CSVs, results.json/.md, rd.png and frames.png in ``out``.  Returns results.json."""
    from .plots import plot_frames, plot_rd  # matplotlib only where a figure is drawn (eval extra)

    specs = [AnchorSpec.parse(a) for a in cfg.anchors]
    if specs:
        find_ffmpeg()  # a missing ffmpeg fails now, not after minutes of coding our points
    with _prepared(src, out, cfg) as (source, scratch, streams):
        info = _info(src, source, cfg, codec, weights)
        log(f"source: {info['frames']} frames {info['width']}x{info['height']} {info['chroma']}")
        points = []
        for qp in cfg.qps:
            points.append(ours_point(codec, source, streams, qp, cfg))
            log(_line(points[-1]))
        qps = list(cfg.anchor_qps or [])
        if specs and not qps:
            probe = RateProbe(next((s for s in specs if s.name == REFERENCE_ANCHOR), specs[0]), source, scratch)
            ours = [p.bpp for p in points]
            qps = anchor_grid(qp_for_bpp(probe, max(ours)), qp_for_bpp(probe, min(ours)))
            log(f"anchor qps (rates overlapping ours): {qps}")
        for spec in specs:
            for qp in qps:
                points.append(anchor_point(spec, source, streams, scratch, qp))
                log(_line(points[-1]))
    bd = bd_table(points)
    info["anchor_qps"] = qps
    title = _title(src, info)
    write_report(out, title, info, points, bd)
    curves = {}
    for p in points:
        rates, psnrs = curves.setdefault(p.codec, ([], []))
        rates.append(p.bpp)
        psnrs.append(p.psnr.yuv)
    plot_rd(out / "rd.png", title, curves)
    ours = [p for p in points if p.codec == codec.preset]
    plot_frames(out / "frames.png", f"{title}, {codec.preset}",
                {f"qp {p.qp}": p.trace for p in ours},
                ours[0].resets)
    return json.loads((out / "results.json").read_text())


def scene_cut_trace(codec: CodecModel, src: Path, out: Path, cfg: EvalConfig, weights: str | None = None,
                    log: Callable[[str], None] = print) -> dict:
    """Paper Fig. 1: ours at the first qp and x264-medium at the closest rate, per-frame
    bits and PSNR across the clip's scene cuts with our detected reset points marked."""
    from .plots import plot_frames  # matplotlib only where a figure is drawn (eval extra)

    spec = AnchorSpec.parse(REFERENCE_ANCHOR)
    find_ffmpeg()
    with _prepared(src, out, cfg) as (source, scratch, streams):
        info = _info(src, source, cfg, codec, weights)
        ours = ours_point(codec, source, streams, cfg.qps[0], cfg)
        log(_line(ours))
        anchor = anchor_point(spec, source, streams, scratch,
                              qp_for_bpp(RateProbe(spec, source, scratch), ours.bpp))
        log(_line(anchor))
    points = [ours, anchor]
    title = _title(src, info)
    write_report(out, f"{title}, scene cuts", info, points, {})
    plot_frames(out / "scene_cuts.png", f"{title}: reset points of {codec.preset} dashed",
                {f"{p.codec} qp {p.qp} ({p.bpp:.3f} bpp)": p.trace for p in points}, ours.resets)
    return json.loads((out / "results.json").read_text())


def _line(p: RatePoint) -> str:
    s = p.psnr
    return f"{p.codec:>14} qp {p.qp:2d}: {p.bpp:.4f} bpp, PSNR Y/U/V {s.y:.2f}/{s.u:.2f}/{s.v:.2f}, YUV {s.yuv:.2f} dB"
