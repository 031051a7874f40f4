"""Triton rANS coder against the C++ coder, kernel by kernel, with and without the ballot scan.

    python scripts/triton_gpu_diag.py --out DIAG.json [--deadline 100] [--ballot off on]

On a GPU (``TRITON_INTERPRET`` unset) it runs the compiled kernels; with
``TRITON_INTERPRET=1`` on a CPU it runs the interpreter on smaller streams (no ballot,
which is inline PTX).  Small edge cases go first, then streams shaped like a 1080p
latent step; each case runs with the ballot off, then on.  Each compares every stage
of the encoder with the C++ stream: count + compact (coded symbols), the encode
kernel (each group's bytes and escapes), the pack kernel (header and layout), then
the decode kernel on the C++ stream, and names the first stage that differs with
the first differing byte or symbol.  It also records, per compiled kernel, whether the ballot's operands are one
element per lane (``ui2c.plugins.triton_layout.lane_layout_problems``) and writes their
TTGIR and PTX beside the summary.  The JSON is rewritten after every case, so a
run cut short still leaves what it found; no case starts after ``--deadline`` s.
Exit status: 0 when every case ran and matched, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ui2c.entropy import _rans, rans
from ui2c.entropy import tables as T
from ui2c.plugins import triton_layout
from ui2c.plugins import triton_rans as tr

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
INT32 = np.iinfo(np.int32)
Case = tuple[str, np.ndarray, np.ndarray, int | None, int, T.CdfTables]


def latent_like(rng: np.random.Generator, n: int, hi: int, escape_rate: float, skip_rate: float,
                tables: T.CdfTables) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian residuals at scale indexes below ``hi``, some escapes (int32 extremes
    included) and some skipped symbols (index -1), as a latent step produces."""
    idx = rng.integers(0, hi, n).astype(np.int32)
    sym = np.round(rng.normal(0.0, T.scale_table().numpy()[idx])).astype(np.int64)
    esc = rng.random(n) < escape_rate
    sym[esc] = rng.choice([INT32.min, INT32.max, -9, 9, 100, -100000], int(esc.sum()))
    idx[rng.random(n) < skip_rate] = -1
    return sym.astype(np.int32), np.minimum(idx, tables.num_tables - 1)


def near_2_32_table() -> T.CdfTables:
    """A slot of frequency 65000 among rarer ones: about 1 in 6 of its encoder steps
    divides a state in [2^31, 2^32), where the float32 reciprocal has the least headroom."""
    cdf = np.array([[0, 65000, 65300, 65500, 65535, 65536]], np.int32)
    return T.CdfTables(cdf, np.array([6]), np.array([0]))


def cases(quick: bool) -> list[Case]:
    """(name, symbols, indexes, forced lanes, bits_per_lane, tables): edge cases, then realistic ones."""
    g = T.gaussian_tables()
    rng = np.random.default_rng(7)
    bpl = _rans.DEFAULT_BITS_PER_LANE
    small = [("empty", np.zeros(0, np.int32), np.zeros(0, np.int32), None, bpl, g),
             ("one_symbol_int32_min", np.array([INT32.min], np.int32), np.array([17], np.int32), None, bpl, g)]
    for lanes in (1, 31, 32, 64):
        sym, idx = latent_like(rng, 3 * lanes + 5, 128, 0.05, 0.0, g)
        small.append((f"lanes{lanes}", sym, idx, lanes, bpl, g))
    sym, idx = latent_like(rng, 200, 128, 1.0, 0.0, g)
    small.append(("all_escapes", sym, idx, 32, bpl, g))
    sym, idx = latent_like(rng, 900, 128, 0.05, 0.4, g)
    small.append(("skipped_symbols", sym, idx, None, 64, g))
    sym, idx = latent_like(rng, 1024, 128, 0.02, 0.0, g)
    small.append(("16_groups", sym, idx, 512, bpl, g))
    big = near_2_32_table()
    small.append(("state_near_2^32", rng.choice(4, 64 * 40, p=[0.55, 0.2, 0.15, 0.1]).astype(np.int32),
                  np.zeros(64 * 40, np.int32), 64, bpl, big))
    n = 4096 if quick else 261120  # one 1080p latent step
    realistic = []
    for name, hi, skip in (("latent_low_rate", 40, 0.3), ("latent_high_rate", 128, 0.05)):
        sym, idx = latent_like(rng, n, hi, 1e-4, skip, g)
        realistic.append((name, sym, idx, None, 64 if quick else bpl, g))
    return small + realistic


def first_diff(a: bytes | np.ndarray, b: bytes | np.ndarray) -> int | None:
    """First index where a and b differ (the shorter length if one is a prefix), or None."""
    x, y = (np.frombuffer(v, np.uint8) if isinstance(v, bytes) else v for v in (a, b))
    m = min(len(x), len(y))
    bad = np.flatnonzero(x[:m] != y[:m])
    return int(bad[0]) if bad.size else (None if len(x) == len(y) else m)


def host(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def compare_encode(coder: tr.TritonRans, sym: np.ndarray, idx: np.ndarray, lanes: int | None,
                   ref: bytes) -> dict | None:
    """None when the Triton stream equals ``ref``; otherwise the first stage that differs."""
    buf = coder.encode_device(torch.from_numpy(sym), torch.from_numpy(idx), lanes=lanes)
    keep = idx >= 0
    n = int(keep.sum())
    if int(host(buf.ncoded)[0]) != n:
        return {"kernel": "count/compact", "detail": f"ncoded {int(host(buf.ncoded)[0])}, expected {n}"}
    for name, got, want in (("symbols", host(buf.csym)[:n], sym[keep]), ("indexes", host(buf.cidx)[:n], idx[keep])):
        k = first_diff(got, want)
        if k is not None:
            return {"kernel": "count/compact", "detail": f"compacted {name} differ at {k}: {got[k]} != {want[k]}"}
    out = host(buf.out)
    size = int(out[:4].view("<u4")[0])
    if size == tr._INVALID:
        return {"kernel": "pack", "detail": "size prefix says invalid (index or forced lanes)"}
    stream = out[4: 4 + size].tobytes()
    _, p_ref, hb, bytes_at, esc_at = _rans.parse_header(ref)
    try:
        p_dev = _rans.parse_header(stream)[1]
    except Exception as exc:  # a header the parser refuses is the pack kernel's
        return {"kernel": "pack", "detail": f"header refused: {type(exc).__name__}: {exc}",
                "first_byte": first_diff(stream, ref)}
    if p_dev != p_ref:
        return {"kernel": "count (cost) / plan", "detail": f"lanes {p_dev}, C++ chose {p_ref}"}
    meta = host(buf.meta)
    scratch, escbuf = host(buf.scratch), host(buf.escbuf)
    width = p_ref // max(1, len(bytes_at) - 1)
    refb = np.frombuffer(ref, np.uint8)
    for g in range(len(bytes_at) - 1):
        want = refb[hb + bytes_at[g]: hb + bytes_at[g + 1]]
        got = scratch[meta[g, 0]: meta[g, 0] + meta[g, 1]]
        k = first_diff(got, want)
        if k is not None:
            what = f"final state of lane {k // 4}" if k < 4 * width else f"renormalisation byte {k - 4 * width}"
            return {"kernel": "encode", "group": g, "byte_in_group": k, "what": what,
                    "detail": f"group {g} byte {k} ({what}): triton {got[k:k + 8].tolist()} "
                              f"C++ {want[k:k + 8].tolist()}, lengths {len(got)} / {len(want)}"}
        esc_base = hb + bytes_at[-1]
        want_e = refb[esc_base + 4 * esc_at[g]: esc_base + 4 * esc_at[g + 1]].view("<i4")
        got_e = escbuf[meta[g, 2]: meta[g, 2] + meta[g, 3]]
        k = first_diff(got_e.astype("<i4").view(np.uint8), want_e.view(np.uint8))
        if k is not None:
            return {"kernel": "encode", "group": g, "detail": f"group {g} escape {k // 4} differs "
                    f"(counts {len(got_e)} / {len(want_e)})"}
    k = first_diff(stream, ref)
    if k is not None:
        region = "header" if k < hb else ("groups" if k < hb + bytes_at[-1] else "escapes")
        return {"kernel": "pack", "detail": f"stream byte {k} ({region}) differs, lengths {len(stream)} / {len(ref)}"}
    return None


def compare_decode(coder: tr.TritonRans, sym: np.ndarray, idx: np.ndarray, ref: bytes) -> dict | None:
    """None when the Triton decoder gives back ``sym`` (0 where skipped) without an error flag."""
    out = host(coder.decode(ref, torch.from_numpy(idx).to(coder.device), check=False))
    err = int(coder.last_error)
    want = np.where(idx >= 0, sym, 0)
    k = first_diff(out.astype("<i4").view(np.uint8), want.astype("<i4").view(np.uint8))
    if k is None and err == 0:
        return None
    if k is None:
        return {"kernel": "decode", "detail": f"symbols right but error flag {err}"}
    i = k // 4
    coded = int((idx[:i] >= 0).sum())
    p = _rans.parse_header(ref)[1]
    w = p // -(-p // tr.LANES)
    lane = coded % p
    return {"kernel": "decode", "symbol": i, "detail": f"symbol {i} (coded #{coded}: group {lane // w}, "
            f"lane {lane % w}, row {coded // p}): triton {out[i]} C++ {want[i]}, error flag {err}"}


def run_case(case: Case, coders: dict[tuple[int, int], tr.TritonRans], device: str) -> dict:
    name, sym, idx, lanes, bpl, tables = case
    key = (id(tables), bpl)
    if key not in coders:
        coders[key] = tr.TritonRans(tables, device, bits_per_lane=bpl)
    coder = coders[key]
    ref = rans.encode(sym, idx, tables, bits_per_lane=bpl, lanes=lanes, skip_negative=True)
    result = {"case": name, "n": int(len(sym)), "coded": int((idx >= 0).sum()), "lanes": _rans.parse_header(ref)[1],
              "bytes": len(ref)}
    t0 = time.perf_counter()
    diff = compare_encode(coder, sym, idx, lanes, ref) or compare_decode(coder, sym, idx, ref)
    if device == "cuda":
        torch.cuda.synchronize()
    result.update(ok=diff is None, seconds=round(time.perf_counter() - t0, 3), **(diff or {}))
    return result


def compiled_kernels(dump: Path) -> list[dict]:
    """Per compiled variant of each kernel: warps, ballot votes, lane-layout problems.

    The TTGIR and PTX of the first encode and decode variant with and without the
    ballot are written to ``dump`` (all of them would be tens of MB).
    """
    found, dumped = [], set()
    for jit in (tr._count_kernel, tr._compact_kernel, tr._encode_kernel, tr._pack_kernel, tr._decode_kernel):
        for cache in getattr(jit, "device_caches", {}).values():
            for k, compiled in enumerate(cache[0].values()):
                asm = compiled.asm
                row = {"kernel": f"{jit.fn.__name__}.{k}", "num_warps": compiled.metadata.num_warps,
                       "vote_sync": asm.get("ptx", "").count("vote.sync"),
                       "layout_problems": triton_layout.lane_layout_problems(asm.get("ttgir", ""))}
                kind = (jit.fn.__name__, row["vote_sync"] > 0)
                if kind[0] in ("_encode_kernel", "_decode_kernel") and kind not in dumped:
                    dumped.add(kind)
                    dump.mkdir(parents=True, exist_ok=True)
                    for ext in ("ttgir", "ptx"):
                        (dump / f"{row['kernel']}.{ext}").write_text(asm.get(ext, ""))
                found.append(row)
    return found


def environment(device: str) -> dict:
    import triton

    env = {"python": platform.python_version(), "torch": torch.__version__, "triton": triton.__version__,
           "interpret": INTERPRET, "device": device}
    if device == "cuda":
        env.update(gpu=torch.cuda.get_device_name(), capability=list(torch.cuda.get_device_capability()),
                   cuda=torch.version.cuda)
    return env


def diagnose(out: Path, modes: list[str], deadline: float, log: Callable[[str], None] = print) -> dict:
    """Runs every case in every ballot mode (modes inner, so a deadline cuts both alike),
    rewriting ``out`` after each; returns the report."""
    device = "cpu" if INTERPRET or not torch.cuda.is_available() else "cuda"
    if INTERPRET and "on" in modes:
        log("ballot=on skipped: the interpreter has no inline PTX")
        modes = [m for m in modes if m != "on"]
    report: dict = {"env": environment(device), "results": [], "kernels": []}
    start = time.perf_counter()
    dead = None  # a CUDA fault poisons the context: later cases would only repeat it
    coders: dict[tuple[int, int], tr.TritonRans] = {}
    saved = tr.BALLOT, tr.CHECK_LANE_LAYOUT
    tr.CHECK_LANE_LAYOUT = False  # observe what a wrong layout does; the layouts are reported with the kernels
    try:
        for case in cases(quick=INTERPRET):
            for mode in modes:
                row = {"mode": mode, "case": case[0]}
                if dead or time.perf_counter() - start > deadline:
                    row.update(ok=None, skipped=dead or f"deadline {deadline} s")
                else:
                    tr.BALLOT = mode == "on"
                    try:
                        row.update(run_case(case, coders, device))
                    except Exception as exc:  # recorded, then the next case
                        row.update(ok=False, kernel="exception", detail=f"{type(exc).__name__}: {exc}"[:500])
                        if device == "cuda" and "CUDA" in str(exc):
                            dead = f"CUDA fault in ballot={mode} {case[0]}"
                report["results"].append(row)
                status = {True: "PASS", False: "FAIL", None: "SKIP"}[row["ok"]]
                detail = row.get("detail") or row.get("skipped") or f"{row['bytes']} bytes, {row['seconds']} s"
                log(f"{status} ballot={mode} {row['case']}: " + " ".join(filter(None, (row.get("kernel"), detail))))
                out.write_text(json.dumps(report, indent=1))
        if device == "cuda" and not dead:
            try:
                report["kernels"] = compiled_kernels(out.parent / f"{out.stem}_kernels")
            except Exception as exc:  # the JIT cache's shape is Triton's internals
                report["kernels"] = [{"error": f"{type(exc).__name__}: {exc}"}]
    finally:
        tr.BALLOT, tr.CHECK_LANE_LAYOUT = saved
    rows = report["results"]
    report["summary"] = {m: {"passed": sum(r["ok"] is True for r in rows if r["mode"] == m),
                             "failed": sum(r["ok"] is False for r in rows if r["mode"] == m),
                             "skipped": sum(r["ok"] is None for r in rows if r["mode"] == m),
                             "failing_stages": sorted({r["kernel"] for r in rows if r["mode"] == m and "kernel" in r})}
                         for m in modes}
    report["summary"]["layout_problems"] = sorted({p for k in report["kernels"] for p in k.get("layout_problems", [])})
    out.write_text(json.dumps(report, indent=1))
    log(f"summary {json.dumps(report['summary'])} -> {out}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON summary (kernel dumps go beside it)")
    parser.add_argument("--ballot", nargs="+", choices=("off", "on"), default=["off", "on"])
    parser.add_argument("--deadline", type=float, default=100.0, help="no case starts after this many seconds")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = diagnose(args.out, args.ballot, args.deadline)
    return 0 if all(r["ok"] for r in report["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
