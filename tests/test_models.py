"""Networks: DCVC-RT's state_dict manifest, building blocks against NumPy float64,
checkpoint loading errors, and the stage contract."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ui2c.errors import CheckpointError
from ui2c.models.checkpoint import load_weights
from ui2c.models.layers import DepthConvBlock, ResidualBlockUpsample, ResidualBlockWithStride2, SubpelConv2x, WSiLU
from ui2c.models.ops import frame_qps, slot_scale
from ui2c.models.presets import build_intra_model, build_model

MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "reference" / "dcvc_rt_state_dict.tsv"


def _manifest(model_name: str) -> dict[str, tuple[int, ...]]:
    rows = [line.rstrip("\n").split("\t") for line in MANIFEST.read_text().splitlines() if not line.startswith("#")]
    return {k: tuple(int(v) for v in s.split(",")) for k, s, m in rows if m == model_name}


@pytest.mark.skipif(not MANIFEST.is_file(), reason=f"needs DCVC-RT's state_dict manifest {MANIFEST} (shared reference data)")
@pytest.mark.parametrize("name, build", [("DMC", lambda: build_model("dcvc-rt")),
                                         ("DMCI", lambda: build_intra_model("dcvc-rt"))])
def test_dcvc_rt_state_dict_matches_manifest(name, build):
    expected = _manifest(name)
    got = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    assert got == expected


# ---------------------------------------------------------------- NumPy float64 references
def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0, groups: int = 1) -> np.ndarray:
    """Direct convolution in float64 (x: C,H,W)."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    c_out, c_in_g, kh, kw = w.shape
    h = (x.shape[1] - kh) // stride + 1
    wd = (x.shape[2] - kw) // stride + 1
    out = np.zeros((c_out, h, wd))
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        xs = x[g * c_in_g : (g + 1) * c_in_g]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, i : i + stride * h : stride, j : j + stride * wd : stride]
                out[o] += np.tensordot(w[o, :, i, j], patch, axes=1)
        out[o] += b[o]
    return out


def _wsilu(x):
    return x / (1 + np.exp(-4 * x))


def _conv_mod(m, x, **kw):
    return _conv(x, _np(m.weight), _np(m.bias), stride=m.stride[0], pad=m.padding[0], groups=m.groups, **kw)


def _dcb(m: DepthConvBlock, x):
    if m.adaptor is not None:
        x = _conv_mod(m.adaptor, x)
    t = _conv_mod(m.dc[3], _conv_mod(m.dc[2], _wsilu(_conv_mod(m.dc[0], x)))) + x
    h = _wsilu(_conv_mod(m.ffn[0], t))
    c = h.shape[0] // 2
    u = _conv_mod(m.ffn[2], h[:c] + h[c:]) + t
    return u + x if m.shortcut else u


def _pixel_shuffle(x, r):
    c, h, w = x.shape
    return x.reshape(c // (r * r), r, r, h, w).transpose(0, 3, 1, 4, 2).reshape(c // (r * r), h * r, w * r)


def _randomize(module):
    torch.manual_seed(3)
    for p in module.parameters():
        torch.nn.init.normal_(p, 0, 0.3)
    return module


def _run(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x[None]).float())[0].double().numpy()


@pytest.mark.parametrize("shortcut, in_ch", [(False, 6), (True, 8), (False, 8)])
def test_depth_conv_block_matches_float64(shortcut, in_ch):
    m = _randomize(DepthConvBlock(in_ch, 8, shortcut=shortcut))
    x = np.random.default_rng(0).normal(size=(in_ch, 5, 7))
    np.testing.assert_allclose(_run(m, x), _dcb(m, x), rtol=1e-4, atol=1e-4)


def test_wsilu_and_subpel_and_residual_blocks_match_float64():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 6, 6))
    np.testing.assert_allclose(_run(WSiLU(), x), _wsilu(x), rtol=1e-5, atol=1e-6)
    sub = _randomize(SubpelConv2x(4, 3, 3, padding=1))
    np.testing.assert_allclose(_run(sub, x), _pixel_shuffle(_conv_mod(sub.conv[0], x), 2), rtol=1e-4, atol=1e-4)
    rbs = _randomize(ResidualBlockWithStride2(4, 6))
    np.testing.assert_allclose(_run(rbs, x), _dcb(rbs.conv, _conv_mod(rbs.down, x)), rtol=1e-4, atol=1e-4)
    rbu = _randomize(ResidualBlockUpsample(4, 3))
    ref = _dcb(rbu.conv, _pixel_shuffle(_conv_mod(rbu.up.conv[0], x), 2))
    np.testing.assert_allclose(_run(rbu, x), ref, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- qp tables
def test_hierarchical_qps_give_the_later_frame_the_higher_qp():
    assert [frame_qps(20, t, 2) for t in (0, 2, 4, 6, 8)] == [[20, 28], [20, 24], [20, 24], [20, 24], [20, 28]]
    with pytest.raises(ValueError):
        frame_qps(64, 0, 2)


def test_slot_scale_reads_one_row_per_frame_slot():
    table = torch.arange(72 * 4, dtype=torch.float32).reshape(72, 4, 1, 1)
    got = slot_scale(table, torch.tensor([3, 10], dtype=torch.int32)).flatten().tolist()
    assert got == [3 * 4 + 0, 3 * 4 + 1, 10 * 4 + 2, 10 * 4 + 3]
    assert slot_scale(table, torch.tensor([5])).flatten().tolist() == [20, 21, 22, 23]


# ---------------------------------------------------------------- checkpoints
def test_official_checkpoint_wrappers_and_prefix_load(tmp_path):
    src = _randomize(build_model("dcvc-rt"))
    path = tmp_path / "cvpr2025_video.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)
    dst = build_model("dcvc-rt")
    load_weights(dst, path)
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), k


def test_checkpoint_errors_count_and_name_the_bad_keys_in_one_line(tmp_path):
    state = build_model("dcvc-rt").state_dict()
    state.pop("q_encoder")
    state["extra.weight"] = torch.zeros(1)
    state["feature_adaptor_p.bias"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save({"net": state}, path)
    with pytest.raises(CheckpointError) as err:
        load_weights(build_model("dcvc-rt"), path)
    msg = str(err.value)
    assert "1 missing keys (q_encoder)" in msg and "1 unexpected keys (extra.weight)" in msg
    assert "feature_adaptor_p.bias: checkpoint (3,)" in msg and "\n" not in msg
    with pytest.raises(CheckpointError) as err:  # another model's checkpoint: hundreds of keys, one short line
        load_weights(build_model("dcvc-rt"), _saved(build_model("ui2c-s").state_dict(), tmp_path / "other.pth"))
    assert "\n" not in str(err.value) and "more" in str(err.value) and len(str(err.value)) < 1000
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(build_model("dcvc-rt"), tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_weights(build_model("dcvc-rt"), tmp_path / "junk.pth")


def _saved(state: dict, path):
    torch.save(state, path)
    return path
