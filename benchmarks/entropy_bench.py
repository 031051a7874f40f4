"""Entropy coder benchmark on 1080p latents: ms per step, Msym/s, rate overhead.

    python -m ui2c.benchmarks.entropy_bench --device cpu|cuda [--repeats 5] [--out benchmarks/results]

``--device cpu`` times the C++ coder (1 and 2 threads); ``--device cuda`` times the
Triton coder through the runtime seam (``ui2c.entropy.coder``), one call per step,
including its single synchronisation.  Results go to ``entropy.{md,json}`` (cpu) or
``entropy_cuda.{md,json}``, naming the device.

Symbol sets: one ``ui2c`` unit's y (two 1920x1080 frames coded together: 64 x 68 x 120
= 522,240 symbols, log-normal scales, Gaussian residuals, force-zero skip of scales
<= 0.12, spec §3.4), tuned so the ideal rate is 0.003, 0.03 and 0.3 bpp over the two
frames, cut into the unit's two steps of 261,120 symbols (skipped ones marked by index
-1, as the runtime passes them).  The unit is coded as the runtime codes it: one
stream, decoded in two segments (rans_format.hpp §8).  Overhead is measured against
the ideal information, sum of -log2 p under the quantized CDFs (escaped raw values
excluded), for that stream and for one stream per step (what container version 1
wrote).  A "realistic step" (261,120 coded symbols at scale indexes 0-39, about 0.44
bit/symbol, the GPU target of issue #11) is also coded with forced lane counts to show the size/time trade-off of format 2.
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
import torch

from ui2c.entropy import _rans, rans
from ui2c.entropy.coder import make_coder
from ui2c.entropy.tables import CdfTables, gaussian_tables, scale_index, scale_table

PIXELS = 1920 * 1080
FRAMES_PER_UNIT = 2
NUM_Y = 64 * 68 * 120  # one unit's y at 1080p (1088 padded): ch_y x H/16 x W/16
STEP = NUM_Y // 2
SKIP_THRESHOLD = np.float32(0.12)
TARGET_BPP = (0.003, 0.03, 0.3)
REALISTIC_BITS_PER_SYMBOL = 0.44
SWEEP_LANES = (None, 32, 64, 128, 256, 512, 1024)
PARALLEL_THREADS = 4  # the decoder over 4 cores (ui2c decode --threads 4); fewer cores cap the gain


def slots(symbols: np.ndarray, indexes: np.ndarray, t: CdfTables) -> np.ndarray:
    v = symbols.astype(np.int64) - t.offset[indexes]
    escape = t.cdf_length[indexes] - 2
    return np.where((v >= 0) & (v < escape), v, escape)


def ideal_bits(symbols: np.ndarray, indexes: np.ndarray, t: CdfTables) -> float:
    keep = indexes >= 0
    symbols, indexes = symbols[keep], indexes[keep]
    s = slots(symbols, indexes, t)
    freq = t.cdf[indexes, s + 1] - t.cdf[indexes, s]
    return float(np.sum(16.0 - np.log2(freq)))


def escapes(symbols: np.ndarray, indexes: np.ndarray, t: CdfTables) -> int:
    keep = indexes >= 0
    return int(np.sum(slots(symbols[keep], indexes[keep], t) == t.cdf_length[indexes[keep]] - 2))


def latent(log_centre: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(symbols, indexes) of one synthetic unit's y, index -1 (symbol 0) where skipped."""
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.normal(log_centre, 1.2, NUM_Y)).astype(np.float32)
    keep = scales > SKIP_THRESHOLD
    symbols = np.where(keep, np.round(rng.normal(0.0, scales)), 0).astype(np.int32)
    indexes = np.where(keep, scale_index(scales).astype(np.int32), -1).astype(np.int32)
    return symbols, indexes


def realistic_step(t: CdfTables, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """261,120 coded symbols at scale indexes 0-39, tuned to about 0.44 bit/symbol."""
    rng = np.random.default_rng(seed)
    u = rng.random(STEP)
    noise = rng.normal(0.0, 1.0, STEP)
    scales = scale_table().numpy()
    lo, hi = 0.0, 8.0
    for _ in range(30):  # index = floor(40 * u^k): larger k, smaller scales, fewer bits
        k = (lo + hi) / 2
        idx = np.minimum((40 * u**k).astype(np.int32), 39)
        sym = np.round(noise * scales[idx]).astype(np.int32)
        bits = ideal_bits(sym, idx, t) / STEP
        lo, hi = (k, hi) if bits > REALISTIC_BITS_PER_SYMBOL else (lo, k)
    return sym, idx


def tune(target_bpp: float, t: CdfTables) -> float:
    """Bisection on the log-scale centre so the unit's ideal rate hits target_bpp per frame."""
    lo, hi = -8.0, 3.0
    for _ in range(20):
        mid = (lo + hi) / 2
        sym, idx = latent(mid)
        lo, hi = (mid, hi) if ideal_bits(sym, idx, t) / (FRAMES_PER_UNIT * PIXELS) < target_bpp else (lo, mid)
    return (lo + hi) / 2


def best_time(fn, repeats: int, sync) -> float:
    fn()  # warm-up (JIT compilation, caches)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def overhead_pct(nbytes: int, ideal: float, esc: int) -> float:
    return 100 * (8 * nbytes - 32 * esc - ideal) / ideal


class Runner:
    """Codes full-length (symbols, indexes) steps on the benchmarked device."""

    def __init__(self, device: str, t: CdfTables, repeats: int) -> None:
        self.device, self.t, self.repeats = device, t, repeats
        if device == "cuda":
            self.dev = torch.device("cuda")
            self.sync = torch.cuda.synchronize
            self.coders = {"gpu": make_coder(t, self.dev, "triton")}
        else:
            self.dev = torch.device("cpu")
            self.sync = lambda: None
            self.coders = {"1t": make_coder(t, "cpu", "cpu", 1), "2t": make_coder(t, "cpu", "cpu", 2)}

    def time_unit(self, segments: list[tuple[np.ndarray, np.ndarray]]) -> dict:
        """One stream of the segments' symbols, decoded segment by segment; ms per segment."""
        s = torch.from_numpy(np.concatenate([sym for sym, _ in segments])).to(self.dev)
        i = torch.from_numpy(np.concatenate([idx for _, idx in segments])).to(self.dev)
        parts = [torch.from_numpy(idx).to(self.dev) for _, idx in segments]
        out = {}
        for name, coder in self.coders.items():
            def decode(data: bytes) -> list[torch.Tensor]:
                stream = coder.decoder(data)
                symbols = [stream.next(part) for part in parts]
                stream.finish()
                return symbols
            data = coder.encode(s, i)
            assert torch.equal(torch.cat(decode(data)).cpu(), s.cpu())
            out[f"encode_ms_{name}"] = 1e3 * best_time(lambda: coder.encode(s, i), self.repeats, self.sync) / len(parts)
            out[f"decode_ms_{name}"] = 1e3 * best_time(lambda: decode(data), self.repeats, self.sync) / len(parts)
        out["bytes"] = len(data)
        return out

    def time_forced(self, sym: np.ndarray, idx: np.ndarray, lanes: int) -> dict:
        """A forced lane count (format §6 override) on the realistic step."""
        if self.device == "cuda":
            impl = self.coders["gpu"]._impl
            s, i = torch.from_numpy(sym).to(self.dev), torch.from_numpy(idx).to(self.dev)
            data = impl.encode(s, i, lanes=lanes)
            assert data == rans.encode(sym, idx, self.t, lanes=lanes)
            enc = best_time(lambda: impl.encode(s, i, lanes=lanes), self.repeats, self.sync)
            dec = best_time(lambda: impl.decode(data, i), self.repeats, self.sync)
        else:
            data = rans.encode(sym, idx, self.t, lanes=lanes)
            enc = best_time(lambda: rans.encode(sym, idx, self.t, 1, lanes=lanes), self.repeats, self.sync)
            dec = best_time(lambda: rans.decode(data, idx, self.t, 1), self.repeats, self.sync)
            # groups of 32 lanes decode on separate threads: what --bits-per-lane buys a decoder
            par = best_time(lambda: rans.decode(data, idx, self.t, PARALLEL_THREADS), self.repeats, self.sync)
            return {"bytes": len(data), "encode_ms": 1e3 * enc, "decode_ms": 1e3 * dec,
                    "decode_ms_parallel": 1e3 * par}
        return {"bytes": len(data), "encode_ms": 1e3 * enc, "decode_ms": 1e3 * dec}


def device_name(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), {platform.platform()}"


def run(device: str, repeats: int) -> dict:
    t = gaussian_tables()
    runner = Runner(device, t, repeats)
    points = []
    for target in TARGET_BPP:
        sym, idx = latent(tune(target, t))
        ideal = ideal_bits(sym, idx, t)
        steps = [(sym[k * STEP:(k + 1) * STEP], idx[k * STEP:(k + 1) * STEP]) for k in range(2)]
        point = {"target_bpp": target, "coded_symbols": int((idx >= 0).sum()),
                 "ideal_bpp": ideal / (FRAMES_PER_UNIT * PIXELS), **runner.time_unit(steps),
                 "lanes": _rans.parse_header(rans.encode(sym, idx, t, skip_negative=True))[1]}
        point["unit_overhead_pct"] = overhead_pct(point["bytes"], ideal, escapes(sym, idx, t))
        step_bytes = sum(len(rans.encode(s, i, t, skip_negative=True)) for s, i in steps)
        point["step_overhead_pct"] = overhead_pct(step_bytes, ideal, escapes(sym, idx, t))
        points.append(point)
    sym, idx = realistic_step(t)
    ideal = ideal_bits(sym, idx, t)
    real = {"symbols": STEP, "bits_per_symbol": ideal / STEP, "ideal_bits": ideal, "sweep": []}
    real.update(runner.time_unit([(sym, idx)]))
    for lanes in SWEEP_LANES:
        chosen = lanes or _rans.parse_header(rans.encode(sym, idx, t))[1]
        row = {"lanes": chosen, "policy": lanes is None, **runner.time_forced(sym, idx, chosen)}
        row["overhead_pct"] = overhead_pct(row["bytes"], ideal, escapes(sym, idx, t))
        real["sweep"].append(row)
    return {"command": f"python -m ui2c.benchmarks.entropy_bench --device {device} --repeats {repeats}",
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "device": device,
            "machine": device_name(device), "format": "rANS format 2 (0xB6)", "repeats": repeats,
            "coders": list(runner.coders), "points": points, "realistic_step": real}


def markdown(result: dict) -> str:
    coders = result["coders"]
    head = " | ".join(f"enc ms {c} | dec ms {c}" for c in coders)
    rows = [f"| target bpp | coded sym / unit | ideal bpp | unit stream overhead % (lanes) | "
            f"step streams overhead % | {head} | enc / dec Msym/s ({coders[0]}) |",
            "|---" * (6 + 2 * len(coders)) + "|"]
    for p in result["points"]:
        per_step = p["coded_symbols"] / 2
        times = " | ".join(f"{p[f'encode_ms_{c}']:.3f} | {p[f'decode_ms_{c}']:.3f}" for c in coders)
        c0 = coders[0]
        rows.append(f"| {p['target_bpp']} | {p['coded_symbols']:,} | {p['ideal_bpp']:.4f} | "
                    f"{p['unit_overhead_pct']:.2f} ({p['lanes']}) | {p['step_overhead_pct']:.2f} | {times} | "
                    f"{per_step / p[f'encode_ms_{c0}'] / 1e3:.0f} / {per_step / p[f'decode_ms_{c0}'] / 1e3:.0f} |")
    r = result["realistic_step"]
    parallel = "decode_ms_parallel" in r["sweep"][0]
    sweep = ["| lanes | bytes | overhead % | enc ms | dec ms |" + (f" dec ms, {PARALLEL_THREADS} threads |" if parallel else ""),
             "|---|---|---|---|---|" + ("---|" if parallel else "")]
    for s in r["sweep"]:
        tag = " (policy)" if s["policy"] else ""
        sweep.append(f"| {s['lanes']}{tag} | {s['bytes']:,} | {s['overhead_pct']:.2f} | {s['encode_ms']:.3f} | "
                     f"{s['decode_ms']:.3f} |" + (f" {s['decode_ms_parallel']:.3f} |" if parallel else ""))
    times = ", ".join(f"{c}: encode {r[f'encode_ms_{c}']:.3f} ms, decode {r[f'decode_ms_{c}']:.3f} ms" for c in coders)
    return "\n".join([
        f"# Entropy coder benchmark ({result['device']}, {result['format']})", "",
        f"Command: `{result['command']}`  ", f"Date: {result['date']}  ", f"Device: {result['machine']}  ",
        f"Best of {result['repeats']} runs after a warm-up; ms are per 1080p step (261,120 symbols before the skip), "
        "averaged over the unit's two steps, coded as one stream and decoded in two segments; bpp per frame of the "
        "unit's two; Msym/s over coded symbols.", "",
        *rows, "",
        "Overhead = (stream bits - 32 x escapes - ideal) / ideal, ideal = sum of -log2 p under the quantized CDFs; "
        "unit stream = one stream for the unit's coded y (as the runtime writes, container version 2), step streams = "
        "one per step (container version 1).  Lanes = P chosen by the layout policy (rans_format.hpp §6).", "",
        f"## Realistic step: {r['symbols']:,} coded symbols, scale indexes 0-39, {r['bits_per_symbol']:.3f} bit/symbol",
        "", f"Through the seam: {times}.", "",
        "Forced lane counts (same stream on CPU and GPU; size/time trade-off of format 2, "
        f"{'Triton coder' if result['device'] == 'cuda' else 'C++ coder, 1 thread'}):", "", *sweep, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA device")
    result = run(args.device, args.repeats)
    stem = "entropy" if args.device == "cpu" else f"entropy_{args.device}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
