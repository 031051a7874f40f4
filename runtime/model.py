"""A codec model ready to run: networks behind a backend, entropy tables, identity.

The identity (preset, weights fingerprint, table fingerprint, backend/precision) is
what a stream header records and what a decoder checks before decoding.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..entropy.coder import EntropyCoder, make_coder
from ..entropy.rans import DEFAULT_BITS_PER_LANE
from ..entropy.tables import CdfTables, gaussian_tables, z_tables
from ..errors import EngineError
from ..models.checkpoint import load_preset, weights_fingerprint
from ..models.presets import PAIR_PRESETS
from .backends.base import Backend

BACKENDS = ("onnxruntime", "torch", "tensorrt", "aoti")


@dataclass
class CodecModel:
    preset: str
    network: nn.Module
    backend: Backend
    y_tables: CdfTables
    z_tables: CdfTables
    weights_fingerprint: str

    @property
    def frames_per_unit(self) -> int:
        return self.network.cfg.frames

    @property
    def tables_fingerprint(self) -> str:
        return f"{self.y_tables.fingerprint()}{self.z_tables.fingerprint()}"

    @property
    def producer(self) -> str:
        return self.backend.describe()

    def entropy_coder(self, device: torch.device, kind: str | None, latent: str, threads: int = 1,
                      bits_per_lane: int = DEFAULT_BITS_PER_LANE) -> EntropyCoder:
        """A new coder of ``latent`` ("y" or "z") for ``device``; ``kind`` None picks by
        device (``ui2c.entropy.coder.make_coder``), and both kinds write the same bytes.
        Each session makes its own: a coder's staging buffers are not shared between
        threads (an encoder's worker and a decoder may run at once)."""
        return make_coder(self.y_tables if latent == "y" else self.z_tables, device, kind, threads, bits_per_lane)


def load_codec(preset: str = "ui2c-s", weights: str | Path | None = None, backend: str = "onnxruntime",
               precision: str = "fp32", allow_random: bool = False, engine_dir: str | Path | None = None,
               device: str = "cpu", compile: bool = False, threads: int | None = None) -> CodecModel:
    """Build ``preset``, load its weights (the shipped ones by default) and wrap the
    networks in ``backend`` on ``device``.  A preset without weights needs
    ``allow_random`` (seeded weights: ``models.checkpoint.load_preset``).  ``compile``
    (torch backend) compiles each stage with inductor; on CUDA the torch backend
    captures its stages in CUDA graphs, compiled or not.  ``threads`` (torch backend on
    the CPU) is the thread count its stages run with, recorded in the producer string, since
    torch's CPU kernels round differently per count; default: torch's current count.

    ``tensorrt`` runs engines from ``engine_dir`` (``ui2c build-engines``), checked
    against the ONNX export of these weights so a stale engine is refused."""
    if preset not in PAIR_PRESETS:
        raise ValueError(f"the codec runtime codes pair presets {PAIR_PRESETS}; got {preset!r}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    network, _ = load_preset(preset, weights, allow_random=allow_random)
    fingerprint = weights_fingerprint(network)
    if backend == "torch":
        from .backends.torch_backend import TorchBackend

        runner_backend: Backend = TorchBackend(network, precision, device, compile=compile, threads=threads)
    elif backend == "aoti":
        from .backends.aoti_backend import AotiBackend

        if engine_dir is None:
            raise EngineError("the aoti backend needs an engine directory (ui2c build-engines --target aoti)")
        runner_backend = AotiBackend(engine_dir, preset, fingerprint, device=device, precision=precision)
        runner_backend.check_all(list(network.stages()))  # a bad folder fails here, not midway through a video
    else:
        from ..export.cache import cached_export, export_dir

        out_dir = export_dir(preset, fingerprint, precision)
        if backend == "tensorrt":  # fails fast (no GPU / TensorRT) before any export work
            from .backends.tensorrt import TensorRTBackend

            if engine_dir is None:
                raise EngineError("the tensorrt backend needs an engine directory (ui2c build-engines)")
            if torch.device(device).type != "cuda":  # else it would quietly run on GPU 0
                raise EngineError(f"the tensorrt backend runs on a GPU: pass device='cuda[:N]', not {device!r}")
            runner_backend = TensorRTBackend(engine_dir, out_dir, precision=precision,
                                             device=torch.device(device).index or 0)
        manifest = cached_export(out_dir, preset, precision, network.state_dict())
        if backend == "onnxruntime":
            from .backends.onnxruntime_backend import OnnxRuntimeBackend

            runner_backend = OnnxRuntimeBackend(manifest, device)
    return CodecModel(preset, network, runner_backend, gaussian_tables(), z_tables(network), fingerprint)
