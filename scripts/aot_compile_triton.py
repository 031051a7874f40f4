"""Ahead-of-time compile the Triton rANS kernels to PTX and cubin, without a GPU.

Compiling in CI catches kernels that only the interpreter accepts (type errors,
unsupported ops) and yields the binaries a deployment without a JIT cache can load.
It also shows what the interpreter cannot: the layouts Triton picks and the PTX
instructions the coder's integer arithmetic became.

    python scripts/aot_compile_triton.py [--arch 86 90] [--out-dir build/triton_aot]

Writes ``<kernel>[.ballot].sm<arch>.{ptx,ttgir,cubin,json}`` per kernel and
architecture; the encoder and decoder are compiled with and without the ballot
prefix sum.  Pointers are declared 16-byte aligned and integers unspecialised, which
is the one specialisation the wrappers launch (``triton_rans.COUNT_BLOCK``'s note), so
what is compiled here is what the JIT runs; a kernel that specialises an integer
argument fails the script.  The json holds
a PTX census (shifts, conversions, divisions, votes with the source lines they come
from), the ballot operands' layout and, for the one-warp coder kernels, the layout of
every 32-lane vector (elements per thread, copies of each element) and the PTX
instructions of the row loop per row.  A row is meant to be done once, one element
per lane: Triton 3.6 once laid the encoder's rows out 16 elements per thread, each
copied over 16 lanes, which did every row 16 times over (~1,430 PTX instructions per
row instead of ~115) and broke the ballot.  Exits non-zero if a compilation fails, the
encoder or decoder is not one warp, any of their 32-lane vectors is not one element
per lane, or the ballot path is enabled (``UI2C_TRITON_BALLOT=1``) while its operands
are not one element per lane.  Must run without ``TRITON_INTERPRET``.
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
_LABEL = re.compile(r"^(\$L__\w+):")
_BRANCH = re.compile(r"^bra(?:\.uni)?\s+(\$L__\w+);")
_ROW_FAMILIES = ("cvt", "shfl", "vote", "bar", "st.shared", "ld.shared")


def kernel_specs() -> list[tuple[str, object, dict, dict, int]]:
    """(name, kernel, signature, constexprs, num_warps) of every kernel, as the wrappers
    launch them."""
    from ui2c.plugins import triton_rans as tr

    i32, pi32, pi64, pu8, pf32 = "i32", "*i32", "*i64", "*u8", "*fp32"
    count_sig = {"sym_ptr": pi32, "idx_ptr": pi32, "n_all": i32, "num_tables": i32,
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
    decode_sig = {"data_ptr": pu8, "esc_ptr": pi32, "state_ptr": pi32, "cidx_ptr": pi32, "cpos_ptr": pi32,
                  "ncoded_ptr": pi32, "lut_ptr": pi64, "sub_ptr": pi64, "len_ptr": pi64, "off_ptr": pi64,
                  "out_ptr": pi32, "n": i32, "P": i32, "W": i32,
                  "CH": "constexpr", "LANES": "constexpr", "BALLOT": "constexpr"}
    # shapes of one 1080p step (261,120 symbols: 64 count chunks, up to 16 groups)
    specs = [
        ("_count_kernel", tr._count_kernel, count_sig, {"BLOCK": tr.COUNT_BLOCK, "WITH_COST": True}, 4),
        ("_compact_kernel", tr._compact_kernel, compact_sig,
         {"BLOCK": tr.COUNT_BLOCK, "CBLOCK": 64, "WITH_SYM": True}, 4),
        ("_pack_kernel", tr._pack_kernel, pack_sig,
         {"CBLOCK": 64, "GB": tr.HEADER_GROUPS, "MAXL": tr.MAX_LANES, "COPY": 1024}, 4),
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


def row_loop(ptx: str, rows: int) -> dict[str, float]:
    """PTX instructions of the kernel's largest loop (the coder's chunk loop: ``rows``
    unrolled rows and the next chunk's loads), in all and per row, by family."""
    lines = [_PRED.sub("", raw.strip()) for raw in ptx.splitlines()]
    labels: dict[str, int] = {}
    span = (0, -1)
    for k, line in enumerate(lines):
        if m := _LABEL.match(line):
            labels[m.group(1)] = k
        elif (m := _BRANCH.match(line)) and m.group(1) in labels and k - labels[m.group(1)] > span[1] - span[0]:
            span = (labels[m.group(1)], k)  # a branch back: the end of a loop
    body = [line for line in lines[span[0]: span[1] + 1]
            if line and not line.startswith((".", "/", "$", "{", "}")) and not _LABEL.match(line)]
    stats = {"instructions": len(body), "per_row": round(len(body) / rows, 1)}
    for family in _ROW_FAMILIES:
        stats[f"{family}_per_row"] = round(sum(line.startswith(family) for line in body) / rows, 2)
    return stats


def lane_vectors(ttgir: str) -> tuple[dict[str, list[int] | None], list[str]]:
    """Layout -> [elements per thread, copies] of every 32-lane vector, and those that
    are not one element per lane."""
    from ui2c.plugins import triton_layout

    layouts = triton_layout.lane_vector_layouts(ttgir)
    problems = sorted(ref for ref, v in layouts.items() if v != (1, 1))
    return ({ref: list(v) if v else None for ref, v in layouts.items()},
            problems if layouts else ["none found (has the TTGIR syntax changed?)"])


def compile_all(archs: list[int], out_dir: Path) -> int:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from ui2c.plugins import triton_layout

    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name, kernel, signature, constexprs, num_warps in kernel_specs():
        specialised = [kernel.params[i].name for i, kind in enumerate(signature.values())
                       if kind == "i32" and not kernel.params[i].do_not_specialize]
        if specialised:
            print(f"FAILED {name}: integer arguments {', '.join(specialised)} are specialised, so the JIT "
                  "compiles the kernel again whenever one of them becomes 1 or a multiple of 16", file=sys.stderr)
            failures += 1
        # the attributes the JIT gives a launch with 16-byte aligned tensors
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
            problems = triton_layout.lane_layout_problems(ttgir)
            census = ptx_census(compiled.asm["ptx"])
            meta = {"name": compiled.metadata.name, "triton": triton.__version__, "arch": arch,
                    "num_warps": compiled.metadata.num_warps, "shared": compiled.metadata.shared,
                    "constexprs": constexprs, "ballot_layout_problems": problems, "ptx_census": census}
            notes = [f"warps {compiled.metadata.num_warps}", f"shared {compiled.metadata.shared} B",
                     f"vote.sync {sum(sum(c.values()) for op, c in census.items() if op.startswith('vote'))}"]
            lane_problems: list[str] = []
            if num_warps == 1:  # the coders: one warp, a row is one 32-lane vector step
                layouts, lane_problems = lane_vectors(ttgir)
                loop = row_loop(compiled.asm["ptx"], constexprs["CH"])
                meta["lane_vectors"] = layouts
                meta["row_loop"] = loop
                per_thread = max((v[0] if v else 0) for v in layouts.values()) if layouts else 0
                copies = max((v[1] if v else 0) for v in layouts.values()) if layouts else 0
                notes.append(f"lane vectors {per_thread} element(s)/thread x{copies} copies" if None not in
                             layouts.values() else "lane vectors: unknown layout")
                notes.append(f"row loop {loop['per_row']} instr/row (cvt {loop['cvt_per_row']}, "
                             f"shfl {loop['shfl_per_row']}, vote {loop['vote_per_row']}, bar {loop['bar_per_row']})")
            (out_dir / f"{stem}.json").write_text(json.dumps(meta, indent=1))
            if constexprs.get("BALLOT"):
                notes.append(f"ballot layout {'WRONG: ' + ', '.join(problems) if problems else 'one element per lane'}")
            print(f"ok {name} sm_{arch} (triton {triton.__version__}): {', '.join(notes)}")
            if num_warps == 1 and compiled.metadata.num_warps != 1:
                print(f"FAILED {name} sm_{arch}: compiled for {compiled.metadata.num_warps} warps", file=sys.stderr)
                failures += 1
            if lane_problems:
                print(f"FAILED {name} sm_{arch}: 32-lane vectors not one element per lane, so every row runs "
                      f"more than once: {', '.join(f'{ref} {layouts.get(ref)}' for ref in lane_problems)}",
                      file=sys.stderr)
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
