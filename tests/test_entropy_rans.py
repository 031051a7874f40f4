"""CPU rANS coder: round trips, layouts, the exact byte format and typed errors."""
import numpy as np
import pytest

from test_entropy_helpers import gaussian, ideal_bits, random_symbols
from ui2c.entropy import _rans, rans
from ui2c.entropy.tables import CdfTables
from ui2c.errors import CorruptStreamError, TruncatedStreamError, UnsupportedVersionError


def check(header: bytes) -> bytes:
    """Header check of format §5, written independently of the C++ one."""
    value = sum((k + 1) * b for k, b in enumerate(header)) % 65521
    return value.to_bytes(2, "little")


def roundtrip(sym, idx, tables, threads=1, **kw):
    data = rans.encode(sym, idx, tables, threads, **kw)
    out = rans.decode(data, idx, tables, threads)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, sym)
    return data


@pytest.mark.parametrize("lanes", [1, 7, 32, 64, 96, 2048])
def test_roundtrip_forced_lanes(lanes):
    rng = np.random.default_rng(lanes)
    sym, idx = random_symbols(rng, 3001, escape_rate=0.02)
    data = roundtrip(sym, idx, gaussian(), lanes=lanes)
    assert _rans.parse_header(data, len(sym))[:2] == (len(sym), lanes)


@pytest.mark.parametrize("n", [1, 31, 33, 95, 97])
def test_short_lanes_at_the_end(n):
    """n not a multiple of P: the last row is partial in some groups and empty in others."""
    rng = np.random.default_rng(n)
    sym, idx = random_symbols(rng, n, escape_rate=0.1)
    for lanes in {1, min(n, 32), 32 * (n // 32)} - {0}:
        roundtrip(sym, idx, gaussian(), lanes=lanes)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_give_identical_bytes(threads):
    rng = np.random.default_rng(7)
    sym, idx = random_symbols(rng, 20000)
    ref = rans.encode(sym, idx, gaussian(), 1, lanes=288)
    assert roundtrip(sym, idx, gaussian(), threads, lanes=288) == ref


def test_empty_stream_is_four_bytes():
    empty = np.zeros(0, np.int32)
    data = roundtrip(empty, empty, gaussian())
    assert data == b"\xb6\x00" + check(b"\xb6\x00")


def test_known_answer_one_symbol():
    # one table with slots {0: 1/2, 1: 1/2 - 2^-16, escape: 2^-16}; value 0 from x = L = 2^24:
    # x = (2^24 // 32768) << 16 = 2^25 -> final state bytes 00 00 00 02
    tables = CdfTables(np.array([[0, 32768, 65535, 65536]]), np.array([4]), np.array([0]))
    data = rans.encode(np.array([0]), np.array([0]), tables)
    header = bytes([0xB6, 1, 1, 0, 0])
    assert data == header + check(header) + bytes([0x00, 0x00, 0x00, 0x02])
    # value 5 escapes: slot 2 (start 65535, f 1, x_max 2^16): the renorm emits bytes 00, 00
    # and leaves x = 2^8 -> x = (2^8 << 16) + 65535; the value follows as int32
    data = rans.encode(np.array([5]), np.array([0]), tables)
    header = bytes([0xB6, 1, 1, 2, 1])
    assert data == header + check(header) + bytes([0xFF, 0xFF, 0x00, 0x01, 0x00, 0x00, 5, 0, 0, 0])
    assert rans.decode(data, np.array([0]), tables).tolist() == [5]


def test_format_1_is_refused_by_name():
    with pytest.raises(UnsupportedVersionError, match="format 1"):
        rans.decode(bytes([0xB5, 0x00, 0x00]), np.zeros(0, np.int32), gaussian())


def test_single_huge_values():
    for value in (2**31 - 1, -(2**31), 10**6):
        sym = np.array([value], np.int32)
        idx = np.array([64], np.int32)
        roundtrip(sym, idx, gaussian())


def test_every_table_index_and_every_slot():
    t = gaussian()
    idx, sym = [], []
    for i in range(t.num_tables):
        for v in range(t.offset[i] - 1, t.offset[i] + t.cdf_length[i]):  # support, escape and both sides
            idx.append(i)
            sym.append(v)
    roundtrip(np.array(sym), np.array(idx), t, lanes=64)


def layout_rule(n: int, freqs: np.ndarray, bits_per_lane: int) -> int:
    """Format §6, re-implemented from the spec text."""
    m = np.floor(np.log2(freqs)).astype(np.int64)
    log2_q16 = (m << 16) | ((freqs.astype(np.int64) << (16 - m)) & 0xFFFF)
    bits = int(((16 << 16) - log2_q16).sum()) >> 16
    lanes = min(max(1, bits // bits_per_lane), n, 8192)
    return lanes if lanes <= 32 else 32 * (lanes // 32)


@pytest.mark.parametrize("n,escape_rate,bits_per_lane", [(1, 0, 8192), (5000, 0, 8192), (60000, 0.001, 8192),
                                                         (30000, 0, 256), (30000, 0, 1), (300, 0, 1)])
def test_layout_policy_matches_spec(n, escape_rate, bits_per_lane):
    rng = np.random.default_rng(n)
    t = gaussian()
    sym, idx = random_symbols(rng, n, escape_rate, lo=100)  # wide scales: several bits each
    data = roundtrip(sym, idx, t, bits_per_lane=bits_per_lane)
    v = sym.astype(np.int64) - t.offset[idx]
    slot = np.where((v >= 0) & (v < t.cdf_length[idx] - 2), v, t.cdf_length[idx] - 2)
    freqs = t.cdf[idx, slot + 1] - t.cdf[idx, slot]
    assert _rans.parse_header(data, n)[1] == layout_rule(n, freqs, bits_per_lane)


def test_rate_is_close_to_information():
    rng = np.random.default_rng(3)
    sym, idx = random_symbols(rng, 200000, escape_rate=0, hi=90)
    data = rans.encode(sym, idx, gaussian())
    _, lanes, header = _rans.parse_header(data, len(sym))[:3]
    t = gaussian()
    escapes = np.sum((sym < t.offset[idx]) | (sym - t.offset[idx] >= t.cdf_length[idx] - 2))
    overhead = 8 * len(data) - 32 * escapes - ideal_bits(sym, idx, t)
    # each lane costs 24 bits of initial state plus at most 8 unused final-state bits;
    # the coding loss of L = 2^24 is a few bits per 10^5 symbols
    assert 0 < overhead < lanes * 32 + 8 * header + 64


def test_truncations_are_typed():
    rng = np.random.default_rng(5)
    sym, idx = random_symbols(rng, 500, escape_rate=0.05)
    data = rans.encode(sym, idx, gaussian(), lanes=4)
    for cut in range(len(data)):
        with pytest.raises(TruncatedStreamError):
            rans.decode(data[:cut], idx, gaussian())


def test_corruptions_are_typed():
    rng = np.random.default_rng(6)
    sym, idx = random_symbols(rng, 500, escape_rate=0.05)
    data = rans.encode(sym, idx, gaussian(), lanes=4)
    with pytest.raises(CorruptStreamError):
        rans.decode(data + b"\x00", idx, gaussian())
    with pytest.raises(CorruptStreamError):
        rans.decode(b"\x00" + data[1:], idx, gaussian())
    with pytest.raises(CorruptStreamError, match="skip masks"):
        rans.decode(data, idx[:-1], gaussian())
    header = _rans.parse_header(data, len(sym))[2]
    flipped = bytearray(data)
    flipped[header + 1] ^= 0x10  # first lane's final state
    with pytest.raises(CorruptStreamError):
        rans.decode(bytes(flipped), idx, gaussian())


def test_bad_arguments_raise_value_error():
    t = gaussian()
    with pytest.raises(ValueError):
        rans.encode(np.array([0]), np.array([128]), t)
    with pytest.raises(ValueError):
        rans.encode(np.array([0, 1]), np.array([0]), t)
    with pytest.raises(ValueError):
        rans.decode(rans.encode(np.array([0]), np.array([3]), t), np.array([-1]), t)
    many = rans.encode(np.zeros(5000, np.int32), np.full(5000, 3, np.int32), t, lanes=128)
    for position, value in ((0, -1), (4999, 128), (2500, 2**31 - 1)):  # checked inside each group, on 4 threads
        idx = np.full(5000, 3, np.int32)
        idx[position] = value
        with pytest.raises(ValueError, match=f"cdf index {value} at position {position} is outside"):
            rans.decode(many, idx, t, 4)
    with pytest.raises(ValueError):
        rans.encode(np.array([2**40]), np.array([0]), t)
    with pytest.raises(ValueError):
        rans.encode(np.arange(10), np.zeros(10), t, lanes=11)  # more lanes than symbols
    with pytest.raises(ValueError):
        rans.encode(np.arange(100), np.zeros(100), t, lanes=40)  # > 32 and not a multiple of 32
    bad = CdfTables(np.array([[0, 5, 5, 65536]]), np.array([4]), np.array([0]))
    with pytest.raises(ValueError):
        rans.encode(np.array([0]), np.array([0]), bad)


def test_skip_negative_drops_and_restores_skipped_symbols():
    rng = np.random.default_rng(13)
    sym, idx = random_symbols(rng, 2000, escape_rate=0.02)
    skip = rng.random(2000) < 0.5
    sym[skip], idx[skip] = 0, -1
    data = rans.encode(sym, idx, gaussian(), skip_negative=True)
    assert data == rans.encode(sym[~skip], idx[~skip], gaussian())
    np.testing.assert_array_equal(rans.decode(data, idx, gaussian(), 2, skip_negative=True), sym)
    with pytest.raises(ValueError):
        rans.encode(sym, idx, gaussian())  # without the flag a negative index is an error


def test_decode_into_the_callers_buffer():
    """``out`` is written in place (a session passes pinned memory) and returned; anything
    that would force a converted copy is refused instead of silently not being written."""
    rng = np.random.default_rng(14)
    sym, idx = random_symbols(rng, 3000, escape_rate=0.02)
    skip = rng.random(3000) < 0.3
    sym[skip], idx[skip] = 0, -1
    data = rans.encode(sym, idx, gaussian(), skip_negative=True)
    out = np.full(3000, 7, dtype=np.int32)
    assert rans.decode(data, idx, gaussian(), skip_negative=True, out=out) is out
    np.testing.assert_array_equal(out, sym)
    readonly = np.empty(3000, dtype=np.int32)
    readonly.flags.writeable = False
    for bad in (np.empty(3000, np.int64), np.empty(2999, np.int32), np.empty(6000, np.int32)[::2], readonly):
        with pytest.raises(ValueError, match="out must be"):
            rans.decode(data, idx, gaussian(), skip_negative=True, out=bad)


def test_extension_modules_refuse_strided_buffers_instead_of_misreading_them():
    """A strided view is not its bytes laid out in a row; [::-1] would be read past its end."""
    from ui2c.entropy import _container

    data = rans.encode(np.zeros(40, np.int32), np.zeros(40, np.int32), gaussian(), 1)
    for view in (memoryview(data)[::2], memoryview(data)[::-1]):
        with pytest.raises(ValueError, match="contiguous bytes"):
            _rans.parse_header(view)
        with pytest.raises(ValueError, match="contiguous bytes"):
            _container.crc32(view)
    assert _rans.parse_header(memoryview(data)) == _rans.parse_header(data)
    assert _rans.parse_header(memoryview(b"x" + data)[1:]) == _rans.parse_header(data)  # contiguous, offset: fine


def test_freq_cost_table_covers_exactly_the_16_bit_frequencies():
    table = _rans.freq_cost_table()
    assert table.shape == (2**16 + 1,)
    f = np.arange(1, 2**16 + 1)
    np.testing.assert_allclose(table[1:] / 2**16, 16 - np.log2(f), atol=0.09)  # the piecewise-linear log2 of §6
    assert table[2**16] == 0 and table[1] == 16 << 16


def decode_in_segments(data, idx, cuts, threads=1, skip_negative=False):
    """Decodes idx[cuts[k]:cuts[k+1]] segment by segment, then finishes."""
    d = rans.StreamDecoder(data, gaussian(), threads, skip_negative=skip_negative)
    bounds = [0, *cuts, len(idx)]
    parts = [d.next(idx[a:b]) for a, b in zip(bounds, bounds[1:])]
    d.finish()
    return np.concatenate(parts)


@pytest.mark.parametrize("lanes", [1, 7, 32, 96])
@pytest.mark.parametrize("threads", [1, 2])
def test_segments_continue_where_the_last_one_stopped(lanes, threads):
    """A unit's steps share one stream: any split, at a row boundary, mid-row or
    mid-group, into two or three segments gives back the encoded symbols."""
    n = 1001
    rng = np.random.default_rng(lanes + threads)
    sym, idx = random_symbols(rng, n, escape_rate=0.03)
    data = rans.encode(sym, idx, gaussian(), lanes=lanes)
    for cuts in ([0], [n], [lanes * 5], [lanes * 5 + 3], [lanes * 5 + lanes // 2], [17, 640], [300, 300]):
        np.testing.assert_array_equal(decode_in_segments(data, idx, cuts, threads), sym)


def test_segments_with_skipped_symbols_in_each():
    rng = np.random.default_rng(21)
    sym, idx = random_symbols(rng, 3000, escape_rate=0.02)
    skip = rng.random(3000) < 0.4
    sym[skip], idx[skip] = 0, -1
    data = rans.encode(sym, idx, gaussian(), lanes=64, skip_negative=True)
    np.testing.assert_array_equal(decode_in_segments(data, idx, [1234], skip_negative=True), sym)


def test_segments_that_miscount_the_symbols_are_corrupt():
    rng = np.random.default_rng(22)
    sym, idx = random_symbols(rng, 500, escape_rate=0.05)
    data = rans.encode(sym, idx, gaussian(), lanes=7)
    d = rans.StreamDecoder(data, gaussian())
    d.next(idx[:200])
    with pytest.raises(CorruptStreamError, match="skip masks"):
        d.next(np.concatenate([idx[200:], idx[:1]]))  # one symbol more than the stream holds
    d = rans.StreamDecoder(data, gaussian())
    d.next(idx[:200])
    d.next(idx[200:-1])
    assert (d.symbols, d.decoded) == (500, 499)
    with pytest.raises(CorruptStreamError, match="skip masks"):
        d.finish()


def test_segments_of_an_empty_stream():
    data = rans.encode(np.zeros(0, np.int32), np.zeros(0, np.int32), gaussian())
    assert decode_in_segments(data, np.zeros(0, np.int32), [0, 0]).size == 0
    assert decode_in_segments(data, np.full(9, -1, np.int32), [4], skip_negative=True).tolist() == [0] * 9


def test_damage_reads_the_same_in_segments_as_in_one_call():
    """Every single-bit change of a stream: decoded in two segments it raises the same
    typed error as the one-call decoder, or decodes to the same symbols."""
    rng = np.random.default_rng(23)
    sym, idx = random_symbols(rng, 300, escape_rate=0.05)
    data = rans.encode(sym, idx, gaussian(), lanes=64)
    caught = 0
    for k in range(len(data)):
        bad = bytearray(data)
        bad[k] ^= 1 << (k % 8)
        try:
            whole = rans.decode(bytes(bad), idx, gaussian())
        except (CorruptStreamError, TruncatedStreamError) as e:
            caught += 1
            with pytest.raises(type(e)):
                decode_in_segments(bytes(bad), idx, [150])
        else:
            np.testing.assert_array_equal(decode_in_segments(bytes(bad), idx, [150]), whole)
    assert caught > len(data) // 2
