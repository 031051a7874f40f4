"""``ui2c eval``: BD-rate against hand-computed cases, anchor commands, and a small
end-to-end evaluation whose CSV/JSON are checked against the files it wrote."""
from __future__ import annotations

import csv
import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from ui2c.benchmarks.evaluation.anchors import AnchorError, AnchorSpec, decode_command, encode_command
from ui2c.benchmarks.evaluation.bdrate import NoOverlapError, bd_psnr, bd_rate, pchip_integral, pchip_value, psnr_gaps
from ui2c.benchmarks.evaluation.evaluate import (EvalConfig, RateProbe, anchor_grid, downscale, evaluate, prepare_source,
                                   qp_for_bpp, scene_cut_trace)
from ui2c.errors import InputFormatError
from ui2c.runtime.api import decode_file
from ui2c.runtime.model import load_codec
from ui2c.video_io import Frame, open_video
from ui2c.shipped import DEMO_CLIP

CLIP = DEMO_CLIP
HAS_FFMPEG = shutil.which("ffmpeg") is not None
needs_ffmpeg = pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg not installed (apt-get install ffmpeg)")


# --------------------------------------------------------------------------- BD-rate
def test_bd_rate_constant_rate_factor_is_exact():
    psnr = [30.0, 33.5, 36.0, 41.0]
    rates = [0.05, 0.09, 0.2, 0.6]
    assert bd_rate(rates, psnr, [0.8 * r for r in rates], psnr) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(rates, psnr, [1.5 * r for r in rates], psnr) == pytest.approx(50.0, abs=1e-9)


def test_bd_rate_shifted_ranges_hand_case():
    # log2(rate) = psnr/4 for the anchor, (psnr - 2)/4 for the test: at equal PSNR the test
    # needs 2^-0.5 of the bits everywhere on the shared range [32, 42].
    anchor_psnr = [30.0, 34.0, 38.0, 42.0]
    test_psnr = [44.0, 32.0, 40.0, 36.0]  # unsorted on purpose
    result = bd_rate([2 ** (p / 4) for p in anchor_psnr], anchor_psnr, [2 ** ((p - 2) / 4) for p in test_psnr],
                     test_psnr)
    assert result == pytest.approx((2 ** -0.5 - 1) * 100, abs=1e-9)


def test_bd_psnr_hand_case():
    # Same rates, PSNR +0.75 dB everywhere; then a test curve covering only half the rate range.
    rates, psnr = [0.1, 0.2, 0.4, 0.8], [30.0, 32.0, 35.0, 36.0]
    assert bd_psnr(rates, psnr, rates, [p + 0.75 for p in psnr]) == pytest.approx(0.75, abs=1e-12)
    # PSNR linear in log2(rate): anchor 30 + 2·log2(r/0.1), test 31 + 2·log2(r/0.1) on [0.2, 0.8].
    anchor = [30 + 2 * math.log2(r / 0.1) for r in rates]
    test_rates = [0.2, 0.8, 0.5]
    test = [31 + 2 * math.log2(r / 0.1) for r in test_rates]
    assert bd_psnr(rates, anchor, test_rates, test) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(NoOverlapError):
        bd_psnr([0.1, 0.2], [30, 31], [0.3, 0.4], [30, 31])


def test_pchip_integral_hand_case():
    # Knots (0,0) (1,1) (2,0): slope 0 at the peak, end slopes ((2h0+h1)m0 - h0 m1)/(h0+h1) = ±2.
    # A cubic Hermite piece integrates to h(y0+y1)/2 + h²(d0-d1)/12 = 1/2 + 2/12 on [0, 1].
    assert pchip_integral([0, 1, 2], [0, 1, 0], 0, 1) == pytest.approx(2 / 3, abs=1e-12)
    assert pchip_integral([0, 1, 2], [0, 1, 0], 0, 2) == pytest.approx(4 / 3, abs=1e-12)
    # Part of a linear piece: ∫_{0.5}^{1} 3s ds over the line through (0,0), (1,3).
    assert pchip_integral([0, 1], [0, 3], 0.5, 1) == pytest.approx(1.125, abs=1e-12)


def test_pchip_integral_matches_scipy():
    from scipy.interpolate import PchipInterpolator

    rng = np.random.default_rng(1)
    for n in (3, 4, 6):
        x = np.sort(rng.uniform(25, 45, n))
        y = rng.normal(size=n).cumsum()
        lo, hi = x[0] + 0.4 * (x[1] - x[0]), x[-1] - 0.2 * (x[-1] - x[-2])
        assert pchip_integral(x, y, lo, hi) == pytest.approx(PchipInterpolator(x, y).integrate(lo, hi), rel=1e-10)


def test_psnr_gaps_are_scipy_pchip_differences_at_log_spaced_shared_rates():
    from scipy.interpolate import PchipInterpolator

    anchor = ([0.01, 0.02, 0.05, 0.1, 0.2], [30.0, 33.0, 37.0, 40.0, 43.0])
    test = ([0.005, 0.015, 0.04, 0.15], [29.0, 33.5, 36.0, 38.5])
    gaps = psnr_gaps(*anchor, *test, count=4)
    rates = np.exp(np.linspace(np.log(0.01), np.log(0.15), 4))  # the range both curves cover
    expected = PchipInterpolator(np.log(test[0]), test[1])(np.log(rates)) - PchipInterpolator(
        np.log(anchor[0]), anchor[1])(np.log(rates))
    assert np.allclose([r for r, _ in gaps], rates) and np.allclose([g for _, g in gaps], expected, atol=1e-9)
    with pytest.raises(NoOverlapError):
        psnr_gaps([1, 2], [30, 35], [3, 4], [36, 40])
    with pytest.raises(ValueError):
        pchip_value([0, 1], [0, 1], 1.5)


def test_bd_rate_rejects_disjoint_or_bad_curves():
    with pytest.raises(NoOverlapError):
        bd_rate([1, 2], [30, 35], [1, 2], [36, 40])
    with pytest.raises(ValueError):
        bd_rate([1, 2], [30, 30], [1, 2], [30, 35])


# --------------------------------------------------------------------------- anchors
def test_anchor_commands():
    src, dst = Path("in.y4m"), Path("out.264")
    assert encode_command(AnchorSpec.parse("x264-medium"), src, dst, 30) == [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", "in.y4m", "-an",
        "-c:v", "libx264", "-preset", "medium", "-tune", "zerolatency",
        "-threads", "1", "-qp", "30", "-x264-params", "keyint=infinite:scenecut=0:bframes=0",
        "-f", "h264", "out.264"]
    cmd = encode_command(AnchorSpec.parse("x265-veryslow"), src, Path("out.265"), 40)
    assert cmd[cmd.index("-c:v") + 1] == "libx265" and cmd[cmd.index("-preset") + 1] == "veryslow"
    params = dict(kv.split("=") for kv in cmd[cmd.index("-x265-params") + 1].split(":"))
    assert params["keyint"] == "-1" and params["scenecut"] == "0" and params["bframes"] == "0"
    assert params["qp"] == "40" and cmd[-3:] == ["-f", "hevc", "out.265"]
    assert decode_command(Path("a.265"), Path("a.y4m"))[-5:] == ["-i", "a.265", "-f", "yuv4mpegpipe", "a.y4m"]
    for bad in ("x264", "x266-medium", "x264-fastest"):
        with pytest.raises(AnchorError):
            AnchorSpec.parse(bad)
    with pytest.raises(AnchorError):
        encode_command(AnchorSpec.parse("x264-medium"), src, dst, 52)


def test_qp_for_bpp_bisects_a_monotone_rate():
    calls = []

    def rate(qp: int) -> float:
        calls.append(qp)
        return 2 ** (-qp / 6)  # rate halves every 6 QP, as for x264

    for target, qp in ((2 ** (-20 / 6), 20), (2 ** (-20.4 / 6), 20), (10.0, 0), (1e-9, 51)):
        calls.clear()
        assert qp_for_bpp(rate, target) == qp
        assert len(set(calls)) <= 8  # bisection over 0..51: ceil(log2 52) = 6 probes, then the two ends


def test_anchor_grid_spans_our_rates():
    assert anchor_grid(20, 40) == [18, 24, 30, 36, 42]
    assert anchor_grid(30, 31) == [24, 27, 30, 33, 36]  # widened to 12 QPs around the centre
    assert anchor_grid(2, 50) == [0, 13, 26, 38, 51]


def test_area_downscale():
    y = np.arange(16, dtype=np.uint8).reshape(4, 4)
    u = np.array([[1, 2], [3, 5]], dtype=np.uint8)
    small = downscale(Frame(y, u, u, "420"), 2)
    assert small.y.tolist() == [[3, 5], [11, 13]]  # (0+1+4+5+2)//4 = 3, ...
    assert small.u.tolist() == [[3]]  # (11 + 2) // 4 rounds 2.75 up


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def codec():
    return load_codec("ui2c-s", backend="torch", allow_random=True)


@pytest.fixture(scope="module")
def run(codec, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    cfg = EvalConfig(qps=[16, 48], anchors=["x264-medium"] if HAS_FFMPEG else [], anchor_qps=[30, 45], frames=4)
    return out, evaluate(codec, CLIP, out, cfg, log=lambda _: None)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _psnr(ref: np.ndarray, rec: np.ndarray) -> float:
    mse = np.mean((ref.astype(np.float64) - rec.astype(np.float64)) ** 2)
    return 10 * math.log10(255 ** 2 / mse)


def test_eval_writes_outputs(run):
    out, results = run
    for name in ("results.json", "results.md", "rd.png", "frames.png"):
        assert (out / name).is_file()
    assert (out / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "results.json").read_text()) == results
    assert (results["frames"], results["width"], results["height"], results["chroma"]) == (4, 320, 180, "420")
    assert [p["qp"] for p in results["points"] if p["codec"] == "ui2c-s"] == [16, 48]


def test_eval_bits_and_psnr_match_the_stream(run, codec, tmp_path):
    out, results = run
    for point in (p for p in results["points"] if p["codec"] == "ui2c-s"):
        stream = out / point["stream"]
        data = stream.read_bytes()
        header = 7 + int.from_bytes(data[5:7], "big") + 4  # magic, version, length, body, CRC
        rows = _rows(out / "frames" / f"{stream.stem}.csv")
        assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3]
        assert sum(float(r["bits"]) for r in rows) == 8 * (len(data) - header)
        assert point["bpp"] == pytest.approx(8 * len(data) / (4 * 320 * 180), rel=1e-12)
        assert rows[0]["reset"] == "1" and point["resets"][0] == 0
        assert point["psnr_yuv"] == pytest.approx(np.mean([float(r["psnr_yuv"]) for r in rows]), abs=1e-5)

    # PSNR recomputed from the decoder's output file (one qp: decoding is the slow part).
    stream = out / results["points"][0]["stream"]
    rows = _rows(out / "frames" / f"{stream.stem}.csv")
    decoded = tmp_path / f"{stream.stem}.y4m"
    assert decode_file(codec, stream, decoded, progress=False) == 4
    with open_video(CLIP) as src, open_video(decoded) as dec:
        for row, ref, rec in zip(rows, src, dec):
            y, u, v = (_psnr(a, b) for a, b in zip(ref.planes, rec.planes))
            # The CSV is from the unrounded output; the file is rounded to uint8 (≤ 0.5 LSB).
            assert float(row["psnr_y"]) == pytest.approx(y, abs=0.02)
            assert float(row["psnr_yuv"]) == pytest.approx((6 * y + u + v) / 8, abs=0.02)


@needs_ffmpeg
def test_eval_x264_anchor(run, tmp_path):
    import av

    out, results = run
    anchors = [p for p in results["points"] if p["codec"] == "x264-medium"]
    assert [p["qp"] for p in anchors] == [30, 45]
    assert anchors[0]["bpp"] > anchors[1]["bpp"] and anchors[0]["psnr_yuv"] > anchors[1]["psnr_yuv"]
    assert set(results["bd"]) == {"ui2c-s"} and results["bd_vs"] == "x264-medium"
    for point in anchors:
        stream = out / point["stream"]
        rows = _rows(out / "frames" / f"{stream.stem}.csv")
        assert sum(float(r["bits"]) for r in rows) == 8 * stream.stat().st_size
        assert [r["reset"] for r in rows] == ["1", "0", "0", "0"]
        # Decode independently of the ffmpeg CLI path (PyAV's own FFmpeg).
        with av.open(str(stream), format="h264") as container, open_video(CLIP) as src:
            pictures = [f.to_ndarray() for f in container.decode(video=0)]
            refs = [np.asarray(f.y) for _, f in zip(range(4), src)]
        assert len(pictures) == 4
        for row, ref, pic in zip(rows, refs, pictures):
            assert float(row["psnr_y"]) == pytest.approx(_psnr(ref, pic[:180]), abs=1e-4)


@needs_ffmpeg
def test_scene_cut_trace_matches_x264_rate(codec, tmp_path):
    out = tmp_path / "cuts"
    results = scene_cut_trace(codec, CLIP, out, EvalConfig(qps=[32], frames=4), log=lambda _: None)
    assert (out / "scene_cuts.png").is_file()
    ours, x264 = results["points"]
    assert (ours["codec"], ours["qp"], x264["codec"]) == ("ui2c-s", 32, "x264-medium")
    assert ours["resets"][0] == 0 and x264["resets"] == [0]
    # No neighbouring x264 QP is closer to our rate (in log-rate) than the chosen one.
    source = tmp_path / "source.y4m"
    prepare_source(CLIP, source, 4, 1)
    probe = RateProbe(AnchorSpec.parse("x264-medium"), source, tmp_path)
    gap = abs(math.log(x264["bpp"] / ours["bpp"]))
    for qp in (x264["qp"] - 1, x264["qp"] + 1):
        if 0 <= qp <= 51:
            assert abs(math.log(probe(qp) / ours["bpp"])) >= gap


def test_failed_eval_leaves_no_results_folder_and_existing_ones_need_y(tmp_path):
    from ui2c.cli import main

    out = tmp_path / "results"
    assert main(["eval", str(tmp_path / "missing.y4m"), "-o", str(out), "--anchors", ""]) == 2
    assert not out.exists()
    out.mkdir()
    (out / "old.json").write_text("{}")
    assert main(["eval", str(CLIP), "-o", str(out)]) == 2  # refused before any work
    assert (out / "old.json").read_text() == "{}"
    # with -y a failed run keeps the old results whole; nothing of its own is left beside them
    assert main(["eval", str(tmp_path / "missing.y4m"), "-o", str(out), "--anchors", "", "-y"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"] and list(out.iterdir()) == [out / "old.json"]


@pytest.mark.parametrize("cut_plot", [False, True])
def test_eval_without_ffmpeg_fails_before_coding(cut_plot, tmp_path, monkeypatch, capsys):
    """Anchors asked for and no ffmpeg: one line naming it, before any of our points is
    coded (a whole clip takes minutes), and no results folder left behind."""
    from ui2c.benchmarks.evaluation import anchors, evaluate as harness
    from ui2c.cli import main

    monkeypatch.setattr(anchors.shutil, "which", lambda name: None)
    monkeypatch.setattr(harness, "ours_point", lambda *a, **k: pytest.fail("coded before finding ffmpeg"))
    out = tmp_path / "results"
    argv = ["eval", str(CLIP), "-o", str(out), "--anchors", "x264-medium", "--frames", "2", "--backend", "torch"]
    assert main(argv + (["--cut-plot"] if cut_plot else [])) == 2
    err = capsys.readouterr().err.strip()
    assert "ffmpeg not found" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_eval_passes_the_reset_options_to_the_encoder(codec, tmp_path):
    """``ui2c eval --reset-interval/--scene-cut/--drift-guard`` reach the encoder: a reset
    every 2 frames shows in the per-frame records and in the stream's reset flags."""
    from ui2c.args import reset_settings
    from ui2c.benchmarks.evaluation.cli import add_cli

    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers())
    args = parser.parse_args(["eval", str(CLIP), "-o", "x", "--reset-interval", "2", "--scene-cut", "0"])
    resets = reset_settings(args)
    assert resets == {"reset_interval": 2, "scene_cut_threshold": None, "drift_guard_db": None}
    results = evaluate(codec, CLIP, tmp_path / "ev", EvalConfig(qps=[32], anchors=[], frames=4, resets=resets),
                       log=lambda _: None)
    point = results["points"][0]
    assert point["resets"] == [0, 2] and results["resets"] == resets
    rows = _rows(tmp_path / "ev" / "frames" / f"{Path(point['stream']).stem}.csv")
    assert [r["reset"] for r in rows] == ["1", "0", "1", "0"]


def test_prepare_source_from_a_later_frame(tmp_path):
    """``start`` skips the input's first frames: the prepared clip is the input's frames
    from there on, and a start past the end is a one-line error naming it."""
    with open_video(CLIP) as reader:
        originals = [f.y.copy() for f in reader]
    assert prepare_source(CLIP, tmp_path / "from3.y4m", 2, 1, start=3) == 2
    with open_video(tmp_path / "from3.y4m") as reader:
        assert [np.array_equal(f.y, originals[3 + i]) for i, f in enumerate(reader)] == [True, True]
    with pytest.raises(InputFormatError, match=f"holds no frames from frame {len(originals)} on"):
        prepare_source(CLIP, tmp_path / "past.y4m", None, 1, start=len(originals))


def test_eval_start_option_reaches_the_results(codec, tmp_path):
    from ui2c.benchmarks.evaluation.cli import add_cli

    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers())
    assert parser.parse_args(["eval", str(CLIP), "-o", "x", "--start", "8"]).start == 8
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", str(CLIP), "-o", "x", "--start", "-1"])
    results = evaluate(codec, CLIP, tmp_path / "ev", EvalConfig(qps=[32], anchors=[], frames=2, start=2),
                       log=lambda _: None)
    assert (results["start"], results["frames"]) == (2, 2)
