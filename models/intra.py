"""DCVC-RT's I-frame model ``DMCI`` (spec §1.3), module for module.

UI2C does not need it (its blank-frame adaptor replaces the intra model); it is
here to load the official checkpoint, export it and count what DCVC-RT spends on
I-frames, which is the cost UI2C removes.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .bit_estimator import BitEstimator
from .layers import DepthConvBlock, ResidualBlockUpsample, ResidualBlockWithStride2, replicate_pad_to
from .ops import QP_LEVELS, slot_scale
from .stages import Stage, TensorSpec

CH_SRC, CH_ENC_DEC, CH_Y, CH_Z = 192, 368, 256, 128


class IntraEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc_1 = DepthConvBlock(CH_SRC, CH_ENC_DEC)
        self.enc_2 = nn.Sequential(*[DepthConvBlock(CH_ENC_DEC, CH_ENC_DEC) for _ in range(6)],
                                   nn.Conv2d(CH_ENC_DEC, CH_Y, 3, stride=2, padding=1))


class IntraDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.dec_1 = nn.Sequential(ResidualBlockUpsample(CH_Y, CH_ENC_DEC),
                                   *[DepthConvBlock(CH_ENC_DEC, CH_ENC_DEC) for _ in range(12)])
        self.dec_2 = DepthConvBlock(CH_ENC_DEC, CH_SRC)


class DMCI(nn.Module):
    """Intra codec: 4-step quad spatial prior over channel quarters."""

    def __init__(self):
        super().__init__()
        self.enc = IntraEncoder()
        self.hyper_enc = nn.Sequential(DepthConvBlock(CH_Y, CH_Z), ResidualBlockWithStride2(CH_Z, CH_Z),
                                       ResidualBlockWithStride2(CH_Z, CH_Z))
        self.hyper_dec = nn.Sequential(ResidualBlockUpsample(CH_Z, CH_Z), ResidualBlockUpsample(CH_Z, CH_Z),
                                       DepthConvBlock(CH_Z, CH_Y))
        self.y_prior_fusion = nn.Sequential(DepthConvBlock(CH_Y, 2 * CH_Y), DepthConvBlock(2 * CH_Y, 2 * CH_Y),
                                            DepthConvBlock(2 * CH_Y, 2 * CH_Y), nn.Conv2d(2 * CH_Y, 2 * CH_Y + 2, 1))
        self.y_spatial_prior_reduction = nn.Conv2d(2 * CH_Y + 2, CH_Y, 1)
        for k in (1, 2, 3):
            setattr(self, f"y_spatial_prior_adaptor_{k}", DepthConvBlock(2 * CH_Y, 2 * CH_Y, force_adaptor=True))
        self.y_spatial_prior = nn.Sequential(*[DepthConvBlock(2 * CH_Y, 2 * CH_Y) for _ in range(3)],
                                             nn.Conv2d(2 * CH_Y, 2 * CH_Y, 1))
        self.dec = IntraDecoder()
        self.bit_estimator_z = BitEstimator(QP_LEVELS, CH_Z)
        self.q_scale_enc = nn.Parameter(torch.ones(QP_LEVELS, CH_ENC_DEC, 1, 1))
        self.q_scale_dec = nn.Parameter(torch.ones(QP_LEVELS, CH_ENC_DEC, 1, 1))

    def run_stage(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if name == "encoder":
            x, qp = inputs
            y = self.enc.enc_1(F.pixel_unshuffle(x, 8)) * slot_scale(self.q_scale_enc, qp)
            y = self.enc.enc_2(y)
            z = self.hyper_enc(replicate_pad_to(y, 4))
            return y, torch.clamp(torch.round(z), -128.0, 127.0)
        if name == "prior":
            z_hat, y_like = inputs
            hyper = self.hyper_dec(z_hat)[:, :, : y_like.shape[2], : y_like.shape[3]]
            params = self.y_prior_fusion(hyper)
            return params, self.y_spatial_prior_reduction(params)
        if name.startswith("spatial_prior_"):
            y_hat_so_far, common = inputs
            adaptor = getattr(self, f"y_spatial_prior_adaptor_{name[-1]}")
            scales, means = self.y_spatial_prior(adaptor(torch.cat((y_hat_so_far, common), dim=1))).chunk(2, 1)
            return scales, means
        if name == "decoder":
            y_hat, qp = inputs
            x = self.dec.dec_1(y_hat) * slot_scale(self.q_scale_dec, qp)
            return (torch.clamp(F.pixel_shuffle(self.dec.dec_2(x), 8), 0.0, 1.0),)
        raise KeyError(f"unknown stage {name!r}")

    def stages(self) -> dict[str, Stage]:
        from .conditional import _StageModule

        at = lambda name, ch, k: TensorSpec(name, (1, ch, f"H/{k}", f"W/{k}"))  # noqa: E731
        qp = TensorSpec("qp", (1,), "int32")
        z = TensorSpec("z_hat", (1, CH_Z, "ceil(H/64)", "ceil(W/64)"))
        frame = TensorSpec("frame", (1, 3, "H", "W"))
        sp = (at("y_hat_so_far", CH_Y, 16), at("common", CH_Y, 16))
        specs = [
            ("encoder", (frame, qp), (at("y", CH_Y, 16), z), 1, 0),
            ("prior", (z, at("y_like", CH_Y, 16)), (at("params", 2 * CH_Y + 2, 16), at("common", CH_Y, 16)), 1, 1),
            *[(f"spatial_prior_{k}", sp, (at("scales", CH_Y, 16), at("means", CH_Y, 16)), 1, 1) for k in (1, 2, 3)],
            ("decoder", (at("y_hat", CH_Y, 16), qp), (frame,), 1, 1),
        ]
        return {n: Stage(n, _StageModule(self, n), i, o, e, d) for n, i, o, e, d in specs}
