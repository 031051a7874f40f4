"""Engine sidecars: the JSON record written next to every engine.

An engine file says nothing reliable about where it came from, so the sidecar
records the ONNX hash, target, TensorRT version, hardware, profiles and precision.
It answers three questions without deserializing (which needs a GPU): is this
engine up to date (skip the rebuild), was it built from another ONNX (refuse to
overwrite, or refuse to run), and is it the engine the sidecar describes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ui2c.errors import EngineError
from ui2c.fileio import file_sha256, write_atomic

from .manifest import load_manifest

SCHEMA = 1

# Fields that must be equal for an existing engine to count as up to date.
REBUILD_KEYS = ("schema", "target", "tensorrt_version", "device", "onnx_sha256", "precision", "profiles")


def engine_path(out_dir: str | Path, graph: str, target: str) -> Path:
    """Where the engine of ``graph`` for ``target`` lives; the target is in the name so
    one directory can hold engines for both targets."""
    return Path(out_dir) / f"{graph}.{target}.engine"


def sidecar_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def write_sidecar(engine: Path, record: dict[str, Any]) -> Path:
    path = sidecar_path(engine)
    write_atomic(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return path


def read_sidecar(engine: Path, target: str | None = None, noun: str = "engine",
                 command: str = "ui2c build-engines") -> dict[str, Any]:
    """The sidecar of ``engine``; :class:`EngineError` if the engine or sidecar is missing
    or unreadable, or of another schema.  ``target`` given, a sidecar written for another
    target is refused too (it is not this builder's record at all); ``noun`` and
    ``command`` name the file and the command that builds it in those messages."""
    if not engine.is_file():
        raise EngineError(f"{noun} {engine} does not exist; build it with `{command}`")
    path = sidecar_path(engine)
    if not path.is_file():
        raise EngineError(f"{noun} {engine} has no sidecar {path.name}; its origin is unknown, rebuild it")
    record = load_record(path)
    if record.get("schema") != SCHEMA or (target is not None and record.get("target") != target):
        raise EngineError(f"sidecar {path} is not {f'a {target!r}' if target else 'a'} sidecar of schema {SCHEMA}; "
                          f"rebuild the {noun}")
    return record


def load_record(path: Path) -> dict[str, Any]:
    """A sidecar's JSON object; a file that is unreadable, not UTF-8, not JSON or not an
    object is one-line :class:`EngineError` (an engine of unknown origin), not a traceback."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise EngineError(f"sidecar {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise EngineError(f"sidecar {path} is not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise EngineError(f"sidecar {path} is not a JSON object; rebuild the engine")
    return record


def is_up_to_date(engine: Path, wanted: dict[str, Any]) -> bool:
    """True when ``engine`` exists, matches its sidecar, and the sidecar matches ``wanted``."""
    try:
        record = read_sidecar(engine)
    except EngineError:
        return False
    if any(record.get(key) != wanted.get(key) for key in REBUILD_KEYS):
        return False
    return record.get("engine_sha256") == file_sha256(engine)


def check_engine(engine_path: str | Path, onnx_dir: str | Path | None, target: str | None = None) -> dict[str, Any]:
    """Validate an engine against the current export before it is used.

    Raises :class:`EngineError` when the engine or its sidecar is missing, when the
    engine file is not the one the sidecar describes, when it was built for another
    ``target``, or when the ONNX graph it was built from has changed (stale).
    ``onnx_dir=None`` skips only the last check, for deployments that ship engines
    without the export.  Returns the sidecar record.
    """
    engine = Path(engine_path)
    record = read_sidecar(engine)
    if target is not None and record.get("target") != target:
        raise EngineError(f"engine {engine} was built for target {record.get('target')!r}, not {target!r}")
    if record.get("engine_sha256") != file_sha256(engine):
        raise EngineError(f"engine {engine} does not match the sha256 in its sidecar (replaced or corrupt)")
    if onnx_dir is None:
        return record
    graphs = load_manifest(onnx_dir).graphs
    graph = graphs.get(record.get("graph", ""))
    if graph is None:
        raise EngineError(f"engine {engine} is for graph {record.get('graph')!r}, which {onnx_dir} does not export")
    current = file_sha256(graph.path) if graph.path.is_file() else "missing"
    if current != record.get("onnx_sha256"):
        raise EngineError(
            f"engine {engine} is stale: ONNX hash mismatch for graph {graph.name!r} "
            f"(engine built from {str(record.get('onnx_sha256'))[:12]}..., {graph.path} is {current[:12]}...); "
            "rebuild with `ui2c build-engines`"
        )
    return record
