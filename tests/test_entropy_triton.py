"""Triton coder versus the C++ coder: identical bytes and symbols.

Runs in Triton's interpreter unless TRITON_INTERPRET is set explicitly (``=0`` on a
GPU machine runs the compiled kernels on CUDA).  Interpreted rows are slow, so the
streams here use many lanes to keep the rows per lane few.
"""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton")

from test_entropy_helpers import gaussian, random_symbols  # noqa: E402
from ui2c.entropy import rans  # noqa: E402
from ui2c.entropy.tables import CdfTables  # noqa: E402
from ui2c.errors import CorruptStreamError, TruncatedStreamError, UnsupportedVersionError  # noqa: E402
from ui2c.plugins import triton_rans  # noqa: E402

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


def test_empty_stream(coder):
    empty = np.zeros(0, np.int32)
    assert len(check_both_ways(empty, empty, coder)) == 4


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
