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
    """(kernel, signature, constexprs) of every kernel, for the shapes the wrappers launch."""
    from ui2c.plugins import triton_rans as tr

    i32, pi32, pi64 = "i32", "*i32", "*i64"
    encode_sig = {"start_ptr": pi32, "freq_ptr": pi32, "out_ptr": pi32, "first_ptr": pi32,
                  "n": i32, "per_block": i32, "lanes": i32, "cap": i32, "LANES": "constexpr"}
    decode_sig = {"words_ptr": pi32, "word_begin_ptr": pi64, "esc_ptr": pi32, "esc_begin_ptr": pi64,
                  "idx_ptr": pi32, "cdf_ptr": pi32, "len_ptr": pi32, "off_ptr": pi32, "out_ptr": pi32,
                  "err_ptr": pi32, "n": i32, "per_block": i32, "lanes": i32, "width": i32,
                  "LANES": "constexpr", "WIDTH": "constexpr"}
    # DCVC-RT tables are at most 19 wide (Gaussian and factorized), so WIDTH = 32.
    return [
        (tr.rans_encode_kernel, encode_sig, {"LANES": tr.LANES}),
        (tr.rans_decode_kernel, decode_sig, {"LANES": tr.LANES, "WIDTH": 32}),
    ]


def compile_all(archs: list[int], out_dir: Path) -> int:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for kernel, signature, constexprs in kernel_specs():
        name = kernel.fn.__name__
        for arch in archs:
            target = GPUTarget("cuda", arch, 32)
            try:
                src = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
                options = triton.compiler.make_backend(target).parse_options({"num_warps": 1})
                compiled = triton.compile(src, target=target, options=options.__dict__)
            except Exception as exc:  # report every kernel, then fail
                print(f"FAILED {name} sm_{arch}: {type(exc).__name__}: {exc}", file=sys.stderr)
                failures += 1
                continue
            stem = f"{name}.sm{arch}"
            (out_dir / f"{stem}.ptx").write_text(compiled.asm["ptx"])
            (out_dir / f"{stem}.cubin").write_bytes(compiled.asm["cubin"])
            meta = {"name": compiled.metadata.name, "num_warps": compiled.metadata.num_warps,
                    "shared": compiled.metadata.shared, "arch": arch, "constexprs": constexprs}
            (out_dir / f"{stem}.json").write_text(json.dumps(meta, indent=1))
            print(f"ok {name} sm_{arch}: {len(compiled.asm['cubin'])} bytes cubin")
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
