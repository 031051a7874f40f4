"""Ahead-of-time compile the Triton rANS kernels to PTX and cubin, without a GPU.

Compiling in CI catches kernels that only the interpreter accepts (type errors,
unsupported ops) and yields the binaries a deployment without a JIT cache can load.
It also shows what the interpreter cannot: the layouts Triton picks and the PTX
instructions the coder's integer arithmetic became.

    python scripts/aot_compile_triton.py [--arch 86 90] [--out-dir build/triton_aot]

Writes ``<kernel>[.ballot].sm<arch>.{ptx,ttgir,cubin,json}`` per kernel and
architecture; the encoder and decoder are compiled with and without the ballot
prefix sum.  Pointers are declared 16-byte aligned, as the JIT specialises fresh
torch tensors, because alignment changes the layouts Triton picks.  The json holds
a PTX census (shifts, conversions, divisions, votes with the source lines they come
from) and the ballot operands' layout.  Exits non-zero if a compilation fails, the
encoder or decoder is not one warp, or the ballot path is enabled
(``UI2C_TRITON_BALLOT=1``) while its operands are not one element per lane.
Must run without ``TRITON_INTERPRET``.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
from pathlib import Path

# instruction families whose compiled meaning the interpreter does not show
_CENSUS = re.compile(r"^(shr|cvt|div|rem|vote|popc|mul\.wide|mul\.lo\.[su]64)\b")
_PRED = re.compile(r"^@!?%p\w*\s+")


def kernel_specs() -> list[tuple[str, object, dict, dict, int]]:
    """(name, kernel, signature, constexprs, num_warps) of every kernel, as the wrappers launch them."""
    from ui2c.plugins import triton_rans as tr

    i32, pi32, pi64, pu8, pf32 = "i32", "*i32", "*i64", "*u8", "*fp32"
    count_sig = {"sym_ptr": pi32, "idx_ptr": pi32, "n_all": i32, "num_tables": i32, "start_ptr": pi32,
                 "len_ptr": pi64, "off_ptr": pi64, "cost_ptr": pi32, "width": i32, "count_ptr": pi32,
                 "costsum_ptr": pi64, "bad_ptr": pi32, "BLOCK": "constexpr", "WITH_COST": "constexpr"}
    compact_sig = {"sym_ptr": pi32, "idx_ptr": pi32, "n_all": i32, "num_tables": i32, "count_ptr": pi32,
                   "num_chunks": i32, "csym_ptr": pi32, "cidx_ptr": pi32, "cpos_ptr": pi32, "ncoded_ptr": pi32,
                   "BLOCK": "constexpr", "CBLOCK": "constexpr", "WITH_SYM": "constexpr"}
    encode_sig = {"csym_ptr": pi32, "cidx_ptr": pi32, "ncoded_ptr": pi32, "costsum_ptr": pi64, "num_chunks": i32,
                  "bits_per_lane": i32, "forced": i32, "start_ptr": pi32, "freq_ptr": pi32, "rcp_ptr": pf32,
                  "len_ptr": pi64, "off_ptr": pi64, "width": i32, "scratch_ptr": pu8, "escbuf_ptr": pi32,
                  "meta_ptr": pi64, "CH": "constexpr", "LANES": "constexpr", "CBLOCK": "constexpr",
                  "MAXL": "constexpr", "BALLOT": "constexpr"}
    pack_sig = {"ncoded_ptr": pi32, "costsum_ptr": pi64, "bad_ptr": pi32, "num_chunks": i32, "bits_per_lane": i32,
                "forced": i32, "scratch_ptr": pu8, "escbuf_ptr": pi32, "meta_ptr": pi64, "out_ptr": pu8,
                "CBLOCK": "constexpr", "GB": "constexpr", "MAXL": "constexpr", "COPY": "constexpr"}
    decode_sig = {"data_ptr": pu8, "aux_ptr": pi32, "esc_ptr": pi32, "cidx_ptr": pi32, "cpos_ptr": pi32,
                  "ncoded_ptr": pi32, "lut_ptr": pi64, "sub_ptr": pi64, "len_ptr": pi64, "off_ptr": pi64,
                  "out_ptr": pi32, "err_ptr": pi32, "n": i32, "P": i32, "W": i32, "G": i32,
                  "CH": "constexpr", "LANES": "constexpr", "BALLOT": "constexpr"}
    # shapes of one 1080p step (261,120 symbols: 64 count chunks, up to 16 groups)
    specs = [
        ("_count_kernel", tr._count_kernel, count_sig, {"BLOCK": tr.COUNT_BLOCK, "WITH_COST": True}, 4),
        ("_compact_kernel", tr._compact_kernel, compact_sig,
         {"BLOCK": tr.COUNT_BLOCK, "CBLOCK": 64, "WITH_SYM": True}, 4),
        ("_pack_kernel", tr._pack_kernel, pack_sig, {"CBLOCK": 64, "GB": 32, "MAXL": tr.MAX_LANES, "COPY": 1024}, 4),
    ]
    for ballot in (False, True):
        suffix = ".ballot" if ballot else ""
        specs += [
            ("_encode_kernel" + suffix, tr._encode_kernel, encode_sig,
             {"CH": tr.CHUNK_ROWS, "LANES": tr.LANES, "CBLOCK": 64, "MAXL": tr.MAX_LANES, "BALLOT": ballot}, 1),
            ("_decode_kernel" + suffix, tr._decode_kernel, decode_sig,
             {"CH": tr.CHUNK_ROWS, "LANES": tr.LANES, "BALLOT": ballot}, 1),
        ]
    return specs


def ptx_census(ptx: str) -> dict[str, dict[str, int]]:
    """Instruction -> {"file:line source text": count} for the families in ``_CENSUS``.

    Lines come from the PTX ``.loc`` debug directives (the nearest preceding one), so
    an instruction is attributed to the Python line it was generated for.
    """
    files: dict[str, list[str]] = {}
    for fid, path in re.findall(r'^\s*\.file\s+(\d+)\s+"([^"]+)"', ptx, re.M):  # listed after the code
        files[fid] = Path(path).read_text().splitlines() if Path(path).is_file() else []
    where = "?"
    census: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for raw in ptx.splitlines():
        line = _PRED.sub("", raw.strip())
        if line.startswith(".loc"):
            fid, num = line.split()[1:3]
            text = files.get(fid, [])
            src = text[int(num) - 1].strip() if 0 < int(num) <= len(text) else ""
            where = f"{fid}:{num} {src}"[:100]
        elif _CENSUS.match(line):
            census[line.split()[0]][where] += 1
    return {op: dict(sorted(c.items())) for op, c in sorted(census.items())}


def compile_all(archs: list[int], out_dir: Path) -> int:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from ui2c.plugins import triton_rans as tr

    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name, kernel, signature, constexprs, num_warps in kernel_specs():
        aligned = {(i,): [["tt.divisibility", 16]] for i, kind in enumerate(signature.values()) if kind.startswith("*")}
        for arch in archs:
            target = GPUTarget("cuda", arch, 32)
            try:
                src = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=aligned)
                options = triton.compiler.make_backend(target).parse_options({"num_warps": num_warps})
                compiled = triton.compile(src, target=target, options=options.__dict__)
            except Exception as exc:  # report every kernel, then fail
                print(f"FAILED {name} sm_{arch}: {type(exc).__name__}: {exc}", file=sys.stderr)
                failures += 1
                continue
            stem = f"{name}.sm{arch}"
            ttgir = compiled.asm["ttgir"]
            (out_dir / f"{stem}.ptx").write_text(compiled.asm["ptx"])
            (out_dir / f"{stem}.ttgir").write_text(ttgir)
            (out_dir / f"{stem}.cubin").write_bytes(compiled.asm["cubin"])
            problems = tr.lane_layout_problems(ttgir)
            census = ptx_census(compiled.asm["ptx"])
            meta = {"name": compiled.metadata.name, "triton": triton.__version__, "arch": arch,
                    "num_warps": compiled.metadata.num_warps, "shared": compiled.metadata.shared,
                    "constexprs": constexprs, "ballot_layout_problems": problems, "ptx_census": census}
            (out_dir / f"{stem}.json").write_text(json.dumps(meta, indent=1))
            notes = [f"warps {compiled.metadata.num_warps}", f"shared {compiled.metadata.shared} B",
                     f"vote.sync {sum(sum(c.values()) for op, c in census.items() if op.startswith('vote'))}"]
            if constexprs.get("BALLOT"):
                notes.append(f"ballot layout {'WRONG: ' + ', '.join(problems) if problems else 'one element per lane'}")
            print(f"ok {name} sm_{arch} (triton {triton.__version__}): {', '.join(notes)}")
            if num_warps == 1 and compiled.metadata.num_warps != 1:
                print(f"FAILED {name} sm_{arch}: compiled for {compiled.metadata.num_warps} warps", file=sys.stderr)
                failures += 1
            if problems and constexprs.get("BALLOT") and tr.BALLOT:
                print(f"FAILED {name} sm_{arch}: UI2C_TRITON_BALLOT=1 with a layout the ballot gets wrong",
                      file=sys.stderr)
                failures += 1
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, nargs="+", default=[86, 90])
    parser.add_argument("--out-dir", type=Path, default=Path("build/triton_aot"))
    args = parser.parse_args()
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("unset TRITON_INTERPRET: the interpreter cannot compile kernels", file=sys.stderr)
        return 2
    return 1 if compile_all(args.arch, args.out_dir) else 0


if __name__ == "__main__":
    sys.exit(main())
