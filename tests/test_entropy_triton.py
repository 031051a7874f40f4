"""Triton coder versus the C++ coder: identical bytes and symbols.

Runs in Triton's interpreter where torch sees no CUDA device, else the compiled kernels
(conftest.py sets TRITON_INTERPRET accordingly unless it is set already).  Interpreted rows are slow, so the
streams here use many lanes to keep the rows per lane few.  Golden streams come from
the C++ coder; scripts/triton_gpu_diag.py (tested at the end) localises a mismatch.
"""
import collections
import importlib.util
import inspect
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("triton")

from test_entropy_helpers import INT32_MAX, INT32_MIN, gaussian, random_symbols
from ui2c.entropy import rans
from ui2c.entropy.tables import CdfTables
from ui2c.errors import CorruptStreamError, TruncatedStreamError, UnsupportedVersionError
from ui2c.plugins import triton_layout, triton_rans

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cuda" if torch.cuda.is_available() and not INTERPRET else "cpu"


@pytest.fixture(scope="module")
def coder():
    return triton_rans.TritonRans(gaussian(), DEVICE)


def check_both_ways(sym, idx, coder, lanes=None, tables=None):
    tables = tables or gaussian()
    cpu_bytes = rans.encode(sym, idx, tables, lanes=lanes)
    gpu_bytes = coder.encode(torch.from_numpy(sym), torch.from_numpy(idx), lanes=lanes)
    assert gpu_bytes == cpu_bytes
    decoded = coder.decode(cpu_bytes, torch.from_numpy(idx).to(DEVICE))
    np.testing.assert_array_equal(decoded.cpu().numpy(), sym)
    return cpu_bytes


@pytest.mark.parametrize("n,lanes", [(40, 1), (300, 7), (700, 32), (2000, 64), (3000, 96), (90, None)])
def test_random_with_escapes(n, lanes, coder):
    rng = np.random.default_rng(n)
    sym, idx = random_symbols(rng, n, escape_rate=0.05)
    check_both_ways(sym, idx, coder, lanes)


def test_policy_chooses_several_groups():
    """Wide scales and a small bits_per_lane make the device policy pick 5 groups."""
    rng = np.random.default_rng(4)
    sym, idx = random_symbols(rng, 3000, escape_rate=0.01, lo=100)
    small = triton_rans.TritonRans(gaussian(), DEVICE, bits_per_lane=64)
    cpu_bytes = rans.encode(sym, idx, gaussian(), bits_per_lane=64)
    assert rans._rans.parse_header(cpu_bytes)[1] == 160
    assert small.encode(torch.from_numpy(sym), torch.from_numpy(idx)) == cpu_bytes


def test_realistic_low_rate(coder):
    """Mostly near-certain symbols at small scale indexes, as in a 1080p latent step."""
    rng = np.random.default_rng(8)
    sym, idx = random_symbols(rng, 4000, escape_rate=0.0, hi=40)
    check_both_ways(sym, idx, coder, lanes=128)
    check_both_ways(sym, idx, coder, lanes=3)


def test_streams_past_the_first_copy_and_the_guess_after_them():
    """The first device→host copy is sized from earlier streams; a longer stream takes a
    second copy of its tail, and a short stream after a long one keeps the guess high."""
    rng = np.random.default_rng(12)
    sym, idx = random_symbols(rng, 3000, escape_rate=0.05, lo=100)
    fresh = triton_rans.TritonRans(gaussian(), DEVICE)
    fresh._copy_guess = 1 << 12
    long_bytes = check_both_ways(sym, idx, fresh, lanes=64)
    assert len(long_bytes) > 1 << 12
    short = np.zeros(64, np.int32)
    check_both_ways(short, short, fresh, lanes=64)
    assert fresh._copy_guess > len(long_bytes)


def test_empty_stream(coder):
    empty = np.zeros(0, np.int32)
    assert len(check_both_ways(empty, empty, coder)) == 4
    assert len(check_both_ways(empty, empty, coder, lanes=64)) == 4  # a forced count is moot, as in C++


@pytest.mark.parametrize("value", [0, 3, 2**31 - 1, -(2**31)])
def test_one_symbol(value, coder):
    check_both_ways(np.array([value], np.int32), np.array([17], np.int32), coder)


def test_every_table_index(coder):
    t = gaussian()
    idx, sym = [], []
    for i in range(t.num_tables):
        for v in range(t.offset[i] - 1, t.offset[i] + t.cdf_length[i]):
            idx.append(i)
            sym.append(v)
    check_both_ways(np.array(sym, np.int32), np.array(idx, np.int32), coder, lanes=256)


def test_decode_lookup_tables_are_exact():
    """lut (+ sub) give (symbol, start, frequency) of every slot of every row."""
    t = gaussian()
    lut, sub = triton_rans._decode_tables(t)
    slot = np.arange(1 << 16)
    low = slot & 0xFF
    for row in range(t.num_tables):
        cdf = t.cdf[row, : t.cdf_length[row]]
        want = np.searchsorted(cdf, slot, side="right") - 1
        e = lut[row * 256 + (slot >> 8)]
        o = (e >> 8) & 0xFF
        hi = (o != 0) & (low >= o)
        f0, f1 = (e >> 32) & 0xFFFF, (e >> 48) & 0xFFFF
        e2 = sub[np.where(f0 == 0, f1 * 256 + low, 0)]
        sym = np.where(f0 == 0, e2 & 0xFF, (e & 0xFF) + hi)
        start = np.where(f0 == 0, (e2 >> 8) & 0xFFFF, np.where(hi, slot - low + o, (e >> 16) & 0xFFFF))
        freq = np.where(f0 == 0, (e2 >> 24) & 0xFFFF, np.where(hi, f1, f0))
        np.testing.assert_array_equal(sym, want)
        np.testing.assert_array_equal(start, cdf[want])
        np.testing.assert_array_equal(freq, cdf[want + 1] - cdf[want])


def test_skipped_symbols_and_positions(coder):
    rng = np.random.default_rng(12)
    sym, idx = random_symbols(rng, 900, escape_rate=0.05)
    skip = rng.random(900) < 0.4
    sym[skip] = 0
    idx[skip] = -1
    data = coder.encode(torch.from_numpy(sym), torch.from_numpy(idx))
    assert data == rans.encode(sym[~skip], idx[~skip], gaussian())
    out = coder.decode(data, torch.from_numpy(idx).to(DEVICE))
    np.testing.assert_array_equal(out.cpu().numpy(), sym)
    with pytest.raises(CorruptStreamError, match="skip masks"):
        coder.decode(data, torch.from_numpy(np.where(np.arange(900) == 0, -1, idx)).to(DEVICE))


def test_bad_indexes_raise_value_error(coder):
    with pytest.raises(ValueError):
        coder.encode(torch.zeros(3, dtype=torch.int32), torch.tensor([0, 128, 3], dtype=torch.int32))


def test_table_with_many_narrow_slots():
    """A row whose slots all have frequency 1 except one: many multi-boundary buckets."""
    cdf = np.concatenate([np.arange(200), [65536 - 50], 65536 - 50 + np.arange(1, 51)])
    tables = CdfTables(cdf[None, :].astype(np.int32), np.array([len(cdf)]), np.array([-100]))
    coder = triton_rans.TritonRans(tables, DEVICE)
    rng = np.random.default_rng(2)
    sym = rng.integers(-110, 160, 600).astype(np.int32)
    check_both_ways(sym, np.zeros(600, np.int32), coder, lanes=64, tables=tables)


def test_corrupt_truncated_and_old_streams(coder):
    rng = np.random.default_rng(11)
    sym, idx = random_symbols(rng, 200, escape_rate=0.05)
    data = rans.encode(sym, idx, gaussian(), lanes=16)
    tidx = torch.from_numpy(idx).to(DEVICE)
    with pytest.raises(TruncatedStreamError):
        coder.decode(data[:-1], tidx)
    with pytest.raises(UnsupportedVersionError):
        coder.decode(b"\xb5" + data[1:], tidx)
    with pytest.raises(CorruptStreamError, match="skip masks"):
        coder.decode(data, tidx[:10])  # fewer indexes than the header's symbols
    header = rans._rans.parse_header(data, len(sym))[2]
    for where in (header, header + 2, header + 70):  # state and renormalisation bytes
        broken = bytearray(data)
        broken[where] ^= 0x5A
        with pytest.raises(CorruptStreamError):
            coder.decode(bytes(broken), tidx)


def test_mutated_streams_give_typed_errors_or_symbols(coder):
    """Random byte changes in the payload: the device decoder flags or decodes, never faults."""
    rng = np.random.default_rng(21)
    sym, idx = random_symbols(rng, 400, escape_rate=0.05)
    data = rans.encode(sym, idx, gaussian(), lanes=64)
    tidx = torch.from_numpy(idx).to(DEVICE)
    header = rans._rans.parse_header(data, len(sym))[2]
    outcomes = set()
    for _ in range(12):
        broken = bytearray(data)
        for where in rng.integers(header, len(data), 3):
            broken[where] = rng.integers(256)
        try:
            out = coder.decode(bytes(broken), tidx)
            assert out.shape == (len(sym),)
            outcomes.add("ok")
        except CorruptStreamError:
            outcomes.add("corrupt")
    assert "corrupt" in outcomes


@pytest.mark.parametrize("lanes", [31, 33])
def test_lane_counts_31_and_33(lanes, coder):
    """31 is a one-group layout with an idle lane; 33 is invalid for both coders."""
    rng = np.random.default_rng(lanes)
    sym, idx = random_symbols(rng, 5 * 33, escape_rate=0.05)
    if lanes == 33:
        with pytest.raises(ValueError):
            rans.encode(sym, idx, gaussian(), lanes=lanes)
        with pytest.raises(ValueError):
            coder.encode(torch.from_numpy(sym), torch.from_numpy(idx), lanes=lanes)
    else:
        check_both_ways(sym, idx, coder, lanes)


def test_sixteen_groups(coder):
    """G = 16 filled the pack kernel's header vector (2 + 2 G fields in 2 * 16 slots):
    the last group's sizes were dropped from the header."""
    rng = np.random.default_rng(16)
    sym, idx = random_symbols(rng, 600, escape_rate=0.02)
    data = check_both_ways(sym, idx, coder, lanes=512)
    assert len(rans._rans.parse_header(data)[3]) == 17


def test_every_symbol_an_escape(coder):
    """Escapes in every slot of every row, int32 extremes included."""
    rng = np.random.default_rng(5)
    sym, idx = random_symbols(rng, 300, escape_rate=1.0)
    sym[:4] = [INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX]
    data = check_both_ways(sym, idx, coder, lanes=64)
    assert sum(rans._rans.parse_header(data)[4][-1:]) == 300


def test_states_near_2_32():
    """A slot of frequency 65000 among rarer ones: about 1 in 6 of its encoder steps
    divides a state in [2^31, 2^32 - 2^25) (up to 0xF89CFF3B here), where the float32
    reciprocal quotient has the least headroom."""
    cdf = np.array([[0, 65000, 65300, 65500, 65535, 65536]], np.int32)
    tables = CdfTables(cdf, np.array([6]), np.array([0]))
    sym = np.random.default_rng(3).choice(4, 64 * 30, p=[0.55, 0.2, 0.15, 0.1]).astype(np.int32)
    check_both_ways(sym, np.zeros(len(sym), np.int32), triton_rans.TritonRans(tables, DEVICE), lanes=64,
                    tables=tables)


def test_bits_per_lane_zero_means_one():
    """The C++ policy divides by max(1, bits_per_lane); the device divided by zero."""
    rng = np.random.default_rng(6)
    sym, idx = random_symbols(rng, 300, escape_rate=0.02)
    cpu_bytes = rans.encode(sym, idx, gaussian(), bits_per_lane=0)
    assert rans._rans.parse_header(cpu_bytes)[1] == 288
    zero = triton_rans.TritonRans(gaussian(), DEVICE, bits_per_lane=0)
    assert zero.encode(torch.from_numpy(sym), torch.from_numpy(idx)) == cpu_bytes
    with pytest.raises(ValueError):
        triton_rans.TritonRans(gaussian(), DEVICE, bits_per_lane=-1)


def test_forced_lanes_above_coded_symbols_raise(coder):
    """32 lanes for 31 coded symbols (19 of 50 skipped): refused like the C++ coder,
    instead of a stream whose header announces more lanes than symbols."""
    rng = np.random.default_rng(9)
    sym, idx = random_symbols(rng, 50, escape_rate=0.02)
    idx[:19] = -1
    with pytest.raises(ValueError):
        rans.encode(sym, idx, gaussian(), lanes=32, skip_negative=True)
    with pytest.raises(ValueError, match="forced lane count"):
        coder.encode(torch.from_numpy(sym), torch.from_numpy(idx), lanes=32)
    assert coder.encode(torch.from_numpy(sym), torch.from_numpy(idx), lanes=31) == \
        rans.encode(sym, idx, gaussian(), lanes=31, skip_negative=True)


def test_too_many_symbols_refused_before_any_copy(coder):
    """Calls past the largest step the kernels are sized for are refused on the host."""
    huge = torch.zeros(1, dtype=torch.int32).expand(triton_rans.MAX_SYMBOLS)  # no memory behind it
    with pytest.raises(ValueError, match="fewer than"):
        coder.encode(huge, huge)
    with pytest.raises(ValueError, match="fewer than"):
        coder.decode(b"\xb6\x00\xb6\x00", huge)


def two_steps(seed: int, n: int, skip_rate: float = 0.3):
    """Symbols and indexes of two latent steps, each with escapes and skipped symbols
    (index -1, symbol 0), concatenated as the runtime codes them in one stream."""
    rng = np.random.default_rng(seed)
    steps = [random_symbols(rng, n // 2, escape_rate=0.05) for _ in range(2)]
    sym, idx = (np.concatenate(parts) for parts in zip(*steps))
    skip = rng.random(len(idx)) < skip_rate
    sym[skip], idx[skip] = 0, -1
    return sym, idx


def decode_in_segments(coder, data: bytes, idx: np.ndarray, coded_cuts: list[int], check: bool = True) -> np.ndarray:
    """Decodes ``data`` one segment per piece of ``idx`` between the given counts of coded
    symbols (a cut at k: the segment before holds coded symbols up to k - 1, and the
    skipped ones before coded symbol k), then finishes."""
    coded_at = np.flatnonzero(idx >= 0)
    cuts = [0] + [int(coded_at[k]) if k < len(coded_at) else len(idx) for k in coded_cuts] + [len(idx)]
    stream = coder.decoder(data, check)
    out = [stream.next(torch.from_numpy(idx[a:b]).to(DEVICE)).cpu().numpy() for a, b in zip(cuts, cuts[1:])]
    stream.finish()
    return np.concatenate(out)


@pytest.mark.parametrize("lanes,cuts", [
    (64, [3 * 64]),  # at a row boundary
    (64, [3 * 64 + 32]),  # mid-row, between the two groups
    (64, [3 * 64 + 10]),  # mid-row inside group 0
    (96, [100, 2 * 96 + 50]),  # three segments, inside groups 0 and 1
    (7, [10, 10, 23]),  # an empty segment between two mid-row cuts, one group of 7 lanes
    (1, [40]),
])
def test_stream_decoded_in_segments(lanes, cuts, coder):
    """Two steps coded as one stream give back their symbols whatever the segments."""
    sym, idx = two_steps(lanes, 500 if lanes >= 32 else 150)
    data = rans.encode(sym, idx, gaussian(), lanes=lanes, skip_negative=True)
    np.testing.assert_array_equal(decode_in_segments(coder, data, idx, cuts), sym)


def test_segments_of_skipped_symbols_only(coder):
    """Segments without coded symbols (all skipped, or no positions) return zeros and
    leave the state as it was."""
    sym, idx = two_steps(3, 500)
    data = rans.encode(sym, idx, gaussian(), lanes=32, skip_negative=True)
    stream = coder.decoder(data)
    skipped = torch.full((5,), -1, dtype=torch.int32, device=DEVICE)
    assert stream.next(skipped).cpu().tolist() == [0] * 5
    assert stream.next(torch.from_numpy(idx[:0]).to(DEVICE)).numel() == 0
    first = stream.next(torch.from_numpy(idx[:101]).to(DEVICE))
    assert stream.next(skipped).cpu().tolist() == [0] * 5
    second = stream.next(torch.from_numpy(idx[101:]).to(DEVICE))
    stream.finish()
    np.testing.assert_array_equal(np.concatenate([first.cpu().numpy(), second.cpu().numpy()]), sym)


def test_empty_stream_in_segments(coder):
    empty = rans.encode(np.zeros(0, np.int32), np.zeros(0, np.int32), gaussian())
    skipped = torch.full((4,), -1, dtype=torch.int32, device=DEVICE)
    stream = coder.decoder(empty)
    assert stream.next(skipped).cpu().tolist() == [0] * 4
    assert stream.next(skipped[:0]).numel() == 0
    stream.finish()
    assert stream.n == 0 and int(coder.last_error) == 0
    stream = coder.decoder(empty)
    stream.next(skipped)
    stream.next(torch.tensor([-1, 3], dtype=torch.int32, device=DEVICE))
    with pytest.raises(CorruptStreamError):
        stream.finish()


def test_segments_that_do_not_add_up(coder):
    """Too few coded symbols asked for in all, or too many (in the last segment, or in a
    segment after the end): CorruptStreamError at finish, after decoding what is there."""
    sym, idx = two_steps(5, 500)
    data = rans.encode(sym, idx, gaussian(), lanes=64, skip_negative=True)
    n = int((idx >= 0).sum())
    stream = coder.decoder(data)
    stream.next(torch.from_numpy(idx[:200]).to(DEVICE))
    with pytest.raises(CorruptStreamError, match="segments"):
        stream.finish()
    more = np.concatenate([idx, np.arange(1, 40, dtype=np.int32)])  # 39 coded symbols past the end
    with pytest.raises(CorruptStreamError):
        decode_in_segments(coder, data, more, [n - 20])
    stream = coder.decoder(data)
    out = stream.next(torch.from_numpy(more).to(DEVICE)).cpu().numpy()
    np.testing.assert_array_equal(out[: len(sym)], sym)  # decoded up to the end, no further
    assert not out[len(sym):].any()
    stream.next(torch.from_numpy(idx[-10:]).to(DEVICE))
    with pytest.raises(CorruptStreamError):
        stream.finish()


def test_segments_report_errors_on_the_device(coder):
    """check=False: no exception, last_error nonzero for a corrupt stream, zero for a good
    one; an index outside the tables in any segment is a ValueError with check."""
    sym, idx = two_steps(6, 500)
    data = rans.encode(sym, idx, gaussian(), lanes=32, skip_negative=True)
    decode_in_segments(coder, data, idx, [77], check=False)
    assert int(coder.last_error) == 0
    header = rans._rans.parse_header(data)[2]
    broken = bytearray(data)
    broken[header + 150] ^= 0x5A
    decode_in_segments(coder, bytes(broken), idx, [77], check=False)
    assert int(coder.last_error) != 0
    decode_in_segments(coder, data, idx[:-30], [77], check=False)
    assert int(coder.last_error) != 0
    bad = idx.copy()
    bad[np.flatnonzero(idx >= 0)[-1]] = gaussian().num_tables
    with pytest.raises(ValueError, match="cdf index"):
        decode_in_segments(coder, data, bad, [77])


def test_stream_announcing_too_many_symbols_is_refused(coder):
    """A header may announce up to 2^32 - 1 symbols in a few bytes (certain symbols read
    none); past MAX_STREAM_SYMBOLS the device's int32 positions could wrap."""
    def varint(v: int) -> bytes:
        out = bytearray()
        while v >= 0x80:
            out.append(v & 0x7F | 0x80)
            v >>= 7
        return bytes(out + bytes([v]))

    def stream(n: int) -> bytes:  # one lane, no renormalisation bytes or escapes
        head = b"\xb6" + varint(n) + varint(1) + varint(0) + varint(0)
        check = sum((k + 1) * b for k, b in enumerate(head)) % 65521
        return head + check.to_bytes(2, "little") + (1 << 24).to_bytes(4, "little")

    assert coder.decoder(stream(triton_rans.MAX_STREAM_SYMBOLS)).n == triton_rans.MAX_STREAM_SYMBOLS
    with pytest.raises(CorruptStreamError, match="at most"):
        coder.decoder(stream(triton_rans.MAX_STREAM_SYMBOLS + 1))


_KERNELS = ("_count_kernel", "_compact_kernel", "_encode_kernel", "_pack_kernel", "_decode_kernel")


class _SpecialisationRecorder:
    """Stands in for a kernel and records what the JIT specialises a launch on (an
    integer argument it specialises being 1 or a multiple of 16, a pointer's 16-byte
    alignment, the constexprs), then launches the real kernel."""

    def __init__(self, kernel, seen: set):
        self.kernel, self.seen = kernel, seen
        self.names = list(inspect.signature(kernel.fn).parameters)
        # a compiled kernel holds the list, an interpreted one the decorator's arguments
        self.fixed = set(getattr(kernel, "do_not_specialize", None) or kernel.kwargs.get("do_not_specialize") or ())

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def run(*args, **kwargs):
            key = []
            for name, arg in zip(self.names, args):
                if isinstance(arg, torch.Tensor):
                    key.append(arg.data_ptr() % 16 == 0)
                elif isinstance(arg, int) and name not in self.fixed:
                    key.append((arg == 1, arg % 16 == 0))
            self.seen.add((self.kernel.fn.__name__, tuple(key), tuple(sorted(kwargs.items()))))
            return launch(*args, **kwargs)
        return run


def test_a_size_class_compiles_each_kernel_once(monkeypatch):
    """Streams of one symbol count but 1, 2 or 3 groups, escapes or none, symbols
    handed over as unaligned views and decodes in segments launch every kernel with one
    specialisation, so a GPU
    session never stops to compile a kernel again (a decoder compile took 13-17 s on an
    H100) when a stream's layout changes."""
    seen: set = set()
    for name in _KERNELS:
        monkeypatch.setattr(triton_rans, name, _SpecialisationRecorder(getattr(triton_rans, name), seen))
    coder = triton_rans.TritonRans(gaussian(), DEVICE)
    rng = np.random.default_rng(11)
    for lanes, escape_rate, shift in [(1, 0.0, 0), (32, 0.05, 1), (64, 0.0, 3), (96, 0.02, 0), (None, 0.0, 1)]:
        sym, idx = random_symbols(rng, 700, escape_rate=escape_rate)
        sym_t = torch.from_numpy(np.concatenate([np.zeros(shift, np.int32), sym]))[shift:]  # a view at 4 * shift bytes
        data = coder.encode(sym_t, torch.from_numpy(idx), lanes=lanes)
        assert data == rans.encode(sym, idx, gaussian(), lanes=lanes)
        np.testing.assert_array_equal(coder.decode(data, torch.from_numpy(idx).to(DEVICE)).cpu().numpy(), sym)
        if lanes and lanes >= 32:  # segments too (fewer lanes are hundreds of interpreted rows)
            np.testing.assert_array_equal(decode_in_segments(coder, data, idx, [len(idx) // 3]), sym)
    variants = collections.Counter(name for name, _, _ in seen)
    # count and compact run once for the encoder (with costs, symbols) and once for the decoder
    assert variants == {"_count_kernel": 2, "_compact_kernel": 2, "_encode_kernel": 1, "_pack_kernel": 1,
                        "_decode_kernel": 1}, sorted(seen)


# TTGIR lines as Triton 3.6 (wrong for the ballot) and 3.9 (right) compile the encoder for sm_90
_TTGIR_36 = """#blocked = #ttg.blocked<{sizePerThread = [1, 1], threadsPerWarp = [16, 2], warpsPerCTA = [1, 1], \
order = [0, 1]}>
#blocked3 = #ttg.blocked<{sizePerThread = [1], threadsPerWarp = [32], warpsPerCTA = [1], order = [0]}>
%5:2 = tt.elementwise_inline_asm "{vote}" {pure = false} %nb, %4 : tensor<32xi32, #ttg.slice<{dim = 0, \
parent = #blocked}>>, tensor<32xi32, #ttg.slice<{dim = 0, parent = #blocked}>> -> tensor<32xi32, #blocked3>
"""
_TTGIR_39 = """#blocked = #ttg.blocked<{sizePerThread = [1, 1], threadsPerWarp = [1, 32], warpsPerCTA = [1, 1], \
order = [1, 0]}>
#blocked1 = #ttg.blocked<{sizePerThread = [1], threadsPerWarp = [32], warpsPerCTA = [1], order = [0]}>
%5:2 = tt.elementwise_inline_asm "{vote}" {pure = false} %nb, %4 : tensor<32xi32, #ttg.slice<{dim = 0, \
parent = #blocked}>>, tensor<32xi32, #blocked1> -> tensor<32xi32, #blocked1>, tensor<32xi32, #blocked1>
"""


def test_lane_layout_problems():
    assert triton_layout.lane_layout_problems(_TTGIR_39) == []
    assert triton_layout.lane_layout_problems(_TTGIR_36) == ["tensor<32xi32, #ttg.slice<{dim = 0, parent = #blocked}>>"]
    two_per_lane = _TTGIR_39.replace("sizePerThread = [1], threadsPerWarp", "sizePerThread = [2], threadsPerWarp")
    assert triton_layout.lane_layout_problems(two_per_lane) == ["tensor<32xi32, #blocked1>"]
    assert triton_layout.lane_layout_problems(_TTGIR_39.replace("#blocked1> ->", "#linear> ->")) == \
        ["tensor<32xi32, #linear>"]


def test_lane_vector_layouts():
    """Elements per thread and copies of every 32-lane vector (scripts/aot_compile_triton.py fails on > 1)."""
    assert triton_layout.lane_vector_layouts(_TTGIR_39) == {
        "#ttg.slice<{dim = 0, parent = #blocked}>": (1, 1), "#blocked1": (1, 1)}
    # Triton 3.6 before the flat gathers: 16 elements per thread, each on 16 lanes
    assert triton_layout.lane_vector_layouts(_TTGIR_36) == {
        "#ttg.slice<{dim = 0, parent = #blocked}>": (16, 16), "#blocked3": (1, 1)}
    two = _TTGIR_39.replace("sizePerThread = [1], threadsPerWarp = [32]", "sizePerThread = [2], threadsPerWarp = [16]")
    assert triton_layout.lane_vector_layouts(two)["#blocked1"] == (2, 1)
    wide = "#blocked = #ttg.blocked<{sizePerThread = [1], threadsPerWarp = [32], warpsPerCTA = [4], order = [0]}>\n" \
        "%a = tt.make_range {end = 32 : i32, start = 0 : i32} : tensor<32xi32, #blocked>\n"
    assert triton_layout.lane_vector_layouts(wide) == {"#blocked": (1, 4)}
    lanes = ", ".join(f"[{1 << k}]" for k in range(5))
    linear = f"#linear = #ttg.linear<{{register = [], lane = [{lanes}], warp = [], block = []}}>\n" \
        "%p = tt.splat %x : !tt.ptr<i8> -> tensor<32x!tt.ptr<i8>, #linear>\n"
    assert triton_layout.lane_vector_layouts(linear) == {"#linear": (1, 1)}
    doubled = linear.replace("register = []", "register = [[0]]")
    assert triton_layout.lane_vector_layouts(doubled) == {"#linear": (2, 2)}
    assert triton_layout.lane_vector_layouts(linear.replace("#linear>", "#mma>")) == {"#mma": None}
    assert triton_layout.lane_vector_layouts(_TTGIR_39, size=16) == {}


def _script(name: str):
    """A module of ``scripts/`` (not a package: scripts run from a checkout)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_aot_row_loop_and_lane_check():
    aot = _script("aot_compile_triton")
    ptx = """
\tmov.u32 %r1, 0;
$L__BB0_1:
\t.loc\t1 290 12
\tcvt.u32.u64 %r2, %rd1;
\tshfl.sync.up.b32 %r3, %r2, 1, 0, -1;
\t@%p1 st.global.b8 [%rd2], %rs1;
$L__BB0_2:
\tvote.sync.ballot.b32 %r4, %p2, -1;
\t@%p3 bra $L__BB0_2;
\tadd.s32 %r5, %r5, 1;
\t@%p4 bra $L__BB0_1;
\tret;
"""
    loop = aot.row_loop(ptx, 2)
    assert (loop["instructions"], loop["per_row"], loop["cvt_per_row"], loop["shfl_per_row"],
            loop["vote_per_row"]) == (7, 3.5, 0.5, 0.5, 0.5)
    assert aot.lane_vectors(_TTGIR_39) == ({"#ttg.slice<{dim = 0, parent = #blocked}>": [1, 1],
                                           "#blocked1": [1, 1]}, [])
    assert aot.lane_vectors(_TTGIR_36)[1] == ["#ttg.slice<{dim = 0, parent = #blocked}>"]
    assert aot.lane_vectors("")[1] == ["none found (has the TTGIR syntax changed?)"]


def test_ballot_refuses_a_wrong_layout(monkeypatch):
    class Compiled:
        def __init__(self, ttgir):
            self.asm = {"ttgir": ttgir}

    monkeypatch.setattr(triton_rans, "BALLOT", True)
    triton_rans._check_lane_layout(Compiled(_TTGIR_39))
    with pytest.raises(RuntimeError, match="UI2C_TRITON_BALLOT"):
        triton_rans._check_lane_layout(Compiled(_TTGIR_36))


def test_ballot_is_opt_in():
    """Off unless UI2C_TRITON_BALLOT=1, and never in the interpreter."""
    code = ("import importlib, os; from ui2c.plugins import triton_rans as t; print(t.BALLOT); "
            "os.environ['UI2C_TRITON_BALLOT'] = '1'; print(importlib.reload(t).BALLOT); "
            "os.environ['TRITON_INTERPRET'] = '1'; print(importlib.reload(t).BALLOT)")
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "UI2C_TRITON_BALLOT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "False"]


def test_diag_names_the_stage_that_differs(coder, monkeypatch):
    diag = _script("triton_gpu_diag")
    rng = np.random.default_rng(30)
    sym, idx = random_symbols(rng, 300, escape_rate=0.05)
    ref = rans.encode(sym, idx, gaussian(), lanes=64)
    assert diag.compare_encode(coder, sym, idx, 64, ref) is None
    assert diag.compare_decode(coder, sym, idx, ref) is None
    real = coder.encode_device

    def broken(where):
        def run(*args, **kwargs):
            buf = real(*args, **kwargs)
            if where == "scratch":  # after the pack kernel: only the group comparison sees it
                buf.scratch[int(buf.meta[1, 0]) + 4 * 32 + 3] ^= 1
            else:
                buf.out[4 + 3] ^= 1  # a header byte
            return buf
        return run

    monkeypatch.setattr(coder, "encode_device", broken("scratch"))
    found = diag.compare_encode(coder, sym, idx, 64, ref)
    assert (found["kernel"], found["group"], found["byte_in_group"]) == ("encode", 1, 4 * 32 + 3)
    monkeypatch.setattr(coder, "encode_device", broken("out"))
    assert diag.compare_encode(coder, sym, idx, 64, ref)["kernel"] == "pack"
    real_decode = coder.decode
    monkeypatch.setattr(coder, "decode", lambda *a, **k: real_decode(*a, **k) + (torch.arange(300) == 77).to(
        torch.int32).to(DEVICE))
    found = diag.compare_decode(coder, sym, idx, ref)
    assert (found["kernel"], found["symbol"]) == ("decode", 77)
    assert "group 0, lane 13, row 1" in found["detail"]


def test_diag_writes_its_summary(tmp_path, monkeypatch):
    diag = _script("triton_gpu_diag")
    few = [c for c in diag.cases(quick=True) if c[0] in ("empty", "lanes31")]
    monkeypatch.setattr(diag, "cases", lambda quick: few)
    before = triton_rans.BALLOT, triton_rans.CHECK_LANE_LAYOUT
    modes = ["off", "on"] if INTERPRET else ["off"]  # the interpreter skips "on" (inline PTX)
    report = diag.diagnose(tmp_path / "diag.json", modes, deadline=math.inf, log=lambda line: None)
    assert (triton_rans.BALLOT, triton_rans.CHECK_LANE_LAYOUT) == before
    saved = json.loads((tmp_path / "diag.json").read_text())
    assert saved["summary"] == report["summary"]
    assert [(r["case"], r["ok"]) for r in saved["results"]] == [("empty", True), ("lanes31", True)]
    assert saved["results"][1]["lanes"] == 31


def test_diag_reports_compiled_layouts(tmp_path, monkeypatch):
    """The JIT-cache walk that runs only on a GPU, on stand-ins for compiled kernels."""
    diag = _script("triton_gpu_diag")

    class Compiled:
        def __init__(self, ttgir, votes):
            self.asm = {"ttgir": ttgir, "ptx": "vote.sync.ballot.b32\n" * votes}
            self.metadata = type("Meta", (), {"num_warps": 1})

    cache = {"a": Compiled(_TTGIR_39, 0), "b": Compiled(_TTGIR_36, 48), "c": Compiled(_TTGIR_36, 48)}
    monkeypatch.setattr(triton_rans._encode_kernel, "device_caches", {0: (cache, None)}, raising=False)
    found = [r for r in diag.compiled_kernels(tmp_path) if r["kernel"].startswith("_encode")]  # GPU: others too
    assert [(r["kernel"], r["vote_sync"], len(r["layout_problems"])) for r in found] == \
        [("_encode_kernel.0", 0, 0), ("_encode_kernel.1", 48, 1), ("_encode_kernel.2", 48, 1)]
    assert sorted(p.name for p in tmp_path.glob("_encode*")) == [
        "_encode_kernel.0.ptx", "_encode_kernel.0.ttgir", "_encode_kernel.1.ptx", "_encode_kernel.1.ttgir"]
