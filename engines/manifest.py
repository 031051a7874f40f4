"""Reading the export directory's ``manifest.json`` (the export -> engines contract).

Only what engine building needs is read: graph files and hashes, and the symbolic
input/output shapes that become optimization profiles.  Malformed manifests fail
with :class:`EngineError` naming the file and the missing piece instead of a
``KeyError`` deep inside a build.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ui2c.errors import EngineError
from ui2c.fileio import file_sha256
from ui2c.models.stages import TensorSpec, resolve_shape

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class GraphSpec:
    """One network stage: its ONNX file, recorded hash and I/O signature."""

    name: str
    path: Path
    sha256: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def input_shapes(self, height: int, width: int) -> dict[str, tuple[int, ...]]:
        """Concrete input shapes for a padded frame size."""
        return {name: manifest_shape(t, height, width) for name, t in self.inputs.items()}


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest of one export directory."""

    root: Path
    preset: str
    precision: str
    opset: int
    graphs: dict[str, GraphSpec]


def manifest_shape(spec: TensorSpec, height: int, width: int) -> tuple[int, ...]:
    """A manifest tensor's shape for a padded frame size; a bad expression is an
    :class:`EngineError` since the manifest, not the caller, is at fault."""
    try:
        return resolve_shape(spec, height, width)
    except ValueError as exc:
        raise EngineError(f"tensor {spec.name!r}: {exc}") from None


def _tensors(raw: dict, where: str) -> dict[str, TensorSpec]:
    try:
        return {name: TensorSpec(name, tuple(t["shape"]), str(t["dtype"])) for name, t in raw.items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise EngineError(f"{where}: every tensor needs 'dtype' and 'shape' ({exc!r})") from None


def load_manifest(onnx_dir: str | Path) -> Manifest:
    """Parse ``onnx_dir/manifest.json``; graph paths are resolved against ``onnx_dir``."""
    root = Path(onnx_dir)
    path = root / MANIFEST
    if not path.is_file():
        raise EngineError(f"no {MANIFEST} in export directory {root}")
    try:
        raw = json.loads(path.read_text())
        graphs = {
            name: GraphSpec(
                name,
                root / g["file"],
                str(g["sha256"]),
                _tensors(g["inputs"], f"{path} graph {name!r} inputs"),
                _tensors(g["outputs"], f"{path} graph {name!r} outputs"),
            )
            for name, g in raw["graphs"].items()
        }
        manifest = Manifest(root, str(raw["preset"]), str(raw["precision"]), int(raw["opset"]), graphs)
    except json.JSONDecodeError as exc:
        raise EngineError(f"{path} is not valid JSON: {exc}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise EngineError(f"{path} is malformed: missing or bad {exc}") from None
    if not graphs:
        raise EngineError(f"{path} lists no graphs")
    for name, graph in graphs.items():  # names become engine file names, files are read: both stay in their folder
        if not re.fullmatch(r"[A-Za-z0-9_]+", name) or graph.path.parent != root or graph.path.name in ("", ".", ".."):
            raise EngineError(f"{path} is malformed: graph {name!r} (file {graph.path.name!r}) must be a plain "
                              "name inside the export directory")
    return manifest


def verified_sha256(graph: GraphSpec) -> str:
    """The ONNX file's hash, checked against the manifest so a half-rewritten export
    (file replaced, manifest not) cannot produce an engine labelled with the wrong hash."""
    if not graph.path.is_file():
        raise EngineError(f"graph {graph.name!r}: ONNX file {graph.path} is missing")
    actual = file_sha256(graph.path)
    if actual != graph.sha256:
        raise EngineError(
            f"graph {graph.name!r}: {graph.path} has sha256 {actual[:12]}..., "
            f"manifest says {graph.sha256[:12]}...; re-run the export"
        )
    return actual
