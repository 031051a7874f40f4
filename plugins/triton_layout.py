"""What layout Triton gave a compiled kernel's lane vectors, read from its TTGIR.

A one-warp coder program (``triton_rans``) treats each 32-element vector as its 32
lanes, one element per lane.  Triton, not our code, picks the layout, and a version
that spreads a vector over threads differently makes each row run many times over,
or (for the opt-in ballot asm) gives wrong streams.  These functions read the layouts
from the compiled TTGIR text, so the wrappers and ``scripts/aot_compile_triton.py``
can refuse or report them.  Plain text parsing: nothing here needs Triton or a GPU.
"""
from __future__ import annotations

import math
import re

LANES = 32  # vector width of a coder program: the lanes of one group
_BLOCKED = re.compile(r"^#(\w+) = #[\w.]*blocked<\{sizePerThread = \[([\d, ]+)\], "
                      r"threadsPerWarp = \[([\d, ]+)\], warpsPerCTA = \[([\d, ]+)\]", re.M)
_OPERAND = re.compile(r"tensor<(\d+)x\w+, #(?:(\w+)|[\w.]*slice<\{dim = (\d+), parent = #(\w+)\}>)>")


def _one_per_lane(size: int, layout: tuple[tuple[int, ...], ...] | None, dim: int | None) -> bool:
    """True for a [LANES] layout that puts element j in lane j of one warp and nowhere else:
    a 1-D blocked layout of 1 x 32 x 1, or a 2-D one sliced along the dimension that
    has 1 thread, whose other dimension has 1 element per thread and 32 threads."""
    if layout is None or size != LANES:
        return False
    per_thread, threads, warps = layout
    if dim is None:
        return per_thread == (1,) and threads == (LANES,) and warps == (1,)
    kept = 1 - dim
    return len(threads) == 2 and per_thread[kept] == 1 and threads[kept] == LANES and set(warps) == {1}


def lane_layout_problems(ttgir: str) -> list[str]:
    """Operand types of the inline asm in a compiled kernel's TTGIR whose layout is not
    one element per lane (unknown layouts, e.g. linear ones, count as problems)."""
    blocked = {name: tuple(tuple(int(v) for v in f.split(",")) for f in fields)
               for name, *fields in _BLOCKED.findall(ttgir)}
    problems = set()
    for line in ttgir.splitlines():
        if "tt.elementwise_inline_asm" in line:
            for m in _OPERAND.finditer(line.rsplit(" -> ", 1)[0]):
                size, name, dim, parent = m.groups()
                if not _one_per_lane(int(size), blocked.get(name or parent), None if name else int(dim)):
                    problems.add(m.group(0))
    return sorted(problems)


_LINEAR = re.compile(r"^#(\w+) = #[\w.]*linear<\{register = (\[[\d\[\], ]*\]), lane = (\[[\d\[\], ]*\]), "
                     r"warp = (\[[\d\[\], ]*\])", re.M)
_VECTOR = re.compile(r"tensor<(\d+)x(?:!tt\.ptr<\w+>|\w+), (#(?:\w+|[\w.]*slice<\{dim = \d+, parent = #\w+\}>))>")
_SLICE = re.compile(r"#[\w.]*slice<\{dim = (\d+), parent = #(\w+)\}>")


def _bases(text: str) -> list[list[int]]:
    return [[int(v) for v in b.split(",")] for b in re.findall(r"\[([\d, ]+)\]", text)]


def lane_vector_layouts(ttgir: str, size: int = LANES) -> dict[str, tuple[int, int] | None]:
    """Layout of every 1-D tensor of ``size`` elements in a compiled kernel's TTGIR ->
    (elements each thread holds, copies of each element), None where the layout is not
    understood.  (1, 1) is one element per lane: a row of a one-warp coder is done once.

    A blocked layout (or a slice of a 2-D one) of T threads and W warps with
    sizePerThread s along the kept dimension holds max(size // (T_d W_d), min(s, size))
    elements per thread; the threads along a sliced dimension hold copies.  A linear
    layout holds 2^(register bases) elements per thread."""
    blocked = {name: tuple(tuple(int(v) for v in f.split(",")) for f in fields)
               for name, *fields in _BLOCKED.findall(ttgir)}
    linear = {name: tuple(_bases(f) for f in fields) for name, *fields in _LINEAR.findall(ttgir)}
    found: dict[str, tuple[int, int] | None] = {}
    for m in _VECTOR.finditer(ttgir):
        if int(m.group(1)) != size or m.group(2) in found:
            continue
        ref = m.group(2)
        sliced = _SLICE.fullmatch(ref)
        name, dim = (sliced.group(2), int(sliced.group(1))) if sliced else (ref[1:], None)
        result = None
        if name in blocked:
            per_thread, threads, warps = blocked[name]
            kept = [d for d in range(len(threads)) if d != dim]
            if len(kept) == 1:
                d = kept[0]
                elems = max(size // (threads[d] * warps[d]), min(per_thread[d], size))
                result = (elems, elems * math.prod(threads) * math.prod(warps) // size)
        elif name in linear:
            reg, lane, warp = linear[name]
            if all(len(b) == (1 if dim is None else 2) for b in reg + lane + warp):
                result = (2 ** len(reg), 2 ** (len(reg) + len(lane) + len(warp)) // size)
        found[ref] = result
    return found
