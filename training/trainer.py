"""CPU trainer for the pair models: mixed-reference training, as in the UI2C paper.

Each sample is a window of 5 frames: frame 0 only provides the reference, frames
1–4 are coded as two pairs.  The first pair's reference is drawn per sample from
{blank frame, previous ground-truth frame, a noisy copy of it}, always through the
first-frame adaptor, so the model learns to judge how far to trust its reference
and to code intra when it cannot.  The second pair uses the first pair's decoded
reference.  qp is drawn per iteration with the hierarchical offsets; each frame's
distortion is weighted by λ of its own qp, so the later frame of a pair (higher qp)
counts more.  Loss = Σ λ(qp)·YUV-MSE + bits per pixel.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..models.conditional import train_unit
from ..models.ops import QP_LEVELS, frame_qps
from ..models.presets import PAIR_PRESETS, build_model
from .data import ClipSampler, load_windows

LAMBDA_MIN, LAMBDA_MAX = 32.0, 2048.0


def lambda_for_qp(qp: int) -> float:
    """Geometric λ over qp 0..63, extended by the same step to the offset rows."""
    step = math.log(LAMBDA_MAX / LAMBDA_MIN) / (QP_LEVELS - 1)
    return LAMBDA_MIN * math.exp(step * qp)


def yuv_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(6·MSE_Y + MSE_U + MSE_V)/8 per sample, the weighting of YUV-PSNR."""
    per_plane = ((x_hat - x) ** 2).mean(dim=(2, 3))
    return (6 * per_plane[:, 0] + per_plane[:, 1] + per_plane[:, 2]) / 8


@dataclass
class TrainConfig:
    preset: str = "ui2c-s"
    video: str = "../shared/data/bbb.mp4"
    out_dir: str = "work_dirs/ui2c-s"
    minutes: float = 120.0
    batch: int = 4
    crop: int = 128
    lr: float = 3e-4
    window_stride: int = 40
    checkpoint_every: int = 50
    seed: int = 0


PER_QP_LR_FACTOR = 10.0


def _param_groups(model, lr: float) -> list[dict]:
    """Per-qp tables (q_* rows and the z prior's rows) get a 10× learning rate: each
    row is only touched when its qp is drawn (1 iteration in 64), so at the shared
    rate they would barely leave their initial value in a CPU-sized run."""
    per_qp = [p for n, p in model.named_parameters() if n.startswith(("q_", "bit_estimator_z."))]
    ids = {id(p) for p in per_qp}
    shared = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": shared, "base_lr": lr, "lr": lr},
            {"params": per_qp, "base_lr": lr * PER_QP_LR_FACTOR, "lr": lr * PER_QP_LR_FACTOR}]


def _reference_frames(first: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Per sample: blank (zeros), the ground truth, or the ground truth plus noise."""
    kinds = rng.choice(["blank", "gt", "noisy"], size=first.shape[0])
    refs = first.clone()
    for i, kind in enumerate(kinds):
        if kind == "blank":
            refs[i].zero_()
        elif kind == "noisy":
            sigma = float(rng.uniform(0.01, 0.08))
            refs[i] = (refs[i] + sigma * torch.randn_like(refs[i])).clamp(0, 1)
    return refs


def train_step(model, clip: torch.Tensor, base_qp: int, first_frame: int, rng: np.random.Generator) -> dict:
    """Loss of one window; returns the loss tensor and readable statistics."""
    ref = model.adapt_frame(_reference_frames(clip[:, 0], rng))
    loss, bpp_sum, psnr_sum, units = 0.0, 0.0, 0.0, 0
    pixels = 2 * clip.shape[-1] * clip.shape[-2]
    for unit, t in enumerate((1, 3)):
        qps = frame_qps(base_qp, first_frame + 2 * unit, 2)
        out = train_unit(model, torch.cat((clip[:, t], clip[:, t + 1]), dim=1), ref, torch.tensor(qps))
        bpp = out["bits"] / pixels
        dist = 0.0
        for s, x_hat in enumerate(out["recon"]):
            mse = yuv_mse(x_hat, clip[:, t + s])
            dist = dist + lambda_for_qp(qps[s]) * mse
            psnr_sum += float((-10 * torch.log10(mse.detach().clamp_min(1e-10))).mean())
        loss = loss + (dist + bpp).mean()
        bpp_sum += float(bpp.detach().mean())
        ref = out["ref"]
        units += 1
    return {"loss": loss / units, "bpp": bpp_sum / units, "psnr": psnr_sum / (2 * units)}


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) until ``cfg.minutes`` of training time; returns the checkpoint."""
    if cfg.preset not in PAIR_PRESETS:
        raise ValueError(f"training supports the pair presets {PAIR_PRESETS}, not {cfg.preset!r}")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(cfg.preset)
    opt = torch.optim.Adam(_param_groups(model, cfg.lr), lr=cfg.lr)
    state = {"iteration": 0, "elapsed_s": 0.0}
    if ckpt_path.exists():
        saved = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        if len(saved["optimizer"]["param_groups"]) == len(opt.param_groups):
            opt.load_state_dict(saved["optimizer"])
        else:
            print("checkpoint has another optimizer layout: Adam restarts with fresh moments")
        state = saved["state"]
        rng = np.random.default_rng(cfg.seed + state["iteration"])
    sampler = ClipSampler(load_windows(cfg.video, window=5, stride=cfg.window_stride), cfg.crop, seed=cfg.seed + state["iteration"])
    log = (out / "log.jsonl").open("a")
    budget = cfg.minutes * 60
    bar = tqdm(total=int(budget), initial=int(state["elapsed_s"]), unit="s", desc=f"train {cfg.preset}")
    while state["elapsed_s"] < budget:
        start = time.monotonic()
        frac = state["elapsed_s"] / budget
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * (0.25 if frac > 0.85 else 1.0)
        base_qp = int(rng.integers(QP_LEVELS))
        first = int(rng.integers(4)) * 2
        stats = train_step(model, sampler.batch(cfg.batch), base_qp, first, rng)
        opt.zero_grad(set_to_none=True)
        if not torch.isfinite(stats["loss"]):
            raise FloatingPointError(f"non-finite loss at iteration {state['iteration']}; resume from the checkpoint")
        stats["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["iteration"] += 1
        step_s = time.monotonic() - start
        state["elapsed_s"] += step_s
        bar.update(int(state["elapsed_s"]) - bar.n)
        record = {"it": state["iteration"], "qp": base_qp, "loss": float(stats["loss"]), "bpp": stats["bpp"],
                  "psnr": stats["psnr"], "s": round(step_s, 3)}
        bar.set_postfix(loss=f"{record['loss']:.3f}", bpp=f"{stats['bpp']:.3f}", psnr=f"{stats['psnr']:.2f}")
        log.write(json.dumps(record) + "\n")
        if state["iteration"] % cfg.checkpoint_every == 0 or state["elapsed_s"] >= budget:
            _save(ckpt_path, model, opt, state, cfg)
            log.flush()
    bar.close()
    return ckpt_path


def _save(path: Path, model, opt, state: dict, cfg: TrainConfig) -> None:
    """Write atomically so an interrupted save never corrupts the resumable state."""
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": state, "config": asdict(cfg)}, tmp)
    tmp.replace(path)
