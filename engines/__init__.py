"""Engine building: TensorRT / TensorRT-RTX engines from an ONNX export directory,
or AOTInductor packages (``--target aoti``) compiled straight from a preset.

``build_engines`` turns every graph of an export (``manifest.json`` + ONNX files)
into an engine with one optimization profile per resolution and a JSON sidecar;
``check_engine`` tells a runtime whether an engine still matches the export.
``aoti.build_aoti`` compiles every stage of a preset with dynamic H/W into an
AOTInductor package with its own sidecar; no ONNX export is needed.
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
