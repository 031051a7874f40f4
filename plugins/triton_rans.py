"""Triton GPU coder for the interleaved rANS format (``entropy/csrc/rans_format.hpp``).

One program per block, vectorized over its (up to) 32 lanes: a row of symbols is one
vector step, and the lane-ordered word positions come from an exclusive prefix sum
of the renormalisation flags, so the streams are byte-identical to the C++ coder.
Headers are packed and parsed by the C++ extension, so the format has one
implementation of its header.  On a machine without a GPU the kernels run in
Triton's interpreter when ``TRITON_INTERPRET=1`` is set before importing this module.
"""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from ui2c.entropy import _rans
from ui2c.entropy.tables import CdfTables
from ui2c.errors import CorruptStreamError

LANES = 32  # vector width of a program: the format's maximum lane count
STATE_LOW = 1 << 16


@triton.jit
def rans_encode_kernel(start_ptr, freq_ptr, out_ptr, first_ptr, n, per_block, lanes, cap,
                       LANES: tl.constexpr):
    """Encodes block b into out[b * cap, (b + 1) * cap), writing backward from the end.

    first[b] receives the position of the block's first word (its lane-0 state).
    """
    b = tl.program_id(0)
    lane = tl.arange(0, LANES)
    lo = b * per_block
    count = tl.minimum(per_block, n - lo)
    rows = (count + lanes - 1) // lanes
    active = lane < lanes
    x = tl.full([LANES], 65536, tl.int64)
    wp = (b + 1) * cap
    for i in range(0, rows):
        j = (rows - 1 - i) * lanes + lane
        valid = active & (j < count)
        f = tl.load(freq_ptr + lo + j, mask=valid, other=1).to(tl.int64)
        s = tl.load(start_ptr + lo + j, mask=valid, other=0).to(tl.int64)
        emit = valid & (x >= (f << 16))
        e32 = emit.to(tl.int32)
        cnt = tl.sum(e32, axis=0)
        pos = wp - cnt + tl.cumsum(e32, axis=0) - e32
        tl.store(out_ptr + pos, (x & 0xFFFF).to(tl.int32), mask=emit)
        wp = wp - cnt
        x = tl.where(emit, x >> 16, x)
        x = tl.where(valid, ((x // f) << 16) + (x % f) + s, x)
    base = wp - 2 * lanes
    tl.store(out_ptr + base + 2 * lane, (x & 0xFFFF).to(tl.int32), mask=active)
    tl.store(out_ptr + base + 2 * lane + 1, (x >> 16).to(tl.int32), mask=active)
    tl.store(first_ptr + b, base)


@triton.jit
def rans_decode_kernel(words_ptr, word_begin_ptr, esc_ptr, esc_begin_ptr, idx_ptr, cdf_ptr, len_ptr, off_ptr,
                       out_ptr, err_ptr, n, per_block, lanes, width,
                       LANES: tl.constexpr, WIDTH: tl.constexpr):
    """Decodes block b; err[b] is nonzero when any consistency check fails.

    Every load is masked to the block's own words and escapes, so corrupt input can
    only produce wrong symbols and an error flag, never an out-of-bounds access.
    """
    b = tl.program_id(0)
    lane = tl.arange(0, LANES)
    k = tl.arange(0, WIDTH)
    lo = b * per_block
    count = tl.minimum(per_block, n - lo)
    rows = (count + lanes - 1) // lanes
    active = lane < lanes
    wb = tl.load(word_begin_ptr + b)
    we = tl.load(word_begin_ptr + b + 1)
    ep = tl.load(esc_begin_ptr + b)
    ee = tl.load(esc_begin_ptr + b + 1)
    x = tl.load(words_ptr + wb + 2 * lane, mask=active, other=0).to(tl.int64)
    x = x | (tl.load(words_ptr + wb + 2 * lane + 1, mask=active, other=0).to(tl.int64) << 16)
    rp = wb + 2 * lanes
    bad = tl.zeros([LANES], tl.int32)
    for r in range(0, rows):
        j = r * lanes + lane
        valid = active & (j < count)
        t = tl.load(idx_ptr + lo + j, mask=valid, other=0).to(tl.int64)
        length = tl.load(len_ptr + t, mask=valid, other=3)
        slot = x & 0xFFFF
        row = cdf_ptr + t * width
        inner = (k[None, :] >= 1) & (k[None, :] < length[:, None] - 1) & valid[:, None]
        c = tl.load(row[:, None] + k[None, :], mask=inner, other=65537)
        sym = tl.sum((c <= slot[:, None]).to(tl.int32), axis=1)
        start = tl.load(row + sym, mask=valid, other=0).to(tl.int64)
        end = tl.load(row + sym + 1, mask=valid, other=1).to(tl.int64)
        x = tl.where(valid, (end - start) * (x >> 16) + slot - start, x)
        need = valid & (x < 65536)
        n32 = need.to(tl.int32)
        pos = rp + tl.cumsum(n32, axis=0) - n32
        bad = bad | (need & (pos >= we)).to(tl.int32)
        w = tl.load(words_ptr + pos, mask=need & (pos < we), other=0).to(tl.int64)
        x = tl.where(need, (x << 16) | w, x)
        rp = rp + tl.sum(n32, axis=0)
        escape_slot = length - 2
        is_esc = valid & (sym == escape_slot)
        e32 = is_esc.to(tl.int32)
        epos = ep + tl.cumsum(e32, axis=0) - e32
        bad = bad | (is_esc & (epos >= ee)).to(tl.int32)
        value = tl.load(esc_ptr + epos, mask=is_esc & (epos < ee), other=0)
        off = tl.load(off_ptr + t, mask=valid, other=0)
        inside = value.to(tl.int64) - off
        bad = bad | (is_esc & (inside >= 0) & (inside < escape_slot)).to(tl.int32)
        tl.store(out_ptr + lo + j, tl.where(is_esc, value, sym + off), mask=valid)
        ep = ep + tl.sum(e32, axis=0)
    bad = bad | (active & (x != 65536)).to(tl.int32)
    tl.store(err_ptr + b, tl.sum(bad, axis=0) + (rp != we).to(tl.int32) + (ep != ee).to(tl.int32))


class TritonTables:
    """Device copies of a :class:`CdfTables` set (build once, reuse for every call)."""

    def __init__(self, tables: CdfTables, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.cdf = torch.from_numpy(tables.cdf).to(self.device)
        self.length = torch.from_numpy(tables.cdf_length).to(self.device)
        self.offset = torch.from_numpy(tables.offset).to(self.device)
        self.width = int(tables.cdf.shape[1])
        self.cost = torch.from_numpy(_rans.freq_cost_table()).to(self.device)


def _check_layout(n: int, nblocks: int, lanes: int) -> None:
    per_block = -(-n // nblocks)
    if not (1 <= nblocks <= n and -(-n // per_block) == nblocks and 1 <= lanes <= LANES):
        raise ValueError("forced layout must have nblocks = ceil(n / ceil(n / nblocks)) and 1..32 lanes")


def encode(symbols: torch.Tensor, cdf_indexes: torch.Tensor, tables: TritonTables,
           *, bits_per_lane: int = _rans.DEFAULT_BITS_PER_LANE, layout: tuple[int, int] | None = None) -> bytes:
    """GPU twin of :func:`ui2c.entropy.rans.encode` (same bytes for the same arguments)."""
    sym = symbols.to(tables.device, torch.int32).reshape(-1)
    idx = cdf_indexes.to(tables.device, torch.int64).reshape(-1)
    n = sym.numel()
    if idx.numel() != n:
        raise ValueError("symbols and cdf_indexes must have the same length")
    if n and (int(idx.min()) < 0 or int(idx.max()) >= tables.cdf.shape[0]):
        raise ValueError("cdf index outside the table set")
    escape_slot = tables.length[idx].long() - 2
    v = sym.long() - tables.offset[idx]
    is_esc = (v < 0) | (v >= escape_slot)
    slot = torch.where(is_esc, escape_slot, v)
    start = tables.cdf[idx, slot]
    freq = tables.cdf[idx, slot + 1] - start
    if layout is None:
        nblocks, lanes = _rans.plan_layout(n, int(tables.cost[freq.long()].sum()), bits_per_lane)
    else:
        nblocks, lanes = layout
        _check_layout(n, nblocks, lanes)
    if n == 0:
        return _rans.pack_header(0, 0, 0, [], [])
    per_block = -(-n // nblocks)
    cap = per_block + 2 * lanes
    out = torch.zeros(nblocks * cap, dtype=torch.int32, device=tables.device)
    first = torch.empty(nblocks, dtype=torch.int32, device=tables.device)
    rans_encode_kernel[(nblocks,)](start.contiguous(), freq.contiguous(), out, first, n, per_block, lanes, cap,
                                   LANES=LANES)
    block_of = torch.arange(nblocks * cap, device=tables.device) // cap
    words = out[torch.arange(nblocks * cap, device=tables.device) >= first.long()[block_of]]
    block_end = torch.arange(1, nblocks + 1, device=tables.device) * cap
    word_counts = (block_end - first.long() - 2 * lanes).tolist()
    esc_counts = torch.bincount(torch.nonzero(is_esc).reshape(-1) // per_block, minlength=nblocks).tolist()
    header = _rans.pack_header(n, nblocks, lanes, word_counts, esc_counts)
    payload = words.cpu().numpy().astype("<u2").tobytes()
    return header + payload + sym[is_esc].cpu().numpy().astype("<i4").tobytes()


def decode(data: bytes, cdf_indexes: torch.Tensor, tables: TritonTables) -> torch.Tensor:
    """GPU twin of :func:`ui2c.entropy.rans.decode`; returns int32 symbols on the device.

    Header problems raise the same typed errors as the CPU decoder (it parses the
    header); failed block checks raise ``CorruptStreamError``.
    """
    idx = cdf_indexes.to(tables.device, torch.int32).reshape(-1)
    n = idx.numel()
    if n and (int(idx.min()) < 0 or int(idx.max()) >= tables.cdf.shape[0]):
        raise ValueError("cdf index outside the table set")
    nblocks, lanes, header_bytes, word_begin, esc_begin = _rans.parse_header(data, n)
    out = torch.empty(n, dtype=torch.int32, device=tables.device)
    if n == 0:
        return out
    body = np.frombuffer(data, dtype=np.uint8, offset=header_bytes)
    words = torch.from_numpy(body[: 2 * word_begin[-1]].view("<u2").astype(np.int32)).to(tables.device)
    escapes = torch.from_numpy(body[2 * word_begin[-1]:].view("<i4").astype(np.int32)).to(tables.device)
    if escapes.numel() == 0:
        escapes = torch.zeros(1, dtype=torch.int32, device=tables.device)  # keep a valid pointer
    err = torch.zeros(nblocks, dtype=torch.int32, device=tables.device)
    rans_decode_kernel[(nblocks,)](
        words, torch.tensor(word_begin, dtype=torch.int64, device=tables.device), escapes,
        torch.tensor(esc_begin, dtype=torch.int64, device=tables.device), idx, tables.cdf, tables.length,
        tables.offset, out, err, n, -(-n // nblocks), lanes, tables.width,
        LANES=LANES, WIDTH=triton.next_power_of_2(tables.width))
    bad = torch.nonzero(err).reshape(-1)
    if bad.numel():
        raise CorruptStreamError(f"rANS block {int(bad[0])} failed its consistency checks")
    return out


def encode_masked(symbols: torch.Tensor, indexes: torch.Tensor, tables: TritonTables) -> bytes:
    """:func:`encode` of the symbols whose index is >= 0 (the seam's skip convention)."""
    keep = indexes >= 0
    return encode(symbols[keep], indexes[keep], tables)


def decode_masked(data: bytes, indexes: torch.Tensor, tables: TritonTables) -> torch.Tensor:
    """:func:`decode` into a full-length tensor with 0 where ``indexes < 0``."""
    keep = indexes >= 0
    out = torch.zeros(indexes.shape, dtype=torch.int32, device=tables.device)
    out[keep] = decode(data, indexes[keep], tables)
    return out
