"""CPU rANS coder benchmark on 1080p-sized latents: speed, rate overhead, outside anchor.

    python -m ui2c.benchmarks.entropy_bench [--repeats 3] [--out benchmarks/results]

Symbol sets model one P-frame's y (1,044,480 symbols at 1920x1080): log-normal scales
(mostly small, as in a real latent), Gaussian residuals, and the force-zero skip of
spec §3.4 (scales <= 0.12 are not coded).  The scale distribution's centre is tuned so
the ideal rate lands near 0.003, 0.03 and 0.3 bpp.  Overhead is measured against the
ideal information content, sum of -log2 p under the quantized CDFs (escaped raw values
excluded).  constriction's stack rANS with categorical models over the same slots is
timed in the same run as an outside anchor.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from ui2c.entropy import _rans, rans
from ui2c.entropy.tables import CdfTables, gaussian_tables, scale_index

PIXELS = 1920 * 1080
NUM_Y = 128 * 68 * 120
SKIP_THRESHOLD = np.float32(0.12)
TARGET_BPP = (0.003, 0.03, 0.3)


def slots(symbols: np.ndarray, indexes: np.ndarray, t: CdfTables) -> np.ndarray:
    v = symbols.astype(np.int64) - t.offset[indexes]
    escape = t.cdf_length[indexes] - 2
    return np.where((v >= 0) & (v < escape), v, escape)


def ideal_bits(symbols: np.ndarray, indexes: np.ndarray, t: CdfTables) -> float:
    s = slots(symbols, indexes, t)
    freq = t.cdf[indexes, s + 1] - t.cdf[indexes, s]
    return float(np.sum(16.0 - np.log2(freq)))


def latent(log_centre: float, t: CdfTables, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coded (symbols, cdf_indexes) of one synthetic frame, skipped symbols removed."""
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.normal(log_centre, 1.2, NUM_Y)).astype(np.float32)
    keep = scales > SKIP_THRESHOLD
    scales = scales[keep]
    symbols = np.round(rng.normal(0.0, scales)).astype(np.int32)
    return symbols, scale_index(scales).astype(np.int32)


def tune(target_bpp: float, t: CdfTables) -> float:
    """Bisection on the log-scale centre so the ideal rate hits target_bpp."""
    lo, hi = -8.0, 3.0
    for _ in range(20):
        mid = (lo + hi) / 2
        sym, idx = latent(mid, t)
        lo, hi = (mid, hi) if ideal_bits(sym, idx, t) / PIXELS < target_bpp else (lo, mid)
    return (lo + hi) / 2


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def constriction_anchor(sym: np.ndarray, idx: np.ndarray, t: CdfTables, repeats: int) -> dict:
    """Stack rANS (constriction) with one categorical model per table over the same slots."""
    import constriction

    s = slots(sym, idx, t).astype(np.int32)
    groups = [(k, s[idx == k]) for k in np.unique(idx)]
    models = {k: constriction.stream.model.Categorical(np.diff(t.cdf[k, : t.cdf_length[k]]) / 65536.0, perfect=False)
              for k, _ in groups}

    def enc():
        coder = constriction.stream.stack.AnsCoder()
        for k, g in reversed(groups):
            coder.encode_reverse(g, models[k])
        return coder.get_compressed()

    compressed = enc()

    def dec():
        coder = constriction.stream.stack.AnsCoder(compressed)
        return [coder.decode(models[k], len(g)) for k, g in groups]

    assert all(np.array_equal(a, g) for a, (_, g) in zip(dec(), groups))
    n = len(sym)
    return {"bytes": int(compressed.nbytes), "encode_msym_s": n / best_time(enc, repeats) / 1e6,
            "decode_msym_s": n / best_time(dec, repeats) / 1e6}


def run(repeats: int) -> dict:
    t = gaussian_tables()
    points = []
    for target in TARGET_BPP:
        sym, idx = latent(tune(target, t), t)
        ideal = ideal_bits(sym, idx, t)
        data = rans.encode(sym, idx, t)
        assert np.array_equal(rans.decode(data, idx, t), sym)
        nblocks, lanes = _rans.parse_header(data, len(sym))[:2]
        escapes = int(np.sum(slots(sym, idx, t) == t.cdf_length[idx] - 2))
        point = {"target_bpp": target, "coded_symbols": len(sym), "skipped_symbols": NUM_Y - len(sym),
                 "ideal_bpp": ideal / PIXELS, "actual_bpp": 8 * len(data) / PIXELS, "bytes": len(data),
                 "escapes": escapes, "overhead_pct": 100 * (8 * len(data) - 32 * escapes - ideal) / ideal,
                 "nblocks": nblocks, "lanes": lanes}
        for threads in (1, 2):
            point[f"encode_msym_s_{threads}t"] = len(sym) / best_time(lambda: rans.encode(sym, idx, t, threads), repeats) / 1e6
            point[f"decode_msym_s_{threads}t"] = len(sym) / best_time(lambda: rans.decode(data, idx, t, threads), repeats) / 1e6
        anchor = constriction_anchor(sym, idx, t, repeats)
        anchor["overhead_pct"] = 100 * (8 * anchor["bytes"] - ideal) / ideal
        point["constriction"] = anchor
        points.append(point)
    return {"command": "python -m ui2c.benchmarks.entropy_bench", "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), {platform.platform()}",
            "repeats": repeats, "points": points}


def markdown(result: dict) -> str:
    rows = ["| target bpp | coded sym | ideal bpp | overhead % | layout | enc 1t | enc 2t | dec 1t | dec 2t | constriction enc / dec | constriction overhead % |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in result["points"]:
        c = p["constriction"]
        rows.append(f"| {p['target_bpp']} | {p['coded_symbols']:,} | {p['ideal_bpp']:.4f} | {p['overhead_pct']:.2f} | "
                    f"{p['nblocks']}x{p['lanes']} | {p['encode_msym_s_1t']:.0f} | {p['encode_msym_s_2t']:.0f} | "
                    f"{p['decode_msym_s_1t']:.0f} | {p['decode_msym_s_2t']:.0f} | {c['encode_msym_s']:.0f} / {c['decode_msym_s']:.0f} | "
                    f"{c['overhead_pct']:.2f} |")
    return "\n".join([
        "# Entropy coder benchmark (CPU rANS)", "",
        f"Command: `{result['command']}`  ", f"Date: {result['date']}  ", f"Machine: {result['machine']}  ",
        f"Best of {result['repeats']} runs; speeds in Msym/s over coded symbols; the cores are shared with other jobs, so speeds are noisy.",
        "", *rows, "",
        "Overhead = (stream bits - 32 x escapes - ideal) / ideal, ideal = sum of -log2 p under the quantized CDFs.",
        "Layout = blocks x lanes chosen by the format's policy (rans_format.hpp §6).",
        "constriction: stack rANS, one categorical model per table, same slots (its own quantization).", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    result = run(args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "entropy.json").write_text(json.dumps(result, indent=1))
    (args.out / "entropy.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
