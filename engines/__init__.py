"""TensorRT / TensorRT-RTX engine building from an ONNX export directory.

``build_engines`` turns every graph of an export (``manifest.json`` + ONNX files)
into an engine with one optimization profile per resolution and a JSON sidecar;
``check_engine`` tells a runtime whether an engine still matches the export.
"""
from .builder import DEFAULT_PROFILES, BuildResult, build_engines
from .shapes import Resolution, parse_resolution
from .sidecar import check_engine, engine_path, read_sidecar
from .targets import DEFAULT_RTX_CAPABILITIES, TARGETS

__all__ = [
    "DEFAULT_PROFILES",
    "DEFAULT_RTX_CAPABILITIES",
    "TARGETS",
    "BuildResult",
    "Resolution",
    "build_engines",
    "check_engine",
    "engine_path",
    "parse_resolution",
    "read_sidecar",
]
