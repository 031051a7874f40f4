"""The ONNX export cache that ``load_codec`` runs graph backends from.

An export is keyed by preset, weights fingerprint, exporter/network source hash and
precision, so a cached export is reused only when all four still match.  Two first
runs can race on the same key (two shells, a test suite in parallel): each exports
into its own temporary directory beside the final one and publishes it with one
atomic rename, so a reader sees either no export or a complete one, never ONNX files
being written or a manifest describing files that are not there yet.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

import torch

from .exporter import MANIFEST, export_model


def cache_dir() -> Path:
    """``$UI2C_CACHE``, else ``~/.cache/ui2c``."""
    return Path(os.environ.get("UI2C_CACHE", Path.home() / ".cache" / "ui2c"))


def code_fingerprint() -> str:
    """Hash of the network and exporter sources: a cached ONNX export is reused only
    if the code that produced it is unchanged (the weights are keyed separately)."""
    from .. import export, models

    h = hashlib.sha256()
    for package in (models, export):
        for path in sorted(Path(package.__file__).parent.glob("*.py")):
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def export_dir(preset: str, weights_fingerprint: str, precision: str) -> Path:
    """Where the export of these weights in ``precision`` lives (whether or not it exists yet)."""
    return cache_dir() / "onnx" / f"{preset}-{weights_fingerprint}-{code_fingerprint()}-{precision}"


def cached_export(out_dir: Path, preset: str, precision: str, weights: Mapping[str, torch.Tensor]) -> Path:
    """The manifest of ``out_dir``, exporting ``preset`` with ``weights`` first if needed."""
    manifest = out_dir / MANIFEST
    if manifest.is_file():
        return manifest
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        export_model(preset, staging, precision=precision, weights=weights)
        if out_dir.is_dir() and not manifest.is_file():
            shutil.rmtree(out_dir)  # an interrupted export of an older, in-place version
        os.rename(staging, out_dir)
    except OSError:
        if not manifest.is_file():  # not a lost race (the winner's export is complete): a real failure
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
