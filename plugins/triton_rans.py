"""Triton GPU coder for the interleaved rANS format 2 (``entropy/csrc/rans_format.hpp``).

Byte-identical to the C++ coder.  Everything between the caller's device tensors and
the final bytes runs on the device, so a call synchronises exactly once:

* encode: ``_count_kernel`` (coded symbols and their cost per chunk) →
  ``_compact_kernel`` (drops skipped symbols; chunk offsets from the counts) →
  ``_encode_kernel`` (one program per lane group; reads the layout policy's inputs
  from the device) → ``_pack_kernel`` (header, check, groups and escapes at their
  prefix-sum offsets) → one device→host copy of the stream (a 4-byte size prefix
  tells the host how much of the copied buffer is the stream).
* decode: the host parses the header it already holds (C++ ``parse_header``), one
  host→device copy of the payload and the initial decoder state; then per segment of
  the stream (``TritonStreamDecoder``: the runtime's two steps are one stream, decoded
  one step at a time) ``_count_kernel`` + ``_compact_kernel`` map the segment's coded
  symbols to their positions and ``_decode_kernel`` writes them in place, resuming
  from and saving the state on the device; ``finish`` is the one synchronisation.

One program is one warp (``num_warps=1``): its 32-wide vectors are the lanes of a
group, a row is one vector step, and the byte positions of a row come from one
exclusive prefix sum over the lanes (bytes and escapes packed into one int32 so a
single scan serves both).  Per-row inputs that do not depend on the coder state are
loaded CH rows at a time as [CH, 32] tiles, so their memory latency is paid once per
chunk.  A row must stay one element per lane, or every row is done many times over:
the table look-ups of a tile (gathers, no contiguous axis) are loaded flat
(``_gather``): the layout Triton gives a 2-D gather depends on the version (3.6
ordered its two equally non-contiguous axes rows first, threads [16, 2], and carried
that layout into the row loop: 16 elements per thread, copied over 16 lanes, ~1,430
PTX instructions per encoded row instead of ~115).
``scripts/aot_compile_triton.py`` fails when a 32-lane vector is not one per lane.

Decoding a symbol is one table lookup: ``lut[t, slot >> 8]`` holds, for a 256-slot
bucket with at most one slot boundary inside (the common case), the slot at the
bucket start, the boundary's offset and the starts and frequencies of both slots;
only a bucket with several boundaries (distribution tails) points at a 256-entry
sub-table in ``sub``, read by the lanes that need it.  The encoder's x / f is a float32 reciprocal multiply
corrected by one integer step (exact: the estimate is within 1 of the quotient).

Compiled and interpreted kernels must agree bit for bit, so the arithmetic avoids
whatever the interpreter (NumPy) and PTX define differently: the coder state is
uint32 (logical shifts, wrap-around products), integer ``//`` and ``%`` only see
non-negative operands (Triton truncates, NumPy floors), every load whose address
may leave its buffer is masked, and every position fits int32 (the host refuses
larger calls, ``MAX_SYMBOLS``).

On a machine without a GPU the kernels run in Triton's interpreter when
``TRITON_INTERPRET=1`` is set before importing this module.
"""
from __future__ import annotations

import contextlib
import os
from typing import NamedTuple

import numpy as np
import torch
import triton
import triton.language as tl

from ui2c.entropy import _rans
from ui2c.entropy.tables import CdfTables
from ui2c.errors import CorruptStreamError
from ui2c.plugins.triton_layout import LANES, lane_layout_problems

MAX_LANES: int = _rans.MAX_LANES
STATE_LOW = tl.constexpr(1 << 24)  # L: a lane state lives in [L, 2^32) between symbols (format §3)
# rows per [CH, 32] input tile.  The rows of a tile are unrolled, and the compile time
# grows much faster than CH (Triton's coalescing pass, sm_90, Triton 3.9: decoder 1.0 /
# 4.1 / 25 s at CH 4 / 8 / 16, with the same PTX instructions per row); the next tile
# is loaded a chunk ahead, and 8 rows of work cover its latency.
CHUNK_ROWS = 8
COUNT_BLOCK = 4096  # symbols per program of the count/compact kernels
# The JIT compiles a kernel once per specialisation: integer arguments equal to 1 or
# divisible by 16 and pointers aligned to 16 bytes each make another one.  Every
# integer argument is therefore left unspecialised and every tensor is 16-byte aligned
# (``_int32_1d``, the decoder's upload layout), so a session compiles each kernel once
# per size class (the constexprs), not again whenever a stream's group count or a
# lane count changes.  (Specialising also changed the layouts: W = 32 and P = 32 G let
# Triton load the index tiles 4 lanes per thread, ~220 PTX instructions per row
# instead of ~160.)
_ALIGN = 16
HEADER_GROUPS = 512  # GB of the pack kernel: 2 * GB >= 2 * groups + 2 for every group count
# Symbols of one call.  The largest step the container allows (2^26 pixels: 2^18 latent
# positions x 64 channels of a checkerboard half for the pair presets, x 128 for DCVC-RT)
# is 2^24; past it the count/compact/encode/pack programs, which each reduce over all
# COUNT_BLOCK chunks in one warp, grow beyond what has been compiled and run.  (Positions
# - bytes <= 2 per symbol + 6 per lane, escapes, row indexes - are int32 on the device.)
MAX_SYMBOLS = 1 << 24
# Coded symbols a stream may announce to the decoder, which takes them in segments of
# fewer than MAX_SYMBOLS each (the runtime codes a unit's two steps as one stream).  Its
# int32 positions stay in range: symbol numbers, and byte cursors, which corrupt data can
# drive 2 bytes per symbol past a payload of at most 2 n + 4 P bytes (the header check).
MAX_STREAM_SYMBOLS = 1 << 28
# The decoder's state between segments: a row of _STATE_WORDS int32 per group, read and
# written only by that group's program (so launches need no ordering beyond the stream):
# byte and escape cursors, the group's byte and escape ends, the coded symbols decoded so
# far, a sticky error flag, the error flag the stream would end with if it ended here,
# and from word _X the lane states (uint32 bit patterns).  160 bytes keep rows aligned.
_RP, _EP, _BE, _EE, _NEXT, _BAD, _END = (tl.constexpr(k) for k in range(7))
_X = tl.constexpr(8)
_STATE_WORDS = tl.constexpr(8 + LANES)
_INVALID = 0xFFFFFFFF  # size prefix of an encode with an out-of-range table index or lane count
# Lane prefix sums by warp ballot + popc (inline PTX; opt-in with UI2C_TRITON_BALLOT=1,
# never in the interpreter).  The asm is only right when element j of its operands
# lives in lane j of the warp and nowhere else, and Triton picks that layout, not
# this code: Triton 3.6 gave the encoder's operands a slice of a [16, 2]-thread
# layout (16 elements per thread, replicated over 16 lanes), so the ballots mixed
# lanes and the streams were wrong, until the gathers were made flat (_gather).
# tl.cumsum is right under any layout.
# So the opt-in path checks the compiled layout (lane_layout_problems) before it
# returns a result; scripts/aot_compile_triton.py reports it for a given Triton.
BALLOT = os.environ.get("TRITON_INTERPRET", "0") in ("", "0") and os.environ.get("UI2C_TRITON_BALLOT", "0") == "1"
CHECK_LANE_LAYOUT = True  # scripts/triton_gpu_diag.py turns it off to see what a wrong layout does

_PREFIX_PTX = tl.constexpr("""{
.reg .pred pa, pb, pe;
.reg .b32 a, b, e, lt, u, v, w;
setp.ge.s32 pa, $2, 1;
setp.eq.s32 pb, $2, 2;
setp.ne.s32 pe, $3, 0;
vote.sync.ballot.b32 a, pa, 0xffffffff;
vote.sync.ballot.b32 b, pb, 0xffffffff;
vote.sync.ballot.b32 e, pe, 0xffffffff;
mov.u32 lt, %lanemask_lt;
and.b32 u, a, lt;
popc.b32 u, u;
and.b32 v, b, lt;
popc.b32 v, v;
add.u32 u, u, v;
and.b32 w, e, lt;
popc.b32 w, w;
shl.b32 w, w, 8;
or.b32 $0, u, w;
popc.b32 u, a;
popc.b32 v, b;
add.u32 u, u, v;
popc.b32 w, e;
shl.b32 w, w, 8;
or.b32 $1, u, w;
}""")
_layout_ok: set[object] = set()


def _check_lane_layout(kernel: object) -> None:
    """With BALLOT, refuses (once per compiled kernel) a layout the ballot asm gets wrong."""
    if not (BALLOT and CHECK_LANE_LAYOUT) or kernel in _layout_ok:
        return
    problems = lane_layout_problems(kernel.asm["ttgir"])
    if problems:
        raise RuntimeError(f"UI2C_TRITON_BALLOT=1, but Triton {triton.__version__} gives the ballot's operands "
                           f"layouts it cannot use ({', '.join(problems)}): unset it")
    _layout_ok.add(kernel)


@triton.jit(do_not_specialize=["n_all", "num_tables", "width"])
def _count_kernel(sym_ptr, idx_ptr, n_all, num_tables, len_ptr, off_ptr, cost_ptr, width,
                  count_ptr, costsum_ptr, bad_ptr, BLOCK: tl.constexpr, WITH_COST: tl.constexpr):
    """Per chunk: number of coded symbols (index >= 0) and, for the encoder, their summed cost."""
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n_all
    t = tl.load(idx_ptr + offs, mask=inside, other=-1)
    keep = t >= 0
    tl.store(count_ptr + pid, tl.sum(keep.to(tl.int32), axis=0))
    outside = keep & (t >= num_tables)
    tl.store(bad_ptr + pid, tl.sum(outside.to(tl.int32), axis=0))
    if WITH_COST:
        tt = tl.where(keep & (t < num_tables), t, 0)
        s = tl.load(sym_ptr + offs, mask=keep, other=0).to(tl.int64)
        esc_slot = tl.load(len_ptr + tt) - 2
        v = s - tl.load(off_ptr + tt)
        slot = tl.where((v >= 0) & (v < esc_slot), v, esc_slot)
        cost = tl.load(cost_ptr + tt * width + slot, mask=keep, other=0)
        tl.store(costsum_ptr + pid, tl.sum(cost.to(tl.int64), axis=0))


@triton.jit(do_not_specialize=["n_all", "num_tables", "num_chunks"])
def _compact_kernel(sym_ptr, idx_ptr, n_all, num_tables, count_ptr, num_chunks, csym_ptr, cidx_ptr, cpos_ptr,
                    ncoded_ptr, BLOCK: tl.constexpr, CBLOCK: tl.constexpr, WITH_SYM: tl.constexpr):
    """Writes coded symbols (and their original positions) densely, in order."""
    pid = tl.program_id(0)
    c = tl.arange(0, CBLOCK)
    counts = tl.load(count_ptr + c, mask=c < num_chunks, other=0)
    base = tl.sum(tl.where(c < pid, counts, 0), axis=0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    t = tl.load(idx_ptr + offs, mask=offs < n_all, other=-1)
    keep = t >= 0
    k32 = keep.to(tl.int32)
    dest = base + tl.cumsum(k32, axis=0) - k32
    tl.store(cidx_ptr + dest, tl.minimum(t, num_tables - 1), mask=keep)  # out-of-range is flagged by the count
    tl.store(cpos_ptr + dest, offs, mask=keep)
    if WITH_SYM:
        tl.store(csym_ptr + dest, tl.load(sym_ptr + offs, mask=keep, other=0), mask=keep)
    if pid == 0:
        tl.store(ncoded_ptr, tl.sum(counts, axis=0))


@triton.jit
def _plan_lanes(n, cost_q16, bits_per_lane, forced, MAXL: tl.constexpr):
    """Format §6 layout policy on the device (same integer steps as the C++ plan_layout);
    ``forced`` > 0 overrides it (the caller checked it against the symbol count)."""
    want = tl.maximum((cost_q16 >> 16) // bits_per_lane, 1)
    lanes = tl.minimum(tl.minimum(want, n), MAXL)
    lanes = tl.where(lanes > 32, lanes - lanes % 32, lanes)
    lanes = tl.where(forced > 0, forced, lanes)
    return tl.where(n > 0, lanes, 0)


@triton.jit
def _lane_prefix(nb, esc, BALLOT: tl.constexpr):
    """Exclusive prefix and total over the lanes of nb + (esc << 8) (nb in 0..2, esc 0/1).

    Packing bytes and escapes into one int32 lets one scan serve both (at most 64
    bytes and 32 escapes per row).  With BALLOT the scan is three warp ballots and
    popcounts, valid only if element j lives in lane j alone (see ``BALLOT``); the
    asm is not pure (its result depends on the other lanes), so it is never hoisted
    or merged.
    """
    if BALLOT:
        excl, total = tl.inline_asm_elementwise(_PREFIX_PTX, "=r,=r,r,r", [nb, esc.to(tl.int32)],
                                                dtype=(tl.int32, tl.int32), is_pure=False, pack=1)
    else:
        packed = nb + (esc.to(tl.int32) << 8)
        excl = tl.cumsum(packed, axis=0) - packed
        total = tl.sum(packed, axis=0)
    return excl, total


@triton.jit
def _gather(ptr, off, CH: tl.constexpr, LANES: tl.constexpr):
    """tl.load(ptr + off) of a [CH, LANES] tile of data-dependent offsets, as one flat load.

    A 1-D gather gets one element per thread and lane, rows in registers, under every
    Triton seen (3.6, 3.9), and the reshape keeps it: the tile's rows are then one
    element per lane.  A 2-D gather's layout depends on how the version orders its two
    equally non-contiguous axes (see the module docstring)."""
    return tl.reshape(tl.load(ptr + tl.reshape(off, [CH * LANES])), [CH, LANES])


@triton.jit
def _row(tile, sel):
    """Row `sel` ([CH, 1] one-hot) of a [CH, LANES] tile, as a [LANES] vector."""
    return tl.sum(tl.where(sel, tile, 0), axis=0)


@triton.jit(do_not_specialize=["num_chunks", "bits_per_lane", "forced", "width"])
def _encode_kernel(csym_ptr, cidx_ptr, ncoded_ptr, costsum_ptr, num_chunks, bits_per_lane, forced,
                   start_ptr, freq_ptr, rcp_ptr, len_ptr, off_ptr, width,
                   scratch_ptr, escbuf_ptr, meta_ptr,
                   CH: tl.constexpr, LANES: tl.constexpr, CBLOCK: tl.constexpr, MAXL: tl.constexpr,
                   BALLOT: tl.constexpr):
    """Encodes lane group g into scratch[(g + 1) * cap - size, (g + 1) * cap), writing backward.

    meta[g] = (first byte, byte count incl. final states, first escape, escape count).
    """
    g = tl.program_id(0)
    n = tl.load(ncoded_ptr).to(tl.int64)
    c = tl.arange(0, CBLOCK)
    cost = tl.sum(tl.load(costsum_ptr + c, mask=c < num_chunks, other=0), axis=0)
    P = _plan_lanes(n, cost, bits_per_lane, forced, MAXL)
    G = (P + 31) // 32
    if g < G:
        W = P // G
        lane = tl.arange(0, LANES)
        active = lane < W
        l0 = g * W
        rows_max = (n + P - 1) // P
        rows = (n - l0 + P - 1) // P
        cap = 2 * rows_max * W + 4 * W
        region_end = ((g + 1) * cap).to(tl.int32)
        # positions are vectors (the ballot scan's totals are per lane) and, like the
        # state, 32-bit: int64 would double the instructions on the serial path
        wp = tl.zeros([LANES], tl.int32) + region_end
        esc_end = ((g + 1) * rows_max * W).to(tl.int32)
        ep = tl.zeros([LANES], tl.int32) + esc_end
        x = tl.full([LANES], STATE_LOW, tl.uint32)
        ch = tl.arange(0, CH)
        nchunks = (rows + CH - 1) // CH
        # the next chunk's inputs are loaded one chunk ahead, so their latency overlaps a chunk of rows
        r = (nchunks - 1) * CH + ch
        i = r[:, None] * P + l0 + lane[None, :]
        ok = active[None, :] & (i < n)
        t_next = tl.load(cidx_ptr + i, mask=ok, other=0)
        s_next = tl.load(csym_ptr + i, mask=ok, other=0)
        for kk in range(0, nchunks):
            r = (nchunks - 1 - kk) * CH + ch
            i = r[:, None] * P + l0 + lane[None, :]
            ok = active[None, :] & (i < n)
            t = t_next
            s = s_next
            i_next = i - CH * P
            ok_next = active[None, :] & (r[:, None] >= CH) & (i_next < n)
            t_next = tl.load(cidx_ptr + i_next, mask=ok_next, other=0)
            s_next = tl.load(csym_ptr + i_next, mask=ok_next, other=0)
            esc_slot = _gather(len_ptr, t, CH, LANES) - 2
            v = s.to(tl.int64) - _gather(off_ptr, t, CH, LANES)
            is_esc = (v < 0) | (v >= esc_slot)
            slot = tl.where(is_esc, esc_slot, v)
            start_t = _gather(start_ptr, t * width + slot, CH, LANES).to(tl.uint32)
            freq_t = _gather(freq_ptr, t * width + slot, CH, LANES).to(tl.uint32)
            rcp_t = _gather(rcp_ptr, t * width + slot, CH, LANES)
            flags_t = ok.to(tl.int32) + 2 * (ok & is_esc).to(tl.int32)
            for cc in tl.static_range(CH):
                sel = (ch == CH - 1 - cc)[:, None]
                flags = _row(flags_t, sel)
                valid = (flags & 1) != 0
                esc = (flags & 2) != 0
                f = _row(freq_t, sel)
                x_max = f << 16
                e1 = valid & (x >= x_max)
                x1 = tl.where(e1, x >> 8, x)
                e2 = valid & (x1 >= x_max)
                nb = e1.to(tl.int32) + e2.to(tl.int32)
                excl, total = _lane_prefix(nb, esc, BALLOT)
                nbytes = total & 0xFF
                p = wp - nbytes + (excl & 0xFF)
                tl.store(scratch_ptr + p, tl.where(e2, (x >> 8) & 0xFF, x & 0xFF).to(tl.uint8), mask=e1)
                tl.store(scratch_ptr + p + 1, (x & 0xFF).to(tl.uint8), mask=e2)
                wp = wp - nbytes
                nesc = total >> 8
                ep = ep - nesc
                tl.store(escbuf_ptr + ep + (excl >> 8), _row(s, sel), mask=esc)
                x2 = tl.where(e2, x1 >> 8, x1)
                q = (x2.to(tl.float32) * _row(rcp_t, sel)).to(tl.uint32)
                rem = (x2 - q * f).to(tl.int32, bitcast=True)  # |rem| < 2 f: the estimate is within 1
                fi = f.to(tl.int32)
                q = tl.where(rem < 0, q - 1, tl.where(rem >= fi, q + 1, q))
                rem = tl.where(rem < 0, rem + fi, tl.where(rem >= fi, rem - fi, rem))
                x = tl.where(valid, (q << 16) + rem.to(tl.uint32) + _row(start_t, sel), x)
        first = tl.max(wp, axis=0) - 4 * W
        for k in tl.static_range(4):
            tl.store(scratch_ptr + first + 4 * lane + k, ((x >> (8 * k)) & 0xFF).to(tl.uint8), mask=active)
        esc_first = tl.max(ep, axis=0)
        tl.store(meta_ptr + 4 * g, first)
        tl.store(meta_ptr + 4 * g + 1, region_end - first)
        tl.store(meta_ptr + 4 * g + 2, esc_first)
        tl.store(meta_ptr + 4 * g + 3, esc_end - esc_first)


@triton.jit(do_not_specialize=["num_chunks", "bits_per_lane", "forced"])
def _pack_kernel(ncoded_ptr, costsum_ptr, bad_ptr, num_chunks, bits_per_lane, forced, scratch_ptr, escbuf_ptr, meta_ptr,
                 out_ptr, CBLOCK: tl.constexpr, GB: tl.constexpr, MAXL: tl.constexpr, COPY: tl.constexpr):
    """Writes out = u32 size | header | groups | escapes; program g copies group g.

    Every program derives the header length and its own offsets from meta, so no
    program waits for another.  The size is 0xFFFFFFFF when a table index was out of range
    or a forced lane count exceeds the coded symbols.
    """
    g = tl.program_id(0)
    n = tl.load(ncoded_ptr).to(tl.int64)
    c = tl.arange(0, CBLOCK)
    cost = tl.sum(tl.load(costsum_ptr + c, mask=c < num_chunks, other=0), axis=0)
    bad = tl.sum(tl.load(bad_ptr + c, mask=c < num_chunks, other=0), axis=0)
    P = _plan_lanes(n, cost, bits_per_lane, forced, MAXL)
    G = (P + 31) // 32
    W = tl.where(G > 0, P // tl.maximum(G, 1), 0)
    # header fields: n, P, then (bytes_g, esc_g) per group
    k = tl.arange(0, 2 * GB)
    grp = tl.maximum(k - 2, 0) // 2
    in_meta = (k >= 2) & (grp < G)
    m = tl.load(meta_ptr + 4 * grp + 1 + 2 * (k % 2), mask=in_meta, other=0)  # k % 2 == (k - 2) % 2, k >= 0
    m = tl.where(in_meta & (k % 2 == 0), m - 4 * W, m)
    value = tl.where(k == 0, n, tl.where(k == 1, P, m))
    used = (k == 0) | ((n > 0) & ((k == 1) | in_meta))
    size = 1 + (value >= 128).to(tl.int64) + (value >= 16384).to(tl.int64) + (value >= 2097152).to(tl.int64) \
        + (value >= 268435456).to(tl.int64)
    size = tl.where(used, size, 0)
    pos = 1 + tl.cumsum(size, axis=0) - size
    header = 3 + tl.sum(size, axis=0)
    # group offsets: bytes (incl. final states) and escapes before group g
    gk = tl.arange(0, GB)
    gbytes = tl.load(meta_ptr + 4 * gk + 1, mask=gk < G, other=0)
    gesc = tl.load(meta_ptr + 4 * gk + 3, mask=gk < G, other=0)
    total_bytes = tl.sum(gbytes, axis=0)
    total = header + total_bytes + 4 * tl.sum(gesc, axis=0)
    if g == 0:
        check = 0xB6
        tl.store(out_ptr + 4, tl.full([], 0xB6, tl.uint8))
        for b in tl.static_range(5):
            byte = (value >> (7 * b)) & 0x7F
            byte = tl.where(b < size - 1, byte | 0x80, byte)
            live = b < size
            tl.store(out_ptr + 4 + pos + b, byte.to(tl.uint8), mask=live)
            check += tl.sum(tl.where(live, (pos + b + 1) * byte, 0), axis=0)
        check = check % 65521
        tl.store(out_ptr + 4 + header - 2, (check & 0xFF).to(tl.uint8))
        tl.store(out_ptr + 4 + header - 1, (check >> 8).to(tl.uint8))
        # the C++ coder refuses these: an index outside the tables, more lanes than coded symbols
        reported = tl.where((bad > 0) | ((n > 0) & (forced > n)), -1, total)
        for b in tl.static_range(4):
            tl.store(out_ptr + b, ((reported >> (8 * b)) & 0xFF).to(tl.uint8))
    if g < G:
        boff = 4 + header + tl.sum(tl.where(gk < g, gbytes, 0), axis=0)
        eoff = 4 + header + total_bytes + 4 * tl.sum(tl.where(gk < g, gesc, 0), axis=0)
        first = tl.load(meta_ptr + 4 * g)
        count = tl.load(meta_ptr + 4 * g + 1)
        j = tl.arange(0, COPY)
        for o in range(0, count, COPY):
            live = o + j < count
            tl.store(out_ptr + boff + o + j, tl.load(scratch_ptr + first + o + j, mask=live), mask=live)
        efirst = tl.load(meta_ptr + 4 * g + 2)
        ecount = tl.load(meta_ptr + 4 * g + 3)
        for o in range(0, ecount, COPY):
            live = o + j < ecount
            value32 = tl.load(escbuf_ptr + efirst + o + j, mask=live, other=0).to(tl.int64) & 0xFFFFFFFF
            for b in tl.static_range(4):
                tl.store(out_ptr + eoff + 4 * (o + j) + b, ((value32 >> (8 * b)) & 0xFF).to(tl.uint8), mask=live)


@triton.jit
def _below(j, m):
    """0 <= j < m (m >= 0) as one unsigned comparison: a negative j wraps above every m."""
    return j.to(tl.uint32, bitcast=True) < m.to(tl.uint32, bitcast=True)


@triton.jit(do_not_specialize=["n", "P", "W"])
def _decode_kernel(data_ptr, esc_ptr, state_ptr, cidx_ptr, cpos_ptr, ncoded_ptr, lut_ptr, sub_ptr, len_ptr, off_ptr,
                   out_ptr, n, P, W, CH: tl.constexpr, LANES: tl.constexpr, BALLOT: tl.constexpr):
    """Decodes group g's part of the next segment (the ncoded coded symbols that follow
    those decoded so far) into out[position of each], resuming from and saving the
    group's state row (``_STATE_WORDS``), whose END word flags any inconsistency if the
    stream ended here.

    Every load is masked to the segment's symbols, the stream's n and the group's own
    bytes and escapes, so corrupt input or a segment asking for more symbols than remain
    can only produce wrong symbols and an error flag, never an out-of-bounds access.
    """
    g = tl.program_id(0)
    st = state_ptr + g * _STATE_WORDS
    lane = tl.arange(0, LANES)
    active = lane < W
    first = tl.load(st + _NEXT)  # coded symbols before the segment
    m = tl.minimum(tl.load(ncoded_ptr), n - first)  # asking for more than remain is flagged by the host's count
    be = tl.load(st + _BE)
    ee = tl.load(st + _EE)
    x = tl.load(st + _X + lane, mask=active, other=0).to(tl.uint32, bitcast=True)
    # positions are vectors (the ballot scan's totals are per lane) and, like the state,
    # 32-bit: int64 would double the instructions on the serial path
    rp = tl.zeros([LANES], tl.int32) + tl.load(st + _RP)
    ep = tl.zeros([LANES], tl.int32) + tl.load(st + _EP)
    bad = tl.zeros([LANES], tl.int32)
    ch = tl.arange(0, CH)
    # coded symbol r * P + g * W + lane is the segment's symbol j = r * P + g * W + lane - first;
    # the rows run from the one holding the segment's first symbol (a segment may start
    # or end mid-row), and the loop steps j at lane 0 of a chunk's first row
    tile = ch[:, None] * P + lane[None, :]
    j_begin = (first // P) * P + g * W - first
    j_end = ((first + m + P - 1) // P) * P + g * W - first
    # the next chunk's indexes are loaded one chunk ahead, so their latency overlaps a chunk of rows
    ok = active[None, :] & _below(j_begin + tile, m)
    t_next = tl.load(cidx_ptr + j_begin + tile, mask=ok, other=0)
    dst_next = tl.load(cpos_ptr + j_begin + tile, mask=ok, other=0)
    for jc in range(j_begin, j_end, CH * P):
        j = jc + tile
        ok = active[None, :] & _below(j, m)
        t_t = t_next
        dst_t = dst_next
        j_next = j + CH * P
        ok_next = active[None, :] & _below(j_next, m)
        t_next = tl.load(cidx_ptr + j_next, mask=ok_next, other=0)
        dst_next = tl.load(cpos_ptr + j_next, mask=ok_next, other=0)
        lutbase_t = t_t * 256
        esc_slot_t = (_gather(len_ptr, t_t, CH, LANES) - 2).to(tl.int32)
        off_t = _gather(off_ptr, t_t, CH, LANES).to(tl.int32)
        ok_t = ok.to(tl.int32)
        for cc in tl.static_range(CH):
            sel = (ch == cc)[:, None]
            valid = _row(ok_t, sel) != 0
            slot = (x & 0xFFFF).to(tl.int32)
            e = tl.load(lut_ptr + _row(lutbase_t, sel) + (slot >> 8), mask=valid, other=0)
            e_lo = e.to(tl.int32)
            e_hi = (e >> 32).to(tl.int32)
            low = slot & 0xFF
            o = (e_lo >> 8) & 0xFF
            hi = (o != 0) & (low >= o)
            f0 = e_hi & 0xFFFF
            f1 = (e_hi >> 16) & 0xFFFF
            sub = valid & (f0 == 0)
            e2 = tl.load(sub_ptr + f1 * 256 + low, mask=sub, other=0)
            e2_lo = e2.to(tl.int32)
            sym = tl.where(sub, e2_lo & 0xFF, (e_lo & 0xFF) + hi.to(tl.int32))
            start = tl.where(sub, (e2_lo >> 8) & 0xFFFF, tl.where(hi, slot - low + o, (e_lo >> 16) & 0xFFFF))
            freq = tl.where(sub, (e2 >> 24).to(tl.int32) & 0xFFFF, tl.where(hi, f1, f0))
            xn = freq.to(tl.uint32) * (x >> 16) + (slot - start).to(tl.uint32)
            nb = tl.where(valid, (xn < STATE_LOW).to(tl.int32) + (xn < (STATE_LOW >> 8)).to(tl.int32), 0)
            esc_slot = _row(esc_slot_t, sel)
            is_esc = valid & (sym == esc_slot)
            excl, total = _lane_prefix(nb, is_esc, BALLOT)
            p = rp + (excl & 0xFF)
            b1 = tl.load(data_ptr + p, mask=(nb >= 1) & (p < be), other=0).to(tl.uint32)
            b2 = tl.load(data_ptr + p + 1, mask=(nb == 2) & (p + 1 < be), other=0).to(tl.uint32)
            bad = bad | ((nb >= 1) & (p + nb > be)).to(tl.int32)
            xn = tl.where(nb == 2, (xn << 16) | (b1 << 8) | b2, tl.where(nb == 1, (xn << 8) | b1, xn))
            x = tl.where(valid, xn, x)
            rp = rp + (total & 0xFF)
            pe = ep + (excl >> 8)
            value = tl.load(esc_ptr + pe, mask=is_esc & (pe < ee), other=0)
            off = _row(off_t, sel)
            inside = value.to(tl.int64) - off.to(tl.int64)  # int64: escapes span the whole int32 range
            bad = bad | (is_esc & ((pe >= ee) | ((inside >= 0) & (inside < esc_slot)))).to(tl.int32)
            tl.store(out_ptr + _row(dst_t, sel), tl.where(is_esc, value, sym + off), mask=valid)
            ep = ep + (total >> 8)
    rp_end = tl.max(rp, axis=0)
    ep_end = tl.max(ep, axis=0)
    flagged = tl.maximum(tl.load(st + _BAD), tl.max(bad, axis=0))
    unfinished = tl.max((active & (x != STATE_LOW)).to(tl.int32), axis=0) + (rp_end != be).to(tl.int32) \
        + (ep_end != ee).to(tl.int32)
    tl.store(st + _X + lane, x.to(tl.int32, bitcast=True), mask=active)
    tl.store(st + _RP, rp_end)
    tl.store(st + _EP, ep_end)
    tl.store(st + _NEXT, first + m)
    tl.store(st + _BAD, flagged)
    tl.store(st + _END, flagged + unfinished)


def _decode_tables(tables: CdfTables) -> tuple[np.ndarray, np.ndarray]:
    """lut [T * 256] and sub [256 * subtables], int64 (see the module docstring).

    lut entry of bucket b (slots [256 b, 256 b + 256)) with at most one slot boundary
    inside: k0 | o << 8 | start(k0) << 16 | freq(k0) << 32 | freq(k0 + 1) << 48, where k0
    is the slot containing 256 b and o the boundary's offset (0 = none); the symbol is
    k0 + (o != 0 and low byte >= o), and slot k0 + 1 starts at 256 b + o.  Otherwise
    freq(k0) reads 0 and bits 48.. hold the number of the bucket's sub-table, whose
    entry per slot is symbol | start << 8 | freq << 24.
    """
    num = tables.cdf.shape[0]
    lut = np.zeros(num * 256, np.int64)
    subtables = []
    lo = np.arange(256) << 8
    within = np.arange(256)
    for t in range(num):
        length = int(tables.cdf_length[t])
        cdf = tables.cdf[t, :length].astype(np.int64)
        inner = cdf[1:-1]
        counts = np.searchsorted(inner, lo + 256, side="left") - np.searchsorted(inner, lo, side="right")
        k0 = np.searchsorted(cdf, lo, side="right") - 1
        k1 = np.minimum(k0 + 1, length - 2)
        o = np.where(counts == 1, cdf[k0 + 1] - lo, 0)
        f1 = np.where(counts == 1, cdf[k1 + 1] - cdf[k1], 0)
        entry = k0 | (o << 8) | (cdf[k0] << 16) | ((cdf[k0 + 1] - cdf[k0]) << 32) | (f1 << 48)
        for b in np.flatnonzero(counts > 1):
            s = np.searchsorted(cdf, lo[b] + within, side="right") - 1
            subtables.append(s | (cdf[s] << 8) | ((cdf[s + 1] - cdf[s]) << 24))
            entry[b] = (len(subtables) - 1) << 48
        lut[t * 256: (t + 1) * 256] = entry
    if len(subtables) >= 1 << 15:
        raise ValueError("table set has too many multi-boundary buckets for the GPU decoder's lookup")
    sub = np.concatenate(subtables) if subtables else np.zeros(256, np.int64)
    return lut, sub


class TritonTables:
    """Device copies of a :class:`CdfTables` set with encoder and decoder lookup tables."""

    def __init__(self, tables: CdfTables, device: torch.device | str) -> None:
        _rans.Tables(tables.cdf, tables.cdf_length, tables.offset)  # same validation as the C++ coder
        self.device = torch.device(device)
        num, width = tables.cdf.shape
        self.num = num
        self.width = width
        cdf = tables.cdf.astype(np.int64)
        freq = np.diff(cdf, axis=1, append=cdf[:, -1:])
        freq = np.where(np.arange(width)[None, :] < tables.cdf_length[:, None] - 1, freq, 1)
        costs = _rans.freq_cost_table()
        rcp = (np.float32(1.0) / freq.astype(np.float32)).astype(np.float32)

        def put(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

        self.start = put(tables.cdf.astype(np.int32).reshape(-1))
        self.freq = put(freq.astype(np.int32).reshape(-1))
        self.rcp = put(rcp.reshape(-1))
        self.cost = put(costs[freq].astype(np.int32).reshape(-1))
        self.length = put(tables.cdf_length.astype(np.int64))
        self.offset = put(tables.offset.astype(np.int64))
        lut, sub = _decode_tables(tables)
        self.lut = put(lut)
        self.sub = put(sub)


def _pow2(v: int) -> int:
    return max(16, triton.next_power_of_2(max(1, v)))


def _max_groups(n_all: int, bits_per_lane: int) -> int:
    """Groups the policy can choose for at most n_all symbols of at most 16 bits each."""
    lanes = min(n_all, MAX_LANES, 16 * n_all // max(1, bits_per_lane))
    return max(1, -(-lanes // LANES))


def _counts(symbols, indexes, tables, with_cost):
    """Count and compact (``with_cost``: the encoder's symbols and costs too; the decoder
    passes its indexes as ``symbols`` and gets no ``csym``/``costsum`` buffers)."""
    n_all = indexes.numel()
    chunks = max(1, -(-n_all // COUNT_BLOCK))
    dev = tables.device
    counts = torch.empty(chunks, dtype=torch.int32, device=dev)
    bad = torch.empty(chunks, dtype=torch.int32, device=dev)
    costsum = torch.empty(chunks if with_cost else 1, dtype=torch.int64, device=dev)
    _count_kernel[(chunks,)](symbols, indexes, n_all, tables.num, tables.length, tables.offset,
                             tables.cost, tables.width, counts, costsum, bad, BLOCK=COUNT_BLOCK, WITH_COST=with_cost)
    csym = torch.empty(n_all + 1 if with_cost else 1, dtype=torch.int32, device=dev)
    cidx = torch.empty(n_all + 1, dtype=torch.int32, device=dev)
    cpos = torch.empty(n_all + 1, dtype=torch.int32, device=dev)
    ncoded = torch.empty(1, dtype=torch.int32, device=dev)
    _compact_kernel[(chunks,)](symbols, indexes, n_all, tables.num, counts, chunks, csym, cidx, cpos, ncoded,
                               BLOCK=COUNT_BLOCK, CBLOCK=_pow2(chunks), WITH_SYM=with_cost)
    return chunks, costsum, bad, csym, cidx, cpos, ncoded


def _int32_1d(name: str, t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """int32 ``t`` as a contiguous, 16-byte aligned vector on ``device`` (a view at an odd
    offset is copied: see ``_ALIGN``'s note), refused before any copy when it is longer
    than ``MAX_SYMBOLS``."""
    if t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D tensor")
    if t.dtype != torch.int32:  # a cast would round or wrap values into a valid stream
        raise ValueError(f"{name} must be int32, not {t.dtype}")
    if t.numel() >= MAX_SYMBOLS:
        raise ValueError(f"{name} holds {t.numel()} values; the Triton coder takes fewer than {MAX_SYMBOLS}")
    t = t.to(device=device).contiguous()
    return t if t.data_ptr() % _ALIGN == 0 else t.clone()


def _aligned(nbytes: int) -> int:
    return -(-nbytes // _ALIGN) * _ALIGN


class EncodeBuffers(NamedTuple):
    """Device tensors of one encode, stage by stage, so that a diagnostic
    (``scripts/triton_gpu_diag.py``) can tell which kernel first differs from the C++ coder."""

    ncoded: torch.Tensor  # [1]: coded symbols (count + compact kernels)
    csym: torch.Tensor  # coded symbols, densely (first ncoded entries)
    cidx: torch.Tensor  # their table indexes
    scratch: torch.Tensor  # encode kernel: group g's bytes at [meta[g, 0], meta[g, 0] + meta[g, 1])
    escbuf: torch.Tensor  # and its escapes at [meta[g, 2], meta[g, 2] + meta[g, 3])
    meta: torch.Tensor  # [groups, 4] int64
    out: torch.Tensor  # pack kernel: u32 size prefix | stream


def _host_bytes(size: int) -> torch.Tensor:
    """Pinned host bytes (pageable on CPU-only machines).  PyTorch's pinned-memory cache
    hands a block out again only after the asynchronous copies that used it have ended,
    so a buffer per call never waits on the device (a reused buffer would wait for its
    last upload, which queues behind every kernel before it)."""
    return torch.empty(size, dtype=torch.uint8, pin_memory=torch.cuda.is_available())


def _on(device: torch.device):
    """Make ``device`` current: Triton launches on the current device's current stream,
    whatever device the tensors are on."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


class TritonRans:
    """Encoder and decoder bound to one table set and device; reuses its host buffers."""

    def __init__(self, tables: CdfTables, device: torch.device | str,
                 bits_per_lane: int = _rans.DEFAULT_BITS_PER_LANE) -> None:
        self.tables = TritonTables(tables, device)
        self.device = self.tables.device
        if not 0 <= int(bits_per_lane) < 1 << 32:  # uint32 in the C++ coder
            raise ValueError("bits_per_lane must be in [0, 2^32)")
        # the C++ policy divides by max(1, bits_per_lane); the kernels must never divide by 0
        self.bits_per_lane = max(1, int(bits_per_lane))
        self._copy_guess = 1 << 16
        self.last_error: torch.Tensor | None = None

    def encode(self, symbols: torch.Tensor, indexes: torch.Tensor, lanes: int | None = None) -> bytes:
        """Stream of the symbols whose index is >= 0 (format 2, same bytes as the C++ coder).

        ``lanes`` forces P like :func:`ui2c.entropy.rans.encode`; more lanes than coded
        symbols raise ValueError (found on the device, reported after the copy).
        """
        return self._fetch(self.encode_device(symbols, indexes, lanes).out)

    def encode_device(self, symbols: torch.Tensor, indexes: torch.Tensor, lanes: int | None = None) -> EncodeBuffers:
        """Launches the encode kernels without synchronising; :meth:`encode` copies ``out``."""
        with _on(self.device):
            return self._encode_device(symbols, indexes, lanes)

    def _encode_device(self, symbols: torch.Tensor, indexes: torch.Tensor, lanes: int | None) -> EncodeBuffers:
        sym = _int32_1d("symbols", symbols, self.device)
        idx = _int32_1d("indexes", indexes, self.device)
        if sym.numel() != idx.numel():
            raise ValueError("symbols and indexes must have the same length")
        tb = self.tables
        n_all = idx.numel()
        if lanes is not None and lanes < 1:
            raise ValueError("lanes must be >= 1")  # as ui2c.entropy.rans.encode
        forced = int(lanes or 0)
        # as the C++ coder: with nothing to code, a forced count is moot (an empty stream)
        if forced and n_all and not (forced <= min(n_all, MAX_LANES) and (forced <= LANES or forced % LANES == 0)):
            raise ValueError("forced lane count must be 1..32 or a multiple of 32, at most the symbol count")
        chunks, costsum, bad, csym, cidx, _, ncoded = _counts(sym, idx, tb, True)
        groups = -(-forced // LANES) if forced else _max_groups(n_all, self.bits_per_lane)
        cap_bytes = 2 * n_all + 6 * min(n_all, MAX_LANES) + 64
        scratch = torch.empty(cap_bytes, dtype=torch.uint8, device=self.device)
        escbuf = torch.empty(n_all + min(n_all, MAX_LANES) + 1, dtype=torch.int32, device=self.device)
        meta = torch.zeros(groups, 4, dtype=torch.int64, device=self.device)
        kernel = _encode_kernel[(groups,)](csym, cidx, ncoded, costsum, chunks, self.bits_per_lane, forced,
                                           tb.start, tb.freq, tb.rcp, tb.length, tb.offset, tb.width,
                                           scratch, escbuf, meta, CH=CHUNK_ROWS, LANES=LANES, CBLOCK=_pow2(chunks),
                                           MAXL=MAX_LANES, BALLOT=BALLOT, num_warps=1)
        _check_lane_layout(kernel)
        out_cap = 4 + 16 + 10 * groups + 2 * n_all + 4 * groups * LANES + 4 * n_all
        out = torch.empty(out_cap, dtype=torch.uint8, device=self.device)
        _pack_kernel[(groups,)](ncoded, costsum, bad, chunks, self.bits_per_lane, forced, scratch, escbuf, meta, out,
                                CBLOCK=_pow2(chunks), GB=HEADER_GROUPS, MAXL=MAX_LANES, COPY=1024, num_warps=4)
        return EncodeBuffers(ncoded, csym, cidx, scratch, escbuf, meta, out)

    def _fetch(self, out: torch.Tensor) -> bytes:
        """The one device→host copy (plus a second only when the stream outgrew the guess)."""
        first = min(out.numel(), self._copy_guess)
        host = _host_bytes(first)
        host.copy_(out[:first], non_blocking=True)
        if out.is_cuda:
            torch.cuda.current_stream(out.device).synchronize()
        total = int.from_bytes(host[:4].numpy().tobytes(), "little")
        if total == _INVALID:
            raise ValueError(f"a cdf index is outside [0, {self.tables.num}), or the forced lane count "
                             "exceeds the number of coded symbols")
        # Twice the last size, decaying slowly from the largest seen: a reset unit's stream
        # after small inter units still fits the first copy.
        self._copy_guess = max(1 << 12, 2 * (total + 4), self._copy_guess - self._copy_guess // 16)
        if total + 4 <= first:
            return host[4: 4 + total].numpy().tobytes()
        return host[4:first].numpy().tobytes() + out[first: 4 + total].cpu().numpy().tobytes()

    def decoder(self, data: bytes, check: bool = True) -> TritonStreamDecoder:
        """A decoder of ``data`` that takes its coded symbols segment by segment
        (:class:`TritonStreamDecoder`).

        Header problems raise the C++ parser's typed errors here (the host holds the
        header, so parsing it costs no synchronisation); the payload is uploaded once.
        """
        return TritonStreamDecoder(self, data, check)

    def decode(self, data: bytes, indexes: torch.Tensor, check: bool = True) -> torch.Tensor:
        """int32 symbols of len(indexes) on the device, 0 where indexes < 0: the whole
        stream as one segment.

        With ``check`` a failed consistency check raises ``CorruptStreamError`` (one
        synchronisation); without, the error flags stay on the device in ``last_error``
        (an int32 scalar, nonzero means corrupt).  More coded symbols in the header than
        indexes raise at once, since the host sees it.
        """
        stream = self.decoder(data, check)
        if stream.n > indexes.numel():
            raise CorruptStreamError(f"rANS stream holds {stream.n} symbols but only {indexes.numel()} indexes were "
                                     "given (do the skip masks differ?)")
        out = stream.next(indexes)
        stream.finish()
        return out


def _upload_stream(data: bytes, header_bytes: int, byte_begin: list[int], esc_begin: list[int],
                   width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(state rows [groups, _STATE_WORDS], payload bytes, escapes) on ``device`` in one copy.

    The rows start as the format's decoder does: each lane's state from the group's first
    4 W bytes, the cursors just past them and at the group's first escape.  Each part is
    16-byte aligned (see ``_ALIGN``)."""
    groups, words = len(byte_begin) - 1, _STATE_WORDS.value
    payload, nesc = byte_begin[-1], esc_begin[-1]
    data_at = _aligned(4 * words * groups)
    esc_at = _aligned(data_at + payload)
    host = _host_bytes(esc_at + 4 * max(nesc, 1))
    hv = host.numpy()
    hv[data_at: data_at + payload] = np.frombuffer(data, np.uint8, payload, header_bytes)
    hv[esc_at: esc_at + 4 * nesc] = np.frombuffer(data, np.uint8, 4 * nesc, header_bytes + payload)
    rows = hv[: 4 * words * groups].view(np.int32).reshape(groups, words)
    rows[:] = 0
    bb, eb = np.asarray(byte_begin), np.asarray(esc_begin)
    rows[:, _RP.value], rows[:, _EP.value] = bb[:-1] + 4 * width, eb[:-1]
    rows[:, _BE.value], rows[:, _EE.value] = bb[1:], eb[1:]
    state_bytes = data_at + bb[:-1, None, None] + 4 * np.arange(width)[None, :, None] + np.arange(4)
    rows[:, _X.value: _X.value + width] = hv[state_bytes].view("<i4")[..., 0]
    dev = host.to(device, non_blocking=True)
    state = dev[: 4 * words * groups].view(torch.int32).view(groups, words)
    return state, dev[data_at:], dev[esc_at:].view(torch.int32)


class TritonStreamDecoder:
    """Decodes one stream in consecutive segments of its coded symbols.

    The runtime codes a unit's two latent steps as one stream, but knows step 1's table
    indexes only after step 0's symbols are decoded (the spatial prior needs them).  A
    segment's coded-symbol count is only known on the device, so where the next segment
    starts lives there too, with the lane states and cursors (``_STATE_WORDS``): a
    segment is a count/compact and one decode launch, without synchronising.  Bytes of a
    group are in row order, lanes increasing, so a segment may end anywhere, mid-row
    included: the next one resumes at the following lane with the same cursors.
    """

    def __init__(self, coder: TritonRans, data: bytes, check: bool) -> None:
        self.n, self._lanes, header_bytes, byte_begin, esc_begin = _rans.parse_header(data, -1)
        if self.n > MAX_STREAM_SYMBOLS:
            raise CorruptStreamError(f"rANS stream announces {self.n} symbols; the Triton decoder takes at most "
                                     f"{MAX_STREAM_SYMBOLS}")
        self._coder, self._check = coder, check
        self._groups = len(byte_begin) - 1
        self._width = self._lanes // max(1, self._groups)
        dev = coder.device
        self._state, self._payload, self._escapes = _upload_stream(data, header_bytes, byte_begin, esc_begin,
                                                                   self._width, dev)
        self._coded = torch.zeros(1, dtype=torch.int64, device=dev)  # coded symbols the segments asked for
        self._bad = torch.zeros(1, dtype=torch.int64, device=dev)  # indexes outside the tables among them

    def next(self, indexes: torch.Tensor) -> torch.Tensor:
        """int32 symbols of the next segment: len(indexes) positions, 0 where indexes < 0
        (skipped, not in the stream); the others are the stream's next coded symbols.
        A segment asking for more than remain decodes those left and is caught by finish."""
        with _on(self._coder.device):
            return self._next(indexes)

    def _next(self, indexes: torch.Tensor) -> torch.Tensor:
        tb = self._coder.tables
        idx = _int32_1d("indexes", indexes, tb.device)
        out = torch.zeros(idx.numel(), dtype=torch.int32, device=tb.device)
        _, _, bad, _, cidx, cpos, ncoded = _counts(idx, idx, tb, False)
        self._coded += ncoded
        self._bad += bad.sum()
        if self._groups:  # an empty stream has nothing to decode; finish checks that no segment asked for symbols
            kernel = _decode_kernel[(self._groups,)](self._payload, self._escapes, self._state, cidx, cpos, ncoded,
                                                     tb.lut, tb.sub, tb.length, tb.offset, out,
                                                     self.n, self._lanes, self._width,
                                                     CH=CHUNK_ROWS, LANES=LANES, BALLOT=BALLOT, num_warps=1)
            _check_lane_layout(kernel)
        return out

    def finish(self) -> None:
        """Final consistency: every coded symbol taken, exactly, every lane back at L, every
        group at the end of its bytes and escapes, no index outside the tables.  Sets the
        coder's ``last_error`` (device int32 scalar, nonzero means corrupt); with ``check``
        synchronises once and raises ``CorruptStreamError`` (ValueError for a bad index)."""
        err = ((self._coded != self.n).sum() + self._bad.sum() + self._state[:, _END.value].sum()).to(torch.int32)
        self._coder.last_error = err
        if self._check and int(err) != 0:
            if int(self._bad) != 0:
                raise ValueError(f"a cdf index is outside [0, {self._coder.tables.num})")
            raise CorruptStreamError("rANS stream failed its consistency checks on the device (corrupt data, "
                                     "segments that do not add up to its symbols, or do the skip masks differ?)")
