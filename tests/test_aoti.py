"""AOTInductor engines on CPU: `build-engines --target aoti`, the sidecar checks, the
aoti backend.  Packages are built once into build/test_aoti (git-ignored; kept
between runs, rebuilt only when stale) with the shipped ui2c-s weights."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ui2c.engines import aoti
from ui2c.engines.aoti_graphs import latent_graphs
from ui2c.errors import EngineError, UsageError
from ui2c.models.checkpoint import load_weights
from ui2c.models.presets import build_model
from ui2c.shipped import default_weights
from ui2c.models.stages import resolve_shape
from ui2c.entropy import latent

ENGINES = Path(__file__).resolve().parents[1] / "build" / "test_aoti" / "ui2c-s"


def build_test_engines() -> Path:
    """The test engine directory, built (or checked up to date) once per run."""
    aoti.build_aoti("ui2c-s", ENGINES, "cpu")
    return ENGINES


@pytest.fixture(scope="session")
def engines() -> Path:
    return build_test_engines()


@pytest.fixture(scope="module")
def network():
    net = build_model("ui2c-s").eval()
    load_weights(net, default_weights("ui2c-s"))
    return net


def _feed(specs, height: int, width: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for s in specs:
        shape = resolve_shape(s, height, width)
        out.append(torch.randint(0, 8, shape, dtype=torch.int32, generator=gen) if s.dtype == "int32"
                   else torch.rand(shape, generator=gen))
    return out


@pytest.mark.parametrize("size", [(64, 64), (80, 112)])
def test_stage_packages_match_eager_at_any_size(engines, network, size):
    """One package per stage serves every padded size (dynamic H/W) and matches eager."""
    for name, stage in network.stages().items():
        model = torch._inductor.aoti_load_package(str(aoti.package_path(engines, name, "cpu")))
        feed = _feed(stage.inputs, *size, seed=1)
        with torch.inference_mode():
            got, want = model(*feed), stage.module(*feed)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            assert torch.allclose(g, w, atol=2e-5, rtol=1e-4), name


def test_latent_packages_equal_the_runtime_latent_codec(engines):
    """The compiled latent graphs compute exactly what ui2c.entropy.latent computes."""
    ch = 64
    gen = torch.Generator().manual_seed(2)
    y = torch.randn(1, ch, 5, 7, generator=gen) * 4
    means, scales = torch.randn(1, ch, 5, 7, generator=gen), torch.rand(1, ch, 5, 7, generator=gen) * 3
    load = lambda name: torch._inductor.aoti_load_package(str(aoti.package_path(engines, "latent_" + name, "cpu")))  # noqa: E731
    mask0, mask1 = load("masks")(y)
    ref0, ref1 = latent.checkerboard_masks(ch, 5, 7)
    assert torch.equal(mask0, ref0) and torch.equal(mask1, ref1)
    idx, sym, part = load("encode_step")(y, means, scales, mask0)
    want_idx = latent.step_indexes(scales, mask0)
    want_sym, want_part = latent.quantize_step(y, means, mask0, want_idx)
    assert torch.equal(idx, want_idx) and torch.equal(sym, want_sym) and torch.equal(part, want_part)
    assert (idx < 0).any() and (idx >= 0).any()
    assert torch.equal(load("step_indexes")(scales, mask1)[0], latent.step_indexes(scales, mask1))
    (deq,) = load("dequantize")(sym.view(ch // 2, 5, 7), means, mask0)
    assert torch.equal(deq, latent.dequantize_step(sym, means, mask0))
    z = torch.zeros(1, 64, 2, 3)
    (zi,) = load("z_indexes")(z, torch.tensor([9, 17], dtype=torch.int32))
    assert torch.equal(zi, latent.z_indexes(tuple(z.shape), 9))
    assert set(latent_graphs(ch, 64)) == {"masks", "encode_step", "step_indexes", "dequantize", "z_indexes"}


def _copy(engines: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "engines"
    shutil.copytree(engines, dst)
    return dst


def _edit_sidecar(package: Path, **changes) -> None:
    side = aoti.sidecar_path(package)
    record = json.loads(side.read_text())
    record.update(changes)
    side.write_text(json.dumps(record))


def test_stale_foreign_and_replaced_packages_are_refused_with_one_line(engines, network, tmp_path):
    from ui2c.models.checkpoint import weights_fingerprint
    from ui2c.runtime.backends.aoti_backend import AotiBackend

    dst = _copy(engines, tmp_path)
    backend = AotiBackend(dst, "ui2c-s", weights_fingerprint(network))
    assert backend.describe() == "aoti/cpu/fp32/aoti"
    backend.check_all(list(network.stages()))
    _edit_sidecar(aoti.package_path(dst, "prior", "cpu"), code_fingerprint="0" * 16)
    _edit_sidecar(aoti.package_path(dst, "decoder", "cpu"), weights_fingerprint="f" * 16)
    with open(aoti.package_path(dst, "recon", "cpu"), "ab") as f:
        f.write(b"\0")
    for stage, words in [("prior", "is stale: code_fingerprint"), ("decoder", "is foreign: weights_fingerprint"),
                         ("recon", "does not match the sha256")]:
        with pytest.raises(EngineError, match=words) as err:
            backend.runner(stage)
        assert "\n" not in str(err.value)
    _edit_sidecar(aoti.package_path(dst, "adaptor", "cpu"),
                  device={"type": "cuda", "gpu_name": "NVIDIA H100", "compute_capability": "9.0"})
    with pytest.raises(EngineError, match="is foreign: device"):
        backend.runner("adaptor")
    for package in (aoti.package_path(dst, "encoder", "cpu"), aoti.sidecar_path(aoti.package_path(dst, "encoder", "cpu"))):
        shutil.copy(package, str(package).replace("encoder", "context"))  # a package renamed to another stage
    with pytest.raises(EngineError, match="is foreign: graph 'encoder' \\(want 'context'\\)"):
        backend.runner("context")
    with pytest.raises(EngineError, match="does not exist"):
        AotiBackend(tmp_path / "missing", "ui2c-s", "x")
    # A build never overwrites a foreign package, or one of unknown origin, unless forced
    # (refused before compiling).
    aoti.sidecar_path(aoti.package_path(dst, "recon", "cpu")).unlink()
    for stage, words in [("decoder", "weights_fingerprint"), ("recon", "no sidecar")]:
        with pytest.raises(EngineError, match=f"refusing to overwrite .*{stage}.*{words}.*pass --force"):
            aoti.build_aoti("ui2c-s", dst, "cpu", only=(stage,))


def test_cli_target_aoti_and_onnx_requirement():
    from ui2c.engines.cli import main

    with pytest.raises(EngineError, match="--target trt needs --onnx"):
        main(["--model", "ui2c-s", "--target", "trt", "-o", "x"])
    for target, options, named in [("aoti", ["--onnx", "e", "--profiles", "720p"], "--onnx, --profiles do not"),
                                   ("trt", ["--device", "cuda"], "--device does not"),
                                   ("trt-rtx", ["--jobs", "2", "--allow-random"], "--allow-random, --jobs do not"),
                                   ("trt", ["--compute-capabilities", "SM86"], "--compute-capabilities does not")]:
        with pytest.raises(UsageError, match=f"{named} apply to --target {target}"):  # never silently ignored
            main(["--model", "ui2c-s", "--target", target, "-o", "x", *options])
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="no CUDA device visible"):
            main(["--model", "ui2c-s", "--target", "aoti", "--device", "cuda", "-o", "x", "--allow-random"])


def test_aoti_backend_codes_a_clip_through_load_codec(engines, tmp_path):
    """The aoti backend behind the sessions: encode, decode, same frames as the encoder's recon."""
    from ui2c.runtime.model import load_codec
    from ui2c.runtime.session import Decoder, Encoder

    codec = load_codec("ui2c-s", backend="aoti", engine_dir=engines)
    assert codec.producer == "aoti/cpu/fp32/aoti"
    rng = np.random.default_rng(0)
    frames = [np.clip(rng.random((3, 48, 64), dtype=np.float32) * 0.2 + 0.4 + 0.02 * i, 0, 1) for i in range(3)]
    encoder = Encoder(codec, 48, 64, qp=30, reconstruct=True)
    units = [u for f in frames for u in encoder.push(f)] + encoder.flush()
    decoder = Decoder(codec, 48, 64)
    recon = [r for u in units for r in u.recon]
    decoded = [f for u in units for d in decoder.decode(u.packet) for f in d.frames]
    decoded += [f for d in decoder.flush() for f in d.frames]
    assert len(decoded) == len(recon) == 3
    for a, b in zip(recon, decoded):
        assert torch.equal(a, b)
    for height, width in ((16, 64), (48, 4112)):  # outside the packages' dynamic range: refused before any work
        with pytest.raises(EngineError, match=f"padded frame size {width}x{height} is outside the 32..4096 x 32..4096"):
            Encoder(codec, height, width, qp=30)
