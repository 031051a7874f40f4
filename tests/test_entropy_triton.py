"""Triton coder versus the C++ coder: identical bytes and symbols (interpreter on CPU)."""
import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("triton")

from test_entropy_helpers import gaussian, random_symbols  # noqa: E402
from ui2c.entropy import rans  # noqa: E402
from ui2c.errors import CorruptStreamError, TruncatedStreamError  # noqa: E402
from ui2c.plugins import triton_rans  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"


@pytest.fixture(scope="module")
def gpu_tables():
    return triton_rans.TritonTables(gaussian(), DEVICE)


def check_both_ways(sym, idx, gpu_tables, layout=None):
    cpu_bytes = rans.encode(sym, idx, gaussian(), layout=layout)
    gpu_bytes = triton_rans.encode(torch.from_numpy(sym), torch.from_numpy(idx), gpu_tables, layout=layout)
    assert gpu_bytes == cpu_bytes
    decoded = triton_rans.decode(cpu_bytes, torch.from_numpy(idx), gpu_tables)
    np.testing.assert_array_equal(decoded.cpu().numpy(), sym)
    return cpu_bytes


@pytest.mark.parametrize("n,layout", [(60, (1, 1)), (300, (3, 7)), (700, (2, 32)), (2000, (9, 32)), (90, None)])
def test_random_with_escapes(n, layout, gpu_tables):
    rng = np.random.default_rng(n)
    sym, idx = random_symbols(rng, n, escape_rate=0.05)
    check_both_ways(sym, idx, gpu_tables, layout)


def test_empty_stream(gpu_tables):
    empty = np.zeros(0, np.int32)
    assert len(check_both_ways(empty, empty, gpu_tables)) == 3


@pytest.mark.parametrize("value", [0, 3, 2**31 - 1, -(2**31)])
def test_one_symbol(value, gpu_tables):
    check_both_ways(np.array([value], np.int32), np.array([17], np.int32), gpu_tables)


def test_every_table_index(gpu_tables):
    t = gaussian()
    idx, sym = [], []
    for i in range(t.num_tables):
        for v in range(t.offset[i] - 1, t.offset[i] + t.cdf_length[i]):
            idx.append(i)
            sym.append(v)
    check_both_ways(np.array(sym, np.int32), np.array(idx, np.int32), gpu_tables, layout=(8, 32))


def test_corrupt_and_truncated_streams(gpu_tables):
    rng = np.random.default_rng(11)
    sym, idx = random_symbols(rng, 200, escape_rate=0.05)
    data = rans.encode(sym, idx, gaussian(), layout=(2, 16))
    with pytest.raises(TruncatedStreamError):
        triton_rans.decode(data[:-1], torch.from_numpy(idx), gpu_tables)
    header = rans._rans.parse_header(data, len(sym))[2]
    for where in (header, header + 2, header + 70):  # state and renormalisation words
        broken = bytearray(data)
        broken[where] ^= 0x5A
        with pytest.raises(CorruptStreamError):
            triton_rans.decode(bytes(broken), torch.from_numpy(idx), gpu_tables)
