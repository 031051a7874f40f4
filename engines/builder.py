"""Build one TensorRT / TensorRT-RTX engine per graph of an export directory.

Profiles: every requested resolution becomes its *own* optimization profile with
min = opt = max = that padded size.  A codec session runs one resolution for a
whole video, so exact profiles let the builder specialise kernels per size (a
single min/opt/max range tunes for ``opt`` only and pays for the range
elsewhere); the runtime picks the profile matching the frame.  The cost is that a
size outside the list needs a rebuild with it added (``--profiles 1280x544``).

Precision: every export is built strongly typed, so an engine's precision is its
export's (the FP16 export's casts are the precision).  Mixing in TensorRT 10's FP16
builder flag for FP32 exports would make an "fp16" engine whose ONNX hash is the FP32
export's: no runtime setup could load it (``--precision fp16`` looks for the FP16
export, ``fp32`` refuses an fp16 engine), and TensorRT-RTX and TensorRT 11 have no
such flag anyway.
"""
from __future__ import annotations

import gc
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from ui2c.errors import EngineError
from ui2c.fileio import write_atomic

from .manifest import GraphSpec, load_manifest, verified_sha256
from .shapes import Resolution, parse_resolution
from .sidecar import SCHEMA, engine_path, is_up_to_date, read_sidecar, sidecar_path, write_sidecar
from .targets import Target, load_target, make_logger

log = logging.getLogger("ui2c.engines")

DEFAULT_PROFILES = ("360p", "720p", "1080p")


@dataclass(frozen=True)
class BuildResult:
    """What happened to one graph: ``built`` is False when an up-to-date engine was kept."""

    graph: str
    engine: Path
    sidecar: Path
    built: bool
    record: dict[str, Any]


def timing_cache_path(out_dir: Path, target: str) -> Path:
    return out_dir / f"timing-{target}.cache"


def load_timing_cache(config: Any, path: Path) -> tuple[Any, int]:
    """Attach the persisted timing cache to ``config``; returns it and the bytes reused.

    A cache from another GPU or TensorRT version is rejected by TensorRT; it is then
    replaced by a fresh one rather than failing the build.
    """
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if cache is not None and config.set_timing_cache(cache, False):
        return cache, len(data)
    log.warning("timing cache %s does not match this GPU/TensorRT; starting a new one", path)
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)
    return cache, 0


def _new_builder(trt: Any, logger: Any) -> Any:
    """``trt.Builder(logger)`` without the collector running inside it.

    TensorRT holds an internal lock while it creates a builder and logs through our
    Python logger.  A garbage collection triggered inside that callback can destroy an
    unreachable builder of an earlier build (kept alive by a traceback, say), whose
    destructor takes the same lock: a deadlock, seen in CI.  So unreachable objects are
    collected first, and the collector stays off while TensorRT holds the lock."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        return trt.Builder(logger)
    finally:
        if enabled:
            gc.enable()


def _parse(target: Target, graph: GraphSpec, logger: Any) -> tuple[Any, Any, Any]:
    """Builder, network and parser for ``graph``; every parser error is reported."""
    trt = target.trt
    builder = _new_builder(trt, logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(graph.path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        for error in errors:
            log.error("ONNX parser: %s", error)
        raise EngineError(
            f"{target.name} ONNX parser rejected graph {graph.name!r} ({graph.path}) with "
            f"{len(errors)} error(s):\n" + "\n".join(f"  {e}" for e in errors)
        )
    names = {network.get_input(i).name for i in range(network.num_inputs)}
    if names != set(graph.inputs):
        raise EngineError(f"graph {graph.name!r}: ONNX inputs {sorted(names)} != manifest inputs {sorted(graph.inputs)}")
    return builder, network, parser


def _io_dtypes(trt: Any, network: Any) -> dict[str, dict[str, str]]:
    def dtypes(tensors: Iterable[Any]) -> dict[str, str]:
        return {t.name: trt.nptype(t.dtype).__name__ for t in tensors}

    return {
        "inputs": dtypes(network.get_input(i) for i in range(network.num_inputs)),
        "outputs": dtypes(network.get_output(i) for i in range(network.num_outputs)),
    }


def _build(
    target: Target, graph: GraphSpec, profiles: list[dict], cache_path: Path | None
) -> tuple[bytes | memoryview, dict[str, Any]]:
    """Serialized engine plus the build facts for the sidecar."""
    trt = target.trt
    logger = make_logger(trt)
    builder, network, _parser = _parse(target, graph, logger)  # parser owns the weights
    config = builder.create_builder_config()
    target.configure(config)
    for profile_spec in profiles:
        profile = builder.create_optimization_profile()
        for name, shape in profile_spec["shapes"].items():
            profile.set_shape(name, shape, shape, shape)
        if config.add_optimization_profile(profile) < 0:
            raise EngineError(f"graph {graph.name!r}: invalid optimization profile {profile_spec}: {logger.errors}")
    cache, loaded = load_timing_cache(config, cache_path) if cache_path else (None, 0)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise EngineError(f"{target.name} failed to build graph {graph.name!r}:\n" + "\n".join(logger.errors))
    facts: dict[str, Any] = {"build_seconds": round(seconds, 3), "strongly_typed": True}
    facts["io"] = _io_dtypes(trt, network)
    if cache is not None:
        saved = bytes(cache.serialize())
        write_atomic(cache_path, saved)
        facts["timing_cache"] = {"file": cache_path.name, "loaded_bytes": loaded, "saved_bytes": len(saved)}
    else:
        facts["timing_cache"] = None
    return serialized, facts


def _profiles(graph: GraphSpec, resolutions: list[Resolution]) -> list[dict]:
    return [
        {"name": r.name, "width": r.width, "height": r.height, "shapes": {
            name: list(shape) for name, shape in graph.input_shapes(r.height, r.width).items()}}
        for r in resolutions
    ]


def _resolutions(profiles: Iterable[str | Resolution]) -> list[Resolution]:
    """Parsed resolutions, dropping repeats that pad to the same network size."""
    unique: dict[tuple[int, int], Resolution] = {}
    for spec in profiles:
        res = spec if isinstance(spec, Resolution) else parse_resolution(spec)
        unique.setdefault((res.width, res.height), res)
    if not unique:
        raise EngineError("no profiles requested")
    return list(unique.values())


def _guard_overwrite(engine: Path, onnx_sha256: str) -> None:
    """Refuse to replace an engine built from another ONNX file (or of unknown origin)."""
    if not engine.exists():
        return
    try:
        previous = read_sidecar(engine).get("onnx_sha256")
    except EngineError as exc:
        raise EngineError(f"refusing to overwrite {engine}: {exc}; pass --force") from None
    if previous != onnx_sha256:
        raise EngineError(
            f"refusing to overwrite {engine}: it was built from a different ONNX "
            f"(sha256 {str(previous)[:12]}..., now {onnx_sha256[:12]}...); pass --force"
        )


def build_engines(
    onnx_dir: str | Path,
    out_dir: str | Path,
    target: str = "trt",
    profiles: Iterable[str | Resolution] = DEFAULT_PROFILES,
    *,
    model: str | None = None,
    force: bool = False,
    compute_capabilities: Iterable[str] | None = None,
) -> list[BuildResult]:
    """Build an engine + sidecar per graph of the export in ``onnx_dir`` into ``out_dir``.

    ``model``, when given, must equal the manifest's preset (guards against pointing
    at the wrong export).  Up-to-date engines are kept; engines built from another
    ONNX are only replaced with ``force``.  ``compute_capabilities`` (``"SM86"``...)
    applies to ``trt-rtx`` only.
    """
    manifest = load_manifest(onnx_dir)
    if model is not None and model != manifest.preset:
        raise EngineError(f"export {onnx_dir} is for model {manifest.preset!r}, not {model!r}")
    resolutions = _resolutions(profiles)
    tgt = load_target(target, tuple(compute_capabilities) if compute_capabilities else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = timing_cache_path(out, target) if tgt.uses_timing_cache else None
    results = []
    for graph in manifest.graphs.values():
        engine = engine_path(out, graph.name, target)
        wanted = {
            "schema": SCHEMA,
            "target": target,
            "tensorrt_version": tgt.version,
            "device": tgt.device,
            "onnx_sha256": verified_sha256(graph),
            "precision": manifest.precision,
            "profiles": _profiles(graph, resolutions),
        }
        if not force and is_up_to_date(engine, wanted):
            log.info("%s is up to date", engine)
            results.append(BuildResult(graph.name, engine, sidecar_path(engine), False, read_sidecar(engine)))
            continue
        if not force:
            _guard_overwrite(engine, wanted["onnx_sha256"])
        log.info("building %s for %s at %s", graph.name, target, ", ".join(r.name for r in resolutions))
        serialized, facts = _build(tgt, graph, wanted["profiles"], cache_path)
        data = memoryview(serialized)  # bytes, or TensorRT's IHostMemory (a buffer)
        record = {
            **wanted,
            **facts,
            "graph": graph.name,
            "model": manifest.preset,
            "onnx_file": graph.path.name,
            "engine_file": engine.name,
            "engine_bytes": data.nbytes,
            "engine_sha256": hashlib.sha256(data).hexdigest(),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        # Sidecar first: interrupted before the engine lands, the old engine fails the
        # sidecar's hash (never used) and the next build replaces it without --force.
        side = write_sidecar(engine, record)
        write_atomic(engine, data)
        results.append(BuildResult(graph.name, engine, side, True, record))
    return results
