"""The ONNX export cache that ``load_codec`` runs graph backends from.

An export is keyed by preset, weights fingerprint, exporter/network source hash,
precision and the exporter's library versions (torch, onnx, onnxscript: they change
the graphs it writes), so a cached export is reused only when all of them still match,
and only while every graph file still has the sha256 its manifest records (an entry
edited, truncated or half-deleted is exported again, never loaded).  Two first
runs can race on the same key (two shells, a test suite in parallel): each exports
into its own temporary directory beside the final one and publishes it with one
atomic rename, so a reader sees either no export or a complete one, never ONNX files
being written or a manifest describing files that are not there yet.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Mapping

import torch

from ..fileio import discard_dir, file_sha256, source_fingerprint, staging_dir
from .exporter import MANIFEST, export_model


def cache_dir() -> Path:
    """``$UI2C_CACHE``, else ``~/.cache/ui2c``."""
    return Path(os.environ.get("UI2C_CACHE", Path.home() / ".cache" / "ui2c"))


def _exporter_versions() -> str:
    import onnx
    import onnxscript

    text = f"{torch.__version__} {onnx.__version__} {onnxscript.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def export_dir(preset: str, weights_fingerprint: str, precision: str) -> Path:
    """Where the export of these weights in ``precision`` lives (whether or not it exists yet)."""
    from .. import export, models  # the network and exporter sources (the weights are keyed separately)

    code = source_fingerprint((models, export))
    key = f"{preset}-{weights_fingerprint}-{code}-{_exporter_versions()}-{precision}"
    return cache_dir() / "onnx" / key


def _intact(out_dir: Path) -> bool:
    """Does every graph file of the export have the sha256 its manifest records?"""
    try:
        graphs = json.loads((out_dir / MANIFEST).read_text())["graphs"]
        return all(file_sha256(out_dir / g["file"]) == g["sha256"] for g in graphs.values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def cached_export(out_dir: Path, preset: str, precision: str, weights: Mapping[str, torch.Tensor]) -> Path:
    """The manifest of ``out_dir``, exporting ``preset`` with ``weights`` first if needed."""
    manifest = out_dir / MANIFEST
    if manifest.is_file() and _intact(out_dir):
        return manifest
    staging = staging_dir(out_dir)
    try:
        export_model(preset, staging, precision=precision, weights=weights)
        if out_dir.is_dir() and not (manifest.is_file() and _intact(out_dir)):
            discard_dir(out_dir)  # interrupted (no manifest) or damaged since: replaced
        os.rename(staging, out_dir)
    except OSError:
        if not manifest.is_file():  # not a lost race (the winner's export is complete): a real failure
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest

