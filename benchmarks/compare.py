"""``bench fps --compare``: the model against DCVC-RT, and ONNX Runtime against torch.

DCVC-RT has no session runtime in this package (its P-frame model is not a pair
codec), so its speed is *composed*, and reported as an estimate:

* network: each stage of ``DMC`` (P) and ``DMCI`` (I) is timed on the same backend
  with zero inputs at the same padded size (median of ``repeats`` calls after one
  warm-up call), times how often an encoder / decoder runs it per frame;
* entropy coding: the model's *measured* latent-ops + rANS time per latent element
  (y and z) in the same run, scaled to DCVC-RT's latent (128 ch for P, 256 for I).
  rANS time depends on symbol statistics, which random weights do not reproduce,
  so this term is the rough one.

The I-frame cost is reported separately: DCVC-RT needs ``DMCI`` for the first frame
and at every intra refresh, which the unified model replaces with its blank-frame
adaptor.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from ..export import MANIFEST
from ..export.exporter import INTRA_PREFIX, build_networks
from ..models.stages import Stage, stage_inputs
from ..runtime.backends.base import Backend
from ..runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from ..runtime.backends.torch_backend import TorchBackend
from .fps import latent_elements
from .onnx_macs import export_dir

ENTROPY_PARTS = ("entropy:latent ops", "entropy:rANS")


def zero_feed(stage: Stage, height: int, width: int) -> dict[str, torch.Tensor]:
    """Zero inputs by name: the networks' speed does not depend on the values."""
    zeros = stage_inputs(stage.inputs, height, width, torch.float32)
    return {spec.name: tensor for spec, tensor in zip(stage.inputs, zeros)}


def time_stages(backend: Backend, stages: dict[str, Stage], height: int, width: int, repeats: int,
                prefix: str = "") -> dict[str, float]:
    """Median ms per call of every stage run at least once per coded frame."""
    result = {}
    for name, stage in stages.items():
        if not (stage.encode_calls or stage.decode_calls):
            continue
        runner, feed = backend.runner(prefix + name), zero_feed(stage, height, width)
        runner.infer(feed)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            runner.infer(feed)
            times.append((time.perf_counter() - start) * 1e3)
        result[name] = statistics.median(times)
    return result


def _dcvc_backends(backend: str) -> dict[str, tuple[Backend, str, dict[str, Stage]]]:
    """role → (backend, graph-name prefix, stages) for DCVC-RT's two models."""
    networks = build_networks("dcvc-rt")
    stages = {role: net.stages() for role, net in networks.items()}
    if backend == "torch":
        return {role: (TorchBackend(net), "", stages[role]) for role, net in networks.items()}
    ort = OnnxRuntimeBackend(Path(export_dir("dcvc-rt")) / MANIFEST)
    return {"inter": (ort, "", stages["inter"]), "intra": (ort, INTRA_PREFIX, stages["intra"])}


def entropy_ms_per_element(run: dict, side: str) -> float:
    """The measured entropy-coding ms per latent element of one side of a run: its latent
    ops and rANS, wherever they ran (the encoder's rANS is on its worker, ``overlapped``)."""
    units = run[side]["frames"] / run["frames_per_unit"]
    ms = sum(table.get(p, {"ms": 0.0})["ms"] for table in (run[side]["parts"], run[side]["overlapped"])
             for p in ENTROPY_PARTS)
    return ms / units / run["latent_elements_per_unit"]


def dcvc_rt_estimate(backend: str, height: int, width: int, repeats: int,
                     entropy_ms: dict[str, float]) -> dict:
    """DCVC-RT per-frame cost (ms) on ``backend``; ``entropy_ms`` is ms per latent element
    for "encode" and "decode" (see the module docstring)."""
    out = {}
    latents = {"inter": (128, 128), "intra": (256, 128)}  # (y, z) channels, spec §0
    for role, (runner_backend, prefix, stages) in _dcvc_backends(backend).items():
        ms = time_stages(runner_backend, stages, height, width, repeats, prefix)
        elements = latent_elements(*latents[role], height, width)
        sides = {}
        for side, calls in (("encode", "encode_calls"), ("decode", "decode_calls")):
            net = sum(ms[name] * getattr(stages[name], calls) for name in ms)
            entropy = entropy_ms[side] * elements
            sides[side] = {"net_ms": net, "entropy_ms_est": entropy, "fps_est": 1e3 / (net + entropy)}
        out["P" if role == "inter" else "I"] = {"stage_ms_per_call": ms, **sides}
    return out


def net_ms_per_frame(run: dict, side: str) -> float:
    parts = run[side]["parts"]
    return sum(p["ms"] for k, p in parts.items() if k.startswith("net:")) / run[side]["frames"]


def compare(run: dict, other_backend_runs: list[dict], dcvc: dict | None) -> dict:
    """Ratios (> 1: the first named is faster) against DCVC-RT and/or the other backend."""
    ratios = {}
    runs = {r["backend"]: r for r in (run, *other_backend_runs)}
    for side in ("encode", "decode"):
        if dcvc is not None:
            p = dcvc["P"][side]
            ratios[f"{side}: {run['model']} / dcvc-rt fps (estimate)"] = run[side]["fps"] / p["fps_est"]
            ratios[f"{side}: {run['model']} / dcvc-rt network-only speed"] = p["net_ms"] / net_ms_per_frame(run, side)
        if {"onnxruntime", "torch"} <= set(runs):
            ratios[f"{side}: onnxruntime / torch fps ({run['model']})"] = (runs["onnxruntime"][side]["fps"]
                                                                          / runs["torch"][side]["fps"])
    return {"dcvc-rt": dcvc, "ratios": ratios}
