"""Trainer for the pair models: long sequences, mixed references, every qp at every step.

Training runs ``batch`` independent *streams*.  Each stream codes a window of 8–16
pairs (``pairs``); every optimizer step codes the next ``bptt`` pairs of every stream
and back-propagates through them only (truncated back-propagation: the reference is
carried to the next step detached).  So the model learns on the references it decodes
itself, many pairs deep, which is where the old 2-pair recipe let quality drift.
When a stream's window ends it draws a new one, and its first reference is, per the
UI2C paper's mixed-reference training, a blank frame, the ground truth of the frame
before, or a noisy copy of it, always through the first-frame adaptor.

Each stream codes its window at its own base qp (with the hierarchical offsets), so a
batch spans the rate range; the qp tables are interpolated from a few anchors
(``qp.py``) so all of them learn at every step.  Loss per pair: λ(qp)·(mean YUV-MSE of
its two frames) + bits per pixel, scaled by √(λ_mid/λ) so low- and high-rate streams pull
on the shared weights alike (a per-stream constant does not move that stream's
rate-distortion trade-off).

The exported weights are an exponential moving average of the parameters
(``average.py``, ``average_decay``); the optimizer steps the live ones.

The step is made of fixed-shape tensors only (a stream's reset is a mask, not a
branch); ``--compile`` compiles the per-pair loss once (on CUDA, into CUDA graphs).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..fileio import AtomicOutput
from ..models.checkpoint import load_weights
from ..models.ops import HIERARCHICAL_QP_OFFSETS, QP_LEVELS
from ..models.presets import PAIR_PRESETS, build_model
from . import qp as qp_anchors
from .average import WeightAverage
from .data import WindowSampler, load_dataset
from .state import load_shards, load_state, readable_state, save_state
from .unit import code_pair

# λ weighs the mean MSE of a pair's two frames against its bpp; 12 octaves over qp 0..63,
# so the rate moves more than 10x (issue 14; the fourth weights, 16…4096 on the summed MSE, 5–7x).
# A bottom of 0.5 (widening the demo clip's qp span) cost the shared networks quality at every
# rate: cockatoo BD-rate +31 % after 4k iterations (benchmarks/RESULTS.md, Training).
LAMBDA_MIN, LAMBDA_MAX = 2.0, 8192.0
COMPILE_MODES = ("none", "default", "reduce-overhead")
QP_TABLES = "anchor-interpolated"  # marks weights whose tables already carry a qp ramp


def lambda_for_qp(qp: torch.Tensor | int) -> torch.Tensor:
    """Geometric λ over qp 0..63, extended by the same step to the offset rows (64..71)."""
    step = math.log(LAMBDA_MAX / LAMBDA_MIN) / (QP_LEVELS - 1)
    return LAMBDA_MIN * torch.exp(step * torch.as_tensor(qp, dtype=torch.float32))


def yuv_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(6·MSE_Y + MSE_U + MSE_V)/8 per sample, the weighting of YUV-PSNR."""
    per_plane = ((x_hat - x) ** 2).mean(dim=(2, 3))
    return (6 * per_plane[:, 0] + per_plane[:, 1] + per_plane[:, 2]) / 8


@dataclass
class TrainConfig:
    preset: str = "ui2c-s"
    data: str = "work_dirs/data/train.zip"
    out_dir: str = "work_dirs/ui2c-s"
    init: str | None = None  # weights to start from when out_dir holds no state yet
    minutes: float = 60.0  # wall-clock budget of this run (compilation included)
    batch: int = 4
    crop: int = 128
    lr: float = 1e-4
    anchor_lr_scale: float = 10.0  # the qp anchors' lr / lr: a few parameters that must follow a changed λ
    warmup: int = 200  # steps of linear warm-up whenever Adam starts with fresh moments
    average_decay: float = 0.999  # EMA of the parameters that is exported (0: the live weights)
    pairs: tuple[int, int] = (8, 16)  # window length in pairs (inclusive range)
    bptt: int = 2  # pairs per optimizer step
    rate_span: float = 4.0  # initial q_encoder ratio qp 71 / qp 0 when starting from flat tables
    device: str = "cpu"
    compile: str = "none"
    checkpoint_minutes: float = 5.0
    log_every: int = 25
    seed: int = 0


def pair_loss(model, frames, ref, qps, weight):
    """One pair of every stream: frames (N, 2, 3, H, W), slot qps (N, 2), weight (N,).

    Returns (weighted loss per stream, next reference, bpp (N,), mse (N, 2)).  This is
    the compiled unit: the same graph serves every pair of a step, so compile time does
    not grow with ``bptt``."""
    out = code_pair(model, frames.flatten(1, 2), ref, qps)
    bpp = out["bits"] / (2 * frames.shape[-1] * frames.shape[-2])
    mse = torch.stack([yuv_mse(x, frames[:, s]) for s, x in enumerate(out["recon"])], dim=1)
    return weight * ((lambda_for_qp(qps).to(mse.device) * mse).mean(1) + bpp), out["ref"], bpp, mse


def chunk_loss(model, frames, ref_frames, prev_ref, start, qps, weight, pair_fn=pair_loss):
    """Loss of ``bptt`` pairs of every stream, from fixed-shape tensors only.

    frames (N, 2P, 3, H, W); ref_frames (N, 3, H, W) used where ``start`` (N, 1, 1, 1) is
    1, the carried reference ``prev_ref`` elsewhere; qps (N, P, 2); weight (N,).
    Returns (loss, next reference, bpp (N, P), mse (N, P, 2))."""
    ref = start * model.adapt_frame(ref_frames) + (1 - start) * prev_ref
    pairs = qps.shape[1]
    loss, bpps, mses = 0.0, [], []
    for p in range(pairs):
        pair, ref, bpp, mse = pair_fn(model, frames[:, 2 * p : 2 * p + 2], ref, qps[:, p], weight)
        loss = loss + pair
        bpps.append(bpp)
        mses.append(mse)
    return loss.mean() / pairs, ref, torch.stack(bpps, 1), torch.stack(mses, 1)


class Streams:
    """``batch`` streams of training windows and where each one is."""

    def __init__(self, sampler: WindowSampler, cfg: TrainConfig, rng: np.random.Generator):
        self.sampler, self.cfg, self.rng = sampler, cfg, rng
        n, c, dev = cfg.batch, cfg.crop, sampler.device
        self.windows: list[torch.Tensor | None] = [None] * n
        self.pos = [0] * n
        self.base_qp = np.zeros(n, dtype=np.int64)
        self.phase = np.zeros(n, dtype=np.int64)
        self.ref_frames = torch.zeros(n, 3, c, c, device=dev)
        self.start = torch.zeros(n, 1, 1, 1, device=dev)

    def _new_window(self, i: int) -> None:
        lo, hi = self.cfg.pairs
        pairs = self.cfg.bptt * int(self.rng.integers(-(-lo // self.cfg.bptt), hi // self.cfg.bptt + 1))
        window = self.sampler.window(1 + 2 * pairs)
        kind = self.rng.integers(3)  # 0 blank, 1 ground truth, 2 noisy ground truth
        ref = window[0] * (kind > 0)
        if kind == 2:
            ref = (ref + float(self.rng.uniform(0.01, 0.08)) * torch.randn_like(ref)).clamp(0, 1)
        self.windows[i], self.pos[i] = window, 1
        self.ref_frames[i] = ref
        self.start[i] = 1.0
        # Spread the streams' qps over the range (stratified), so every step spans it.
        self.base_qp[i] = int((i + self.rng.random()) * QP_LEVELS / self.cfg.batch)
        self.phase[i] = 2 * self.rng.integers(4)

    def next_chunk(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (N, 2P, 3, H, W) and slot qps (N, P, 2) of every stream's next ``bptt`` pairs."""
        p = self.cfg.bptt
        self.start.zero_()
        frames, qps = [], []
        for i in range(self.cfg.batch):
            if self.windows[i] is None or self.pos[i] + 2 * p > self.windows[i].shape[0]:
                self._new_window(i)
            frames.append(self.windows[i][self.pos[i] : self.pos[i] + 2 * p])
            first = self.pos[i] - 1 + self.phase[i]
            qps.append([[self.base_qp[i] + HIERARCHICAL_QP_OFFSETS[(first + 2 * k + s) % 8] for s in range(2)]
                        for k in range(p)])
            self.pos[i] += 2 * p
        return torch.stack(frames), torch.tensor(qps, device=self.sampler.device)


def _build(cfg: TrainConfig, out: Path) -> tuple[torch.nn.Module, torch.optim.Optimizer, dict, WeightAverage]:
    """Model (with anchor tables), Adam and the weight average, resumed from ``out/state`` or
    started from ``cfg.init`` (a state saved without an average starts one from its model)."""
    model = build_model(cfg.preset)
    state_dir = readable_state(out / "state")
    init_meta = load_weights(model, cfg.init) if state_dir is None and cfg.init else {}
    qp_anchors.attach(model)
    if state_dir is None and init_meta.get("qp_tables") != QP_TABLES:
        qp_anchors.spread_rate(model, cfg.rate_span)
    model.to(cfg.device)
    fused = {"fused": True} if model.q_encoder.is_cuda else {}
    anchors = [p for n, p in model.named_parameters() if qp_anchors.is_anchor(n)]
    others = [p for n, p in model.named_parameters() if not qp_anchors.is_anchor(n)]
    opt = torch.optim.Adam([{"params": others, "lr_scale": 1.0}, {"params": anchors, "lr_scale": cfg.anchor_lr_scale}],
                           lr=cfg.lr, **fused)
    info = {"iteration": 0, "elapsed_s": 0.0, "runs": []}
    if init_meta:  # provenance of the starting weights travels with every later export
        info["init"] = {"weights": Path(cfg.init).name, **{k: v for k, v in init_meta.items() if k not in ("sources", "runs")}}
    if state_dir is not None:
        saved = json.loads((state_dir / "state.json").read_text()).get("config", {}).get("preset", cfg.preset)
        if saved != cfg.preset:  # else a strict load fails with a page of mismatched keys
            raise CheckpointError(f"{state_dir} resumes a {saved} run, not {cfg.preset}: pass --model {saved} "
                                  "or another --out")
        info = load_state(state_dir, model, opt)
    # an average of random weights ramps in; one that starts from trained weights need not
    info.setdefault("average_ramp", state_dir is None and not init_meta)
    saved_average = load_shards(state_dir, "average") if state_dir is not None else {}
    average = WeightAverage(model, cfg.average_decay, saved_average, info.get("average_updates", 0) if saved_average else 0,
                            ramp=info["average_ramp"])
    return model, opt, info, average


def export_weights(model: torch.nn.Module, path: Path, meta: dict) -> None:
    """Plain 72-row tables, float16: the layout ``load_weights`` and the exporter expect."""
    plain = qp_anchors.plain_state_dict(model)
    state = {k: v.cpu().to(torch.float16) if v.is_floating_point() else v.cpu() for k, v in plain.items()}
    with AtomicOutput(path) as out:
        torch.save({"preset": meta["preset"], "state_dict": state, "meta": meta}, out.file)


def _pair_function(cfg: TrainConfig):
    if cfg.compile not in COMPILE_MODES:
        raise ValueError(f"--compile must be one of {', '.join(COMPILE_MODES)}, not {cfg.compile!r}")
    if cfg.compile == "none":
        return pair_loss
    return torch.compile(pair_loss, mode=None if cfg.compile == "default" else cfg.compile, dynamic=False)


def train(cfg: TrainConfig) -> Path:
    """Train for ``cfg.minutes`` of wall time, resuming ``out_dir/state``; returns ``out_dir``.

    Writes ``state/`` (resumable), ``weights.pt`` (float16, exportable) and ``log.jsonl``."""
    if cfg.preset not in PAIR_PRESETS:
        raise ValueError(f"training supports the pair presets {PAIR_PRESETS}, not {cfg.preset!r}")
    if cfg.crop <= 0 or cfg.crop % 64 or cfg.batch < 1 or cfg.bptt < 1:
        raise ValueError(f"need --crop a positive multiple of 64 (the latent's 4x4 hyperprior grid), --batch and "
                         f"--bptt >= 1; got crop {cfg.crop}, batch {cfg.batch}, bptt {cfg.bptt}")
    lo, hi = cfg.pairs
    if not 1 <= lo <= hi or hi // cfg.bptt < -(-lo // cfg.bptt):  # windows are whole chunks of bptt pairs
        raise ValueError(f"--pairs {lo}-{hi} holds no multiple of --bptt {cfg.bptt}")
    if cfg.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    began = time.monotonic()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, opt, info, average = _build(cfg, out)
    torch.manual_seed(cfg.seed + info["iteration"])
    stream_seed, sampler_seed = np.random.SeedSequence([cfg.seed, info["iteration"]]).spawn(2)  # independent draws
    rng = np.random.default_rng(stream_seed)
    data = load_dataset(cfg.data)
    longest = 1 + 2 * cfg.bptt * (hi // cfg.bptt)
    if data.videos and max(v.shape[0] for v in data.videos) < longest:  # found now, not minutes into the run
        raise ValueError(f"--pairs up to {hi} needs video windows of {longest} frames; {cfg.data} holds at most "
                         f"{max(v.shape[0] for v in data.videos)} (prepare it with a larger --window)")
    sampler = WindowSampler(data, cfg.crop, cfg.device, seed=sampler_seed)
    streams = Streams(sampler, cfg, rng)
    pair_fn = _pair_function(cfg)
    fresh_steps = None if info.get("adam_resumed") else 0
    prev_ref = torch.zeros(cfg.batch, model.cfg.ch_d, cfg.crop // 8, cfg.crop // 8, device=cfg.device)
    run = {"device": cfg.device, "compile": cfg.compile, "from_iteration": info["iteration"], "batch": cfg.batch,
           "crop": cfg.crop, "bptt": cfg.bptt, "pairs": list(cfg.pairs), "lr": cfg.lr, "anchor_lr_scale": cfg.anchor_lr_scale,
           "lambda": [LAMBDA_MIN, LAMBDA_MAX], "average_decay": cfg.average_decay}
    info["runs"].append(run)
    pending: list[tuple] = []
    last_save = loop_began = time.monotonic()
    run["setup_s"] = round(loop_began - began, 1)
    meta = {"preset": cfg.preset, "data": cfg.data, "sources": data.manifest, "lambda": [LAMBDA_MIN, LAMBDA_MAX],
            "qp_tables": QP_TABLES}
    with (out / "log.jsonl").open("a") as log:
        while info["iteration"] == run["from_iteration"] or time.monotonic() - began < cfg.minutes * 60:
            step_began = time.monotonic()
            frames, qps = streams.next_chunk()
            weight = lambda_for_qp(32).to(cfg.device).div(lambda_for_qp(qps[:, 0, 0]).to(cfg.device)).sqrt()
            scale = 1.0 if fresh_steps is None or fresh_steps >= cfg.warmup else (fresh_steps + 1) / cfg.warmup
            for group in opt.param_groups:
                group["lr"] = cfg.lr * scale * group["lr_scale"]
            inputs = (model, frames, streams.ref_frames, prev_ref, streams.start, qps, weight)
            try:
                loss, ref, bpp, mse = _optimise(pair_fn, opt, inputs, cfg.compile)
            except Exception as exc:  # noqa: BLE001 - a compiler failure must not cost a GPU lease
                if pair_fn is pair_loss:
                    raise
                print(f"torch.compile failed ({type(exc).__name__}: {exc}); training eagerly", flush=True)
                pair_fn, run["compile"] = pair_loss, f"failed, eager ({type(exc).__name__})"
                loss, ref, bpp, mse = _optimise(pair_fn, opt, inputs, "none")
            prev_ref = ref.detach().clone()
            average.update(model)
            info["iteration"] += 1
            fresh_steps = None if fresh_steps is None else fresh_steps + 1
            pending.append((info["iteration"], loss.detach().clone(), bpp.detach().mean(), mse.detach().mean(),
                            qps[:, 0, 0].float().mean(), time.monotonic() - step_began))
            save = time.monotonic() - last_save > cfg.checkpoint_minutes * 60
            if len(pending) >= cfg.log_every or save:  # the log never lags the saved state
                _write_log(log, pending)
                pending = []
            if save:
                info["elapsed_s"] += time.monotonic() - last_save
                last_save = time.monotonic()
                _checkpoint(out, model, opt, average, info, cfg, meta, run, loop_began)
        if pending:
            _write_log(log, pending)
    info["elapsed_s"] += time.monotonic() - last_save
    _checkpoint(out, model, opt, average, info, cfg, meta, run, loop_began)
    return out


def _optimise(pair_fn, opt: torch.optim.Optimizer, inputs: tuple, compile_mode: str) -> tuple:
    """One forward/backward/Adam step of ``chunk_loss``; returns its outputs."""
    if compile_mode == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()
    loss, ref, bpp, mse = chunk_loss(*inputs, pair_fn=pair_fn)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(inputs[0].parameters(), 1.0)
    opt.step()
    return loss, ref, bpp, mse


def _write_log(log, pending: list) -> None:
    """One line per logged step; a non-finite loss stops training before it is saved."""
    for it, loss, bpp, mse, mean_qp, seconds in pending:
        record = {"it": it, "loss": float(loss), "bpp": float(bpp), "psnr": float(-10 * torch.log10(mse.clamp_min(1e-10))),
                  "mean_qp": float(mean_qp), "s": round(seconds, 3)}
        if not math.isfinite(record["loss"]):
            raise FloatingPointError(f"non-finite loss at iteration {it}; resume from the last state")
        log.write(json.dumps(record) + "\n")
    log.flush()


def _checkpoint(out: Path, model, opt, average: WeightAverage, info: dict, cfg: TrainConfig, meta: dict, run: dict,
                loop_began: float) -> None:
    """Save the state and export the averaged weights; ``run`` records this run's reach and speed
    (compilation included)."""
    run["to_iteration"] = info["iteration"]
    run["it_per_s"] = round((info["iteration"] - run["from_iteration"]) / (time.monotonic() - loop_began), 3)
    info["average_updates"] = average.updates
    save_state(out / "state", model, opt, {**info, "config": asdict(cfg)}, average=average.state())
    iterations = info["iteration"]
    meta = {**meta, "iterations": iterations, "training_minutes": round(info["elapsed_s"] / 60, 1), "runs": info["runs"],
            "init": info.get("init"), "average": {"decay": average.decay, "updates": average.updates}}
    with average.applied(model):
        export_weights(model, out / "weights.pt", meta)
