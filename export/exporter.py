"""``export_model``: every stage of a preset to ONNX, plus the ``manifest.json``
that the engine builder and the runtime read (schema in ``README.md``)."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Mapping

import onnx
import onnxscript
import torch
from torch import nn

from ..fileio import file_sha256, write_atomic
from ..models.checkpoint import check_state_dict, unwrap_state_dict, weights_fingerprint
from ..models.precision import PRECISIONS
from ..models.presets import RANDOM_SEED, build_intra_model, build_model, fixed_seed
from ..models.stages import Stage
from .graphs import TRACE_HEIGHT, TRACE_WIDTH, export_stage, manifest_dtype

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
DEFAULT_OPSET = 20
INTRA_PREFIX = "intra_"

StateDict = Mapping[str, torch.Tensor]


def build_networks(preset: str, weights: StateDict | None = None,
                   intra_weights: StateDict | None = None) -> dict[str, nn.Module]:
    """``{"inter": model, "intra": model}`` (intra only for ``dcvc-rt``), fp32, eval.

    Without weights the models are random-initialised from a fixed seed, so two
    exports of the same preset are identical and tests can rebuild the same network.
    """
    with fixed_seed(RANDOM_SEED):
        networks = {"inter": build_model(preset)}
        intra = build_intra_model(preset)
    if intra is not None:
        networks["intra"] = intra
    elif intra_weights is not None:
        raise ValueError(f"preset {preset!r} has no intra model to load intra weights into")
    for role, state in (("inter", weights), ("intra", intra_weights)):
        if state is not None:
            state = unwrap_state_dict(state)
            check_state_dict(networks[role], state, f"{role} weights")
            networks[role].load_state_dict(state)  # copy_ casts fp16 weight files to fp32
    return {role: net.eval() for role, net in networks.items()}


def graph_stages(networks: Mapping[str, nn.Module]) -> dict[str, tuple[str, Stage]]:
    """Graph name → (role, stage); intra stages are prefixed ``intra_``."""
    graphs = {}
    for role, net in networks.items():
        prefix = INTRA_PREFIX if role == "intra" else ""
        graphs.update({prefix + name: (role, stage) for name, stage in net.stages().items()})
    return graphs


def _tensors(specs, precision: str) -> dict[str, dict]:
    return {s.name: {"dtype": manifest_dtype(s, precision), "shape": list(s.shape)} for s in specs}


def _graph_entry(file: str, path: Path, role: str, stage: Stage, precision: str) -> dict:
    return {
        "file": file, "sha256": file_sha256(path), "model": role, "stage": stage.name,
        "inputs": _tensors(stage.inputs, precision), "outputs": _tensors(stage.outputs, precision),
        "encode_calls": stage.encode_calls, "decode_calls": stage.decode_calls, "note": stage.note,
    }


def export_model(preset: str, out_dir: str | os.PathLike, precision: str = "fp32",
                 weights: StateDict | None = None, opset: int = DEFAULT_OPSET,
                 stages: list[str] | None = None, intra_weights: StateDict | None = None) -> Path:
    """Export the graphs of ``preset`` in ``precision`` into ``out_dir``; returns the manifest path.

    ``stages`` restricts the export to those graph names (``intra_*`` for the I-model
    of ``dcvc-rt``).  FP16 graphs are traced from the ``.half()`` model with fp16
    inputs, so their inputs, outputs and weights are float16 while ``qp`` stays int32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    networks = build_networks(preset, weights, intra_weights)
    fingerprints = {role: weights_fingerprint(net) for role, net in networks.items()}
    if precision == "fp16":
        networks = {role: copy.deepcopy(net).half() for role, net in networks.items()}
    graphs = graph_stages(networks)
    selected = list(graphs) if stages is None else list(stages)
    unknown = sorted(set(selected) - set(graphs))
    if unknown:
        raise ValueError(f"unknown stages {unknown} for {preset!r}; choose from {', '.join(graphs)}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name in selected:
        role, stage = graphs[name]
        path = out / f"{name}.onnx"
        export_stage(stage, path, precision, opset,
                     {"ui2c.preset": preset, "ui2c.graph": name, "ui2c.precision": precision})
        entries[name] = _graph_entry(path.name, path, role, stage, precision)
    manifest = {
        "format": MANIFEST_FORMAT,
        "preset": preset,
        "precision": precision,
        "opset": opset,
        "frames_per_unit": networks["inter"].cfg.frames,
        "dim_params": "graph input/output dims are named by their manifest expressions verbatim",
        "trace_size": [TRACE_HEIGHT, TRACE_WIDTH],
        "weights": {role: {"source": f"random(seed={RANDOM_SEED})" if state is None else "state_dict",
                           "fingerprint": fingerprints[role]}
                    for role, state in (("inter", weights), ("intra", intra_weights)) if role in networks},
        "exporter": {"name": "torch.onnx.export(dynamo=True)", "torch": torch.__version__,
                     "onnx": onnx.__version__, "onnxscript": onnxscript.__version__},
        "graphs": entries,
    }
    path = out / MANIFEST
    # Written last and atomically: a directory without a manifest is an interrupted
    # export, never a half-described one.
    write_atomic(path, (json.dumps(manifest, indent=2) + "\n").encode())
    return path
