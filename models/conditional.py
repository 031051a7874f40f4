"""The conditional codec shared by DCVC-RT's P-frame model and UI2C.

Both code a *unit* of ``frames`` frames (1 for DCVC-RT ``DMC``, 2 for the UI2C
pair) against a reference feature.  The frames are stacked on channels and
pixel-unshuffled by 8, coded into one latent y at 1/16 with a hyperprior z at 1/64,
a temporal prior and a two-step checkerboard spatial prior.  The decoder rebuilds
one fused feature (the next reference) and every frame from it.

With ``frames=1`` and the DCVC-RT widths, module names and shapes equal the official
``DMC`` state_dict key for key (spec §1.2), so official checkpoints load unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from .bit_estimator import BitEstimator
from .layers import DepthConvBlock, ResidualBlockUpsample, ResidualBlockWithStride2, SubpelConv2x, replicate_pad_to
from .ops import QP_ROWS, slot_scale
from .stages import Stage, TensorSpec

PIXELS_PER_FRAME_CH = 3 * 8 * 8  # 3 colour planes pixel-unshuffled by 8


@dataclass(frozen=True)
class ConditionalConfig:
    """Widths and depths; ``frames`` is the number of frames coded together."""

    frames: int
    ch_d: int  # feature / context width at 1/8
    ch_y: int  # latent channels at 1/16
    ch_z: int  # hyper-latent channels at 1/64
    ch_fusion: int  # y_prior_fusion width
    ch_spatial: int  # y_spatial_prior width
    ch_recon: int  # recon_generation_net width
    ch_temporal: int  # temporal prior channels at 1/16
    recon_blocks: int = 4  # DCBs in the shared recon trunk (the first one adapts ch_d→ch_recon)
    head_blocks: int = 0  # per-frame DCBs before each frame's head (pair model only)
    fusion_blocks: int = 3


class FeatureExtractor(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Sequential(*[DepthConvBlock(ch, ch) for _ in range(2)])
        self.conv2 = nn.Sequential(*[DepthConvBlock(ch, ch) for _ in range(4)])


class Encoder(nn.Module):
    def __init__(self, cfg: ConditionalConfig):
        super().__init__()
        d = cfg.ch_d
        self.conv1 = nn.Conv2d(PIXELS_PER_FRAME_CH * cfg.frames, d, 1)
        self.conv2 = nn.Sequential(DepthConvBlock(2 * d, d), DepthConvBlock(d, d))
        self.conv3 = DepthConvBlock(d, d)
        self.down = nn.Conv2d(d, cfg.ch_y, 3, stride=2, padding=1)

    def forward(self, frames: torch.Tensor, ctx: torch.Tensor, q_encoder: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.pixel_unshuffle(frames, 8))
        x = self.conv3(self.conv2(torch.cat((x, ctx), dim=1)))
        return self.down(x * q_encoder)


class Decoder(nn.Module):
    def __init__(self, cfg: ConditionalConfig):
        super().__init__()
        d = cfg.ch_d
        self.up = SubpelConv2x(cfg.ch_y, d, 3, padding=1)
        self.conv1 = nn.Sequential(DepthConvBlock(2 * d, d), DepthConvBlock(d, d), DepthConvBlock(d, d))
        self.conv2 = nn.Conv2d(d, d, 1)

    def forward(self, y_hat: torch.Tensor, ctx: torch.Tensor, q_decoder: torch.Tensor) -> torch.Tensor:
        x = self.conv1(torch.cat((self.up(y_hat), ctx), dim=1))
        return self.conv2(x) * q_decoder


class HyperEncoder(nn.Module):
    def __init__(self, cfg: ConditionalConfig):
        super().__init__()
        z = cfg.ch_z
        self.conv = nn.Sequential(DepthConvBlock(cfg.ch_y, z), ResidualBlockWithStride2(z, z), ResidualBlockWithStride2(z, z))


class HyperDecoder(nn.Module):
    def __init__(self, cfg: ConditionalConfig):
        super().__init__()
        z = cfg.ch_z
        self.conv = nn.Sequential(ResidualBlockUpsample(z, z), ResidualBlockUpsample(z, z), DepthConvBlock(z, cfg.ch_y))


class PriorFusion(nn.Module):
    def __init__(self, cfg: ConditionalConfig):
        super().__init__()
        f, c_in = cfg.ch_fusion, cfg.ch_y + cfg.ch_temporal
        blocks = [DepthConvBlock(c_in, f)] + [DepthConvBlock(f, f) for _ in range(cfg.fusion_blocks - 1)]
        self.conv = nn.Sequential(*blocks, nn.Conv2d(f, 3 * cfg.ch_y, 1))


class SpatialPrior(nn.Module):
    def __init__(self, cfg: ConditionalConfig):
        super().__init__()
        s = cfg.ch_spatial
        self.conv = nn.Sequential(DepthConvBlock(4 * cfg.ch_y, s), DepthConvBlock(s, s), nn.Conv2d(s, 2 * cfg.ch_y, 1))


class ReconGeneration(nn.Module):
    """Pixel synthesis.  One frame: DCVC-RT's ``conv`` trunk → ×q_recon → ``head``.

    A pair: the trunk is shared, then each frame slot has its own branch
    (``heads.s``: DCBs, ×its own q_recon row, 1×1 conv to 192 channels), the
    "frame-specific decoders" that let each slot's qp steer its own frame.
    """

    def __init__(self, cfg: ConditionalConfig):
        super().__init__()
        r = cfg.ch_recon
        self.conv = nn.Sequential(DepthConvBlock(cfg.ch_d, r), *[DepthConvBlock(r, r) for _ in range(cfg.recon_blocks - 1)])
        if cfg.frames == 1:
            self.head = nn.Conv2d(r, PIXELS_PER_FRAME_CH, 1)
        else:
            self.heads = nn.ModuleList(
                nn.Sequential(*[DepthConvBlock(r, r) for _ in range(cfg.head_blocks)], nn.Conv2d(r, PIXELS_PER_FRAME_CH, 1))
                for _ in range(cfg.frames)
            )

    def forward(self, feature: torch.Tensor, q_recon: list[torch.Tensor], clamp: bool = True) -> list[torch.Tensor]:
        """Frames in [0, 1]; ``clamp=False`` (training) keeps gradients for pixels
        outside the range, which a clamp would cut off for good."""
        trunk = self.conv(feature)
        if not hasattr(self, "heads"):
            outs = [self.head(trunk * q_recon[0])]
        else:
            outs = [head[-1]((head[:-1](trunk) if len(head) > 1 else trunk) * q) for head, q in zip(self.heads, q_recon)]
        frames = [F.pixel_shuffle(x, 8) for x in outs]
        return [torch.clamp(x, 0.0, 1.0) for x in frames] if clamp else frames


class ConditionalCodec(nn.Module):
    """Networks of the conditional codec; see ``stages()`` for how they are run."""

    def __init__(self, cfg: ConditionalConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.ch_d
        self.feature_adaptor_i = DepthConvBlock(PIXELS_PER_FRAME_CH, d)
        self.feature_adaptor_p = nn.Conv2d(d, d, 1)
        self.feature_extractor = FeatureExtractor(d)
        self.encoder = Encoder(cfg)
        self.hyper_encoder = HyperEncoder(cfg)
        self.hyper_decoder = HyperDecoder(cfg)
        self.temporal_prior_encoder = ResidualBlockWithStride2(d, cfg.ch_temporal)
        self.y_prior_fusion = PriorFusion(cfg)
        self.y_spatial_prior = SpatialPrior(cfg)
        self.decoder = Decoder(cfg)
        self.recon_generation_net = ReconGeneration(cfg)
        self.bit_estimator_z = BitEstimator(QP_ROWS, cfg.ch_z)
        ones = lambda c: nn.Parameter(torch.ones(QP_ROWS, c, 1, 1))  # noqa: E731
        self.q_encoder, self.q_decoder, self.q_feature = ones(d), ones(d), ones(d)
        if cfg.frames == 1:
            self.q_recon = ones(cfg.ch_recon)
        else:
            self.q_recon = nn.Parameter(torch.ones(cfg.frames, QP_ROWS, cfg.ch_recon, 1, 1))

    # -- network pieces, each a pure function of tensors (export- and meta-friendly)
    def adapt_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """First-frame adaptor: a pixel frame (a blank one at reset points) → reference."""
        return self.feature_adaptor_i(F.pixel_unshuffle(frame, 8))

    def context(self, ref: torch.Tensor, qp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference → (ctx at 1/8, temporal prior at 1/16)."""
        x1 = self.feature_extractor.conv1(ref)
        ctx = self.feature_extractor.conv2(x1)
        temporal = self.temporal_prior_encoder(x1 * slot_scale(self.q_feature, qp))
        return ctx, temporal

    def analysis(self, frames: torch.Tensor, ctx: torch.Tensor, qp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames → (y, z before rounding); z comes from y padded to a multiple of 4."""
        y = self.encoder(frames, ctx, slot_scale(self.q_encoder, qp))
        z = self.hyper_encoder.conv(replicate_pad_to(y, 4))
        return y, z

    def prior(self, z_hat: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
        """(z_hat, temporal prior) → fused params (q_dec, scales, means stacked)."""
        hyper = self.hyper_decoder.conv(z_hat)[:, :, : temporal.shape[2], : temporal.shape[3]]
        return self.y_prior_fusion.conv(torch.cat((hyper, temporal), dim=1))

    def spatial_prior(self, y_hat0: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scales, means = self.y_spatial_prior.conv(torch.cat((y_hat0, params), dim=1)).chunk(2, 1)
        return scales, means

    def synthesis(self, y_hat: torch.Tensor, ctx: torch.Tensor, qp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y_hat → (feature for recon, adapted reference for the next unit).

        ``feature_adaptor_p`` runs here, once, instead of at the start of the next
        unit: the stored reference is then ready for ``context`` and a reset point
        only has to swap in ``adapt_frame``'s output."""
        feature = self.decoder(y_hat, ctx, slot_scale(self.q_decoder, qp))
        return feature, self.feature_adaptor_p(feature)

    def reconstruct(self, feature: torch.Tensor, qp: torch.Tensor, clamp: bool = True) -> list[torch.Tensor]:
        if self.cfg.frames == 1:
            q = [slot_scale(self.q_recon, qp)]
        else:
            q = [self.q_recon[s].index_select(0, qp[s : s + 1]) for s in range(self.cfg.frames)]
        return self.recon_generation_net(feature, q, clamp)

    @staticmethod
    def split_params(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fusion output → (q_dec clamped at 0.5, scales, means)."""
        q_dec, scales, means = params.chunk(3, 1)
        return torch.clamp_min(q_dec, 0.5), scales, means

    # -- stages: what the exporter, the backends and the complexity counter run
    def stages(self) -> dict[str, Stage]:
        cfg = self.cfg
        d, y, f = cfg.ch_d, cfg.ch_y, cfg.frames
        img = lambda name, ch: TensorSpec(name, (1, ch, "H", "W"))  # noqa: E731
        at = lambda name, ch, k: TensorSpec(name, (1, ch, f"H/{k}", f"W/{k}"))  # noqa: E731
        qp = TensorSpec("qp", (f,), "int32")
        z = TensorSpec("z_hat", (1, cfg.ch_z, "ceil(H/64)", "ceil(W/64)"))
        frame_names = [f"frame{s}" for s in range(f)]
        specs = [
            ("adaptor", (img("frame", 3),), (at("ref", d, 8),), 0, 0, "reset points only (blank frame)"),
            ("context", (at("ref", d, 8), qp), (at("ctx", d, 8), at("temporal", cfg.ch_temporal, 16)), 1, 1, ""),
            ("encoder", (img("frames", 3 * f), at("ctx", d, 8), qp), (at("y", y, 16), z), 1, 0, ""),
            ("prior", (z, at("temporal", cfg.ch_temporal, 16)),
             (at("q_dec", y, 16), at("scales", y, 16), at("means", y, 16), at("params", 3 * y, 16)), 1, 1, ""),
            ("spatial_prior", (at("y_hat0", y, 16), at("params", 3 * y, 16)), (at("scales", y, 16), at("means", y, 16)), 1, 1, ""),
            ("decoder", (at("y_hat", y, 16), at("ctx", d, 8), qp), (at("feature", d, 8), at("ref", d, 8)), 1, 1, ""),
            ("recon", (at("feature", d, 8), qp), tuple(img(n, 3) for n in frame_names), 0, 1, ""),
        ]
        return {
            name: Stage(name, _StageModule(self, name), ins, outs, enc, dec, note)
            for name, ins, outs, enc, dec, note in specs
        }

    def run_stage(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run one stage with the same inputs and outputs as its exported graph."""
        if name == "adaptor":
            return (self.adapt_frame(inputs[0]),)
        if name == "context":
            return self.context(*inputs)
        if name == "encoder":
            y, z = self.analysis(*inputs)
            return y, torch.clamp(torch.round(z), -128.0, 127.0)
        if name == "prior":
            params = self.prior(*inputs)
            return (*self.split_params(params), params)
        if name == "spatial_prior":
            return self.spatial_prior(*inputs)
        if name == "decoder":
            return self.synthesis(*inputs)
        if name == "recon":
            return tuple(self.reconstruct(*inputs))
        raise KeyError(f"unknown stage {name!r}")


class _StageModule(nn.Module):
    """Wraps one stage of a codec as a module with positional inputs (for export)."""

    def __init__(self, codec: nn.Module, name: str):
        super().__init__()
        self.codec = codec
        self.name = name

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.codec.run_stage(self.name, *inputs)
