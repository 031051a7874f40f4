"""Widening the latent: the wider model codes what the narrow one coded, and can learn more."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from ui2c.entropy import latent
from ui2c.models.conditional import ConditionalCodec, ConditionalConfig
from ui2c.models.ops import checkerboard_masks
from ui2c.models.presets import UI2C_S
from ui2c.training import widen
from ui2c.training.unit import code_pair

SHIPPED = Path(__file__).resolve().parents[1] / "ui2c" / "assets" / "ui2c-s.pt"
# ch_y == ch_z as in both pair presets, so the hyper networks' end blocks gain adaptors
SMALL = ConditionalConfig(frames=2, ch_d=32, ch_y=16, ch_z=16, ch_fusion=24, ch_spatial=24, ch_recon=32,
                          ch_temporal=32, recon_blocks=2, head_blocks=1)


@pytest.fixture(scope="module")
def pair():
    """A narrow model with every parameter perturbed (no zero bias or unit table left),
    and its widening to twice the latent."""
    torch.manual_seed(3)
    narrow = ConditionalCodec(SMALL)
    with torch.no_grad():
        for p in narrow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    wide = ConditionalCodec(dataclasses.replace(SMALL, ch_y=32))
    wide.load_state_dict(widen.widen_state_dict(narrow.state_dict(), SMALL, 32))
    return narrow.eval(), wide.eval()


def test_old_channels_keep_their_checkerboard_step():
    old_at = widen.half_major_positions(16, 32)
    for narrow_mask, wide_mask in zip(checkerboard_masks(16, 5, 7), checkerboard_masks(32, 5, 7)):
        assert torch.equal(wide_mask[:, old_at], narrow_mask)


def test_widened_model_codes_what_the_narrow_one_coded(pair):
    narrow, wide = pair
    old_at = widen.half_major_positions(16, 32)
    added = torch.ones(32, dtype=torch.bool)
    added[old_at] = False
    torch.manual_seed(4)
    frames, qp = torch.rand(1, 6, 128, 128), torch.tensor([20, 28])
    ref = narrow.adapt_frame(torch.rand(1, 3, 128, 128))
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # noqa: E731
    with torch.no_grad():
        (ctx, temporal), wide_ctx = narrow.context(ref, qp), wide.context(ref, qp)
        y, z_hat = narrow.run_stage("encoder", frames, ctx, qp)
        wide_y, wide_z = wide.run_stage("encoder", frames, wide_ctx[0], qp)
        assert torch.equal(wide_y[:, added], torch.zeros_like(wide_y[:, added]))
        close(wide_y[:, old_at], y)
        close(wide_z, z_hat)
        q_dec, scales, means, params = narrow.run_stage("prior", z_hat, temporal)
        wide_q, wide_scales, wide_means, wide_params = wide.run_stage("prior", wide_z, wide_ctx[1])
        for old, new in ((q_dec, wide_q), (scales, wide_scales), (means, wide_means)):
            close(new[:, old_at], old)
        assert torch.all(wide_q[:, added] == 1.0) and not wide_scales[:, added].any() and not wide_means[:, added].any()
        y_hat0 = torch.round(y)
        wide_y_hat0 = torch.zeros_like(wide_y)
        wide_y_hat0[:, old_at] = y_hat0
        for old, new in zip(narrow.run_stage("spatial_prior", y_hat0, params),
                            wide.run_stage("spatial_prior", wide_y_hat0, wide_params)):
            close(new[:, old_at], old)
            assert not new[:, added].any()
        for old, new in zip(narrow.run_stage("decoder", y_hat0, ctx, qp), wide.run_stage("decoder", wide_y_hat0, wide_ctx[0], qp)):
            close(new, old)
    # zero scales: the runtime skips every new channel, so the stream codes nothing more;
    # folded, each half's new channels are the second half of the 16 coded rows
    for mask in checkerboard_masks(32, *wide_scales.shape[2:]):
        indexes = latent.step_indexes(wide_scales, mask).view(16, -1)
        assert torch.all(indexes[8:] == -1)


def test_training_reaches_the_new_encoder_filters(pair):
    _, wide = pair
    wide.train()
    torch.manual_seed(5)
    frames = torch.rand(2, 6, 64, 64)
    out = code_pair(wide, frames, wide.adapt_frame(torch.rand(2, 3, 64, 64)), torch.tensor([[10, 18], [40, 44]]))
    loss = sum(((x - frames[:, 3 * s : 3 * s + 3]) ** 2).mean() for s, x in enumerate(out["recon"])) + out["bits"].mean()
    loss.backward()
    added = torch.ones(32, dtype=torch.bool)
    added[widen.half_major_positions(16, 32)] = False
    assert wide.encoder.down.weight.grad[added].abs().sum() > 0
    wide.eval()


def test_cli_widens_an_export_and_refuses_what_it_cannot(tmp_path, capsys):
    out = tmp_path / "wide.pt"
    assert widen.main([str(SHIPPED), str(out)]) == 0
    blob = torch.load(out, weights_only=True)
    assert blob["meta"]["widened"] == {"from": "ui2c-s.pt", "ch_y": [64, 128]}
    ConditionalCodec(dataclasses.replace(UI2C_S, ch_y=128)).load_state_dict(blob["state_dict"])  # strict
    assert widen.main([str(SHIPPED), str(out)]) == 2  # an existing output stays untouched
    assert "exists" in capsys.readouterr().err
    assert widen.main([str(SHIPPED), str(tmp_path / "odd.pt"), "--ch-y", "65"]) == 2
    assert "even and above 64" in capsys.readouterr().err
    torch.save({"state_dict": blob["state_dict"]}, tmp_path / "bare.pt")
    assert widen.main([str(tmp_path / "bare.pt"), str(tmp_path / "x.pt")]) == 2
    assert "not a ui2c pair-model export" in capsys.readouterr().err
    assert not (tmp_path / "odd.pt").exists() and not (tmp_path / "x.pt").exists()
