"""The runtime seam (ui2c.entropy.coder): both coders, same bytes, skip convention."""
import os

import numpy as np
import pytest
import torch

from test_entropy_helpers import gaussian, random_symbols
from ui2c.entropy import _rans, rans
from ui2c.entropy.coder import EntropyCoder, make_coder

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
CUDA = torch.cuda.is_available() and not INTERPRET
DEVICE = "cuda" if CUDA else "cpu"
KINDS = ["cpu"] + (["triton"] if INTERPRET or CUDA else [])


def masked_inputs(n: int, seed: int, skip_rate: float = 0.3):
    rng = np.random.default_rng(seed)
    sym, idx = random_symbols(rng, n, escape_rate=0.02)
    skip = rng.random(n) < skip_rate
    sym[skip] = 0
    idx[skip] = -1
    return torch.from_numpy(sym), torch.from_numpy(idx)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [0, 1, 500])
def test_roundtrip_with_skips(kind, n):
    coder = make_coder(gaussian(), DEVICE, kind)
    assert isinstance(coder, EntropyCoder) and coder.name == kind
    sym, idx = (t.to(DEVICE) for t in masked_inputs(n, n))
    data = coder.encode(sym, idx)
    s, i = sym.cpu().numpy(), idx.cpu().numpy()
    assert data == rans.encode(s[i >= 0], i[i >= 0], gaussian())
    out = coder.decode(data, idx)
    assert out.dtype == torch.int32 and out.device == idx.device
    assert torch.equal(out, sym)


@pytest.mark.parametrize("kind", KINDS)
def test_bits_per_lane_reaches_the_layout(kind):
    """The seam's layout density is the format's policy parameter: the same bytes as
    the C++ coder called with it, more lanes than the default, and bad values refused."""
    sym, idx = (t.to(DEVICE) for t in masked_inputs(3000, 7))
    coder = make_coder(gaussian(), DEVICE, kind, threads=2, bits_per_lane=64)
    data = coder.encode(sym, idx)
    s, i = sym.cpu().numpy(), idx.cpu().numpy()
    assert data == rans.encode(s[i >= 0], i[i >= 0], gaussian(), bits_per_lane=64)
    default = make_coder(gaussian(), DEVICE, kind).encode(sym, idx)
    assert _rans.parse_header(data)[1] > _rans.parse_header(default)[1]  # lanes
    assert torch.equal(coder.decode(data, idx), sym)
    for bad in (0, 1 << 32):
        with pytest.raises(ValueError, match="bits_per_lane"):
            make_coder(gaussian(), DEVICE, kind, bits_per_lane=bad)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_triton_on_cuda_is_portable_to_the_cpp_coder():
    gpu, cpu = make_coder(gaussian(), "cuda", "triton"), make_coder(gaussian(), "cuda")
    assert gpu.name == "triton" and cpu.name == "cpu"
    sym, idx = (t.cuda() for t in masked_inputs(5000, 3))
    data = gpu.encode(sym, idx)
    assert cpu.encode(sym, idx) == data
    assert torch.equal(cpu.decode(data, idx), sym) and torch.equal(gpu.decode(data, idx), sym)


def test_default_kind_on_cpu_is_cpu():
    assert make_coder(gaussian(), "cpu").name == "cpu"
    with pytest.raises(ValueError):
        make_coder(gaussian(), "cpu", "gpu")


def test_all_skipped():
    coder = make_coder(gaussian(), "cpu", "cpu")
    idx = torch.full((10,), -1, dtype=torch.int32)
    data = coder.encode(torch.zeros(10, dtype=torch.int32), idx)
    assert torch.equal(coder.decode(data, idx), torch.zeros(10, dtype=torch.int32))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.int16])
def test_symbols_and_indexes_other_than_int32_are_refused(kind, dtype):
    """A cast would round floats and wrap int64 into a stream that decodes to other values."""
    coder = make_coder(gaussian(), DEVICE, kind)
    sym, idx = (t.to(DEVICE) for t in masked_inputs(50, 5))
    with pytest.raises(ValueError, match=f"symbols must be int32, not {dtype}"):
        coder.encode(sym.to(dtype), idx)
    with pytest.raises(ValueError, match=f"indexes must be int32, not {dtype}"):
        coder.encode(sym, idx.to(dtype))
    data = coder.encode(sym, idx)
    with pytest.raises(ValueError, match=f"indexes must be int32, not {dtype}"):
        coder.decode(data, idx.to(dtype))
