"""The device-resident runtime on a real CUDA GPU.

* The latent codec gives the same indexes, symbols and y_hat on CUDA as on the CPU
  (the CPU path is the one the stream format was defined with).
* CUDA sessions decode their own streams bit for bit — also in a fresh process, which
  would pick different kernels if any choice were timing-based — eager and compiled.
* The C++ and Triton entropy coders give the same bytes inside a real session.

The module skips when torch sees no CUDA device.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu
if not torch.cuda.is_available():
    pytest.skip("no CUDA device visible to torch", allow_module_level=True)

from ui2c.export.feeds import demo_clip  # noqa: E402
from ui2c.entropy import latent  # noqa: E402
from ui2c.runtime.api import decode_frames, encode_file  # noqa: E402
from ui2c.runtime.model import load_codec  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_latent_codec_on_cuda_equals_cpu(dtype):
    gen = torch.Generator().manual_seed(0)
    c, h, w = 64, 12, 20
    ys = (torch.randn(1, c, h, w, generator=gen) * 6).to(dtype)
    means = torch.randn(1, c, h, w, generator=gen).to(dtype)
    scales = (torch.rand(1, c, h, w, generator=gen) * 3).to(dtype)  # many under the skip threshold
    results = {}
    for device in ("cpu", "cuda"):
        masks = latent.checkerboard_masks(c, h, w, torch.device(device))
        out = []
        for mask in masks:
            idx = latent.step_indexes(scales.to(device), mask)
            sym, y_hat = latent.quantize_step(ys.to(device), means.to(device), mask, idx)
            out += [idx, sym, y_hat, latent.dequantize_step(sym, means.to(device), mask)]
        results[device] = [t.cpu() for t in out]
    for a, b in zip(results["cpu"], results["cuda"]):
        assert torch.equal(a, b)
    assert (results["cpu"][0] < 0).any() and (results["cpu"][0] >= 0).any()


DECODE_IN_FRESH_PROCESS = textwrap.dedent("""
    import sys, numpy as np
    from ui2c.runtime.api import decode_frames
    from ui2c.runtime.model import load_codec
    codec = load_codec("ui2c-s", backend="torch", device="cuda", precision="fp16", compile=sys.argv[3] == "1")
    np.save(sys.argv[2], np.stack([f for _, _, f in decode_frames(codec, sys.argv[1])]))
""")


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "inductor"])
def test_cuda_stream_decodes_bit_exact_here_and_in_a_fresh_process(tmp_path, compile):
    codec = load_codec("ui2c-s", backend="torch", device="cuda", precision="fp16", compile=compile)
    stream = tmp_path / "clip.ui2c"
    res = encode_file(codec, demo_clip(), stream, qp=32, max_frames=8, keep_recon=True, progress=False)
    assert codec.producer == f"torch/cuda/fp16/{'inductor' if compile else 'eager'}"
    here = [f for _, _, f in decode_frames(codec, stream)]
    assert len(here) == 8 and all(np.array_equal(a, b) for a, b in zip(here, res.recon))
    out = tmp_path / "fresh.npy"
    subprocess.run([sys.executable, "-c", DECODE_IN_FRESH_PROCESS, str(stream), str(out), str(int(compile))],
                   check=True, timeout=300)
    assert np.array_equal(np.load(out), np.stack(res.recon))


def test_cpp_and_triton_coders_write_the_same_stream(tmp_path):
    codec = load_codec("ui2c-s", backend="torch", device="cuda", precision="fp16")
    streams = {}
    for kind in ("cpu", "triton"):
        from ui2c.runtime.session import Encoder
        from ui2c.export.feeds import clip_frames

        enc = Encoder(codec, 192, 320, 32, entropy=kind)
        units = [u for f in clip_frames(4) for u in enc.push(f)] + enc.flush()
        streams[kind] = [u.packet.payload for u in units]
        enc.close()
    assert streams["cpu"] == streams["triton"]


def test_pinned_pageable_and_device_frames_code_the_same_stream():
    """Pinned frames are uploaded on their own stream; the caller refills one pinned
    buffer after every push, which must not reach a frame already pushed."""
    from ui2c.export.feeds import clip_frames
    from ui2c.runtime.session import Encoder

    codec = load_codec("ui2c-s", backend="torch", device="cuda", precision="fp16")
    frames = [torch.from_numpy(f) for f in clip_frames(6)]
    pinned = torch.empty_like(frames[0]).pin_memory()

    def pinned_refilled():
        for f in frames:
            pinned.copy_(f)
            yield pinned

    streams = {}
    for name, source in (("pageable", iter(frames)), ("device", (f.cuda() for f in frames)),
                         ("pinned", pinned_refilled())):
        enc = Encoder(codec, 192, 320, 32, scene_cut_threshold=None)
        streams[name] = [u.packet.payload for f in source for u in enc.push(f)] + \
            [u.packet.payload for u in enc.flush()]
        enc.close()
    assert streams["pinned"] == streams["pageable"] == streams["device"]
