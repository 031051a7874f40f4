"""Mutated and truncated streams: a typed error or some output, never a crash or hang."""

import numpy as np
import pytest

from test_entropy_helpers import gaussian, random_symbols
from ui2c.entropy import _rans, rans
from ui2c.errors import BitstreamError

def check(header: bytes) -> bytes:
    """Header check of format §5."""
    return (sum((k + 1) * b for k, b in enumerate(header)) % 65521).to_bytes(2, "little")


def decode_or_error(data: bytes, idx: np.ndarray) -> str:
    try:
        out = rans.decode(data, idx, gaussian(), num_threads=2)
    except BitstreamError as e:
        return type(e).__name__
    assert out.shape == idx.shape
    return "ok"


def mutate(rng: np.random.Generator, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.integers(5)
    if kind == 0 and b:  # bit flips
        for _ in range(rng.integers(1, 4)):
            i = rng.integers(len(b))
            b[i] ^= 1 << rng.integers(8)
    elif kind == 1 and b:  # random bytes
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(len(b))] = rng.integers(256)
    elif kind == 2:  # truncation
        del b[rng.integers(len(b) + 1):]
    elif kind == 3:  # insertion
        i = rng.integers(len(b) + 1)
        b[i:i] = rng.integers(0, 256, rng.integers(1, 8), dtype=np.uint8).tobytes()
    else:  # deletion
        i = rng.integers(len(b) + 1)
        del b[i:i + rng.integers(1, 8)]
    return bytes(b)


@pytest.mark.parametrize("seed", range(3))
def test_random_mutations(seed):
    rng = np.random.default_rng(seed)
    outcomes = {}
    for case in range(40):
        sym, idx = random_symbols(rng, int(rng.integers(0, 400)), escape_rate=0.05)
        lanes = None
        if len(sym) and rng.random() < 0.7:
            lanes = int(rng.integers(1, min(len(sym), 32) + 1))
            if len(sym) >= 64 and rng.random() < 0.3:
                lanes = 32 * int(rng.integers(2, len(sym) // 32 + 1))
        data = rans.encode(sym, idx, gaussian(), lanes=lanes)
        for _ in range(50):
            r = decode_or_error(mutate(rng, data), idx)
            outcomes[r] = outcomes.get(r, 0) + 1
    assert outcomes.get("CorruptError", 0) > 100 and outcomes.get("TruncatedError", 0) > 100


def test_header_mutations_behind_a_valid_crc():
    """Recompute the check so mutated counts reach the deeper size and group checks."""
    rng = np.random.default_rng(42)
    sym, idx = random_symbols(rng, 1000, escape_rate=0.05)
    data = rans.encode(sym, idx, gaussian(), lanes=96)
    header = _rans.parse_header(data, len(sym))[2]
    outcomes = set()
    for _ in range(3000):
        head = bytearray(data[: header - 2])
        for _ in range(rng.integers(1, 3)):
            head[rng.integers(1, len(head))] = rng.integers(256)
        outcomes.add(decode_or_error(bytes(head) + check(head) + data[header:], idx))
    assert {"CorruptError", "TruncatedError"} <= outcomes


def test_every_single_byte_header_change_is_caught():
    rng = np.random.default_rng(9)
    sym, idx = random_symbols(rng, 300, escape_rate=0.05)
    data = rans.encode(sym, idx, gaussian(), lanes=64)
    header = _rans.parse_header(data, len(sym))[2]
    for k in range(header):  # byte 0, the format version, included
        for value in range(256):
            if value != data[k]:
                broken = data[:k] + bytes([value]) + data[k + 1:]
                assert decode_or_error(broken, idx) != "ok"
