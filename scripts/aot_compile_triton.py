"""Ahead-of-time compile the Triton rANS kernels to PTX and cubin, without a GPU.

Compiling in CI catches kernels that only the interpreter accepts (type errors,
unsupported ops) and yields the binaries a deployment without a JIT cache can load.

    python scripts/aot_compile_triton.py [--arch 86 90] [--out-dir build/triton_aot]

Writes ``<kernel>.sm<arch>.{ptx,cubin,json}`` per kernel and architecture and exits
non-zero if any compilation fails.  Must run without ``TRITON_INTERPRET``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def kernel_specs():
    """(kernel, signature, constexprs, num_warps) of every kernel, as the wrappers launch them."""
    from ui2c.plugins import triton_rans as tr

    i32, i64, pi32, pi64, pu8, pf32 = "i32", "i64", "*i32", "*i64", "*u8", "*fp32"
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
    return [
        (tr._count_kernel, count_sig, {"BLOCK": tr.COUNT_BLOCK, "WITH_COST": True}, 4),
        (tr._compact_kernel, compact_sig, {"BLOCK": tr.COUNT_BLOCK, "CBLOCK": 64, "WITH_SYM": True}, 4),
        (tr._encode_kernel, encode_sig, {"CH": tr.CHUNK_ROWS, "LANES": tr.LANES, "CBLOCK": 64,
                                         "MAXL": tr.MAX_LANES, "BALLOT": tr.BALLOT}, 1),
        (tr._pack_kernel, pack_sig, {"CBLOCK": 64, "GB": 16, "MAXL": tr.MAX_LANES, "COPY": 1024}, 4),
        (tr._decode_kernel, decode_sig, {"CH": tr.CHUNK_ROWS, "LANES": tr.LANES, "BALLOT": tr.BALLOT}, 1),
    ]


def compile_all(archs: list[int], out_dir: Path) -> int:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for kernel, signature, constexprs, num_warps in kernel_specs():
        name = kernel.fn.__name__
        for arch in archs:
            target = GPUTarget("cuda", arch, 32)
            try:
                src = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
                options = triton.compiler.make_backend(target).parse_options({"num_warps": num_warps})
                compiled = triton.compile(src, target=target, options=options.__dict__)
            except Exception as exc:  # report every kernel, then fail
                print(f"FAILED {name} sm_{arch}: {type(exc).__name__}: {exc}", file=sys.stderr)
                failures += 1
                continue
            stem = f"{name}.sm{arch}"
            (out_dir / f"{stem}.ptx").write_text(compiled.asm["ptx"])
            if "ttgir" in compiled.asm:
                (out_dir / f"{stem}.ttgir").write_text(compiled.asm["ttgir"])
            (out_dir / f"{stem}.cubin").write_bytes(compiled.asm["cubin"])
            meta = {"name": compiled.metadata.name, "num_warps": compiled.metadata.num_warps,
                    "registers": getattr(compiled, "n_regs", None), "spills": getattr(compiled, "n_spills", None),
                    "shared": compiled.metadata.shared, "arch": arch, "constexprs": constexprs}
            (out_dir / f"{stem}.json").write_text(json.dumps(meta, indent=1))
            print(f"ok {name} sm_{arch}: {len(compiled.asm['cubin'])} bytes cubin, "
                  f"shared {compiled.metadata.shared} B")
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
