"""AOTInductor engines: one package per graph, built on the device it targets.

``build_aoti`` exports every stage of a model (and the latent graphs of
``aoti_graphs``) with dynamic H/W and compiles each with
``torch._inductor.aoti_compile_and_package``.  Python loads the packages with
``aoti_load_package`` (``runtime/backends/aoti_backend.py``), C++ with
``AOTIModelPackageLoader`` (``runtime/cpp``), so both run the same kernels.

Each package has a JSON sidecar like the TensorRT engines: the weights and code
fingerprints, torch version, device and precision it was built for.  A runtime
refuses a package whose sidecar differs from what it expects (stale or foreign),
and a build keeps up-to-date packages and refuses to overwrite a foreign one
unless forced.  The directory also gets what the C++ runtime needs and cannot
compute without a second implementation: ``ui2c-aoti.txt`` (identity, the qp
schedule and the package list, ``key value`` lines) and ``tables.bin`` (the
integer CDF tables).
"""
from __future__ import annotations

import json
import logging
import secrets
import struct
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ui2c.errors import EngineError
from ui2c.fileio import source_fingerprint, write_atomic

from ..entropy.tables import scale_index_torch
from ..models.precision import PRECISIONS
from ..models.stages import dynamic_dims, stage_inputs
from . import sidecar
from .aoti_graphs import latent_graphs
from .manifest import file_sha256
from .sidecar import SCHEMA, sidecar_path

log = logging.getLogger("ui2c.engines")

TARGET = "aoti"
MANIFEST = "ui2c-aoti.txt"
TABLES = "tables.bin"
LATENT_PREFIX = "latent_"
# Padded size of the export example.  H/16 and W/16 are not multiples of 4, so the
# hyper-prior crop is not a no-op and export does not tie ceil(H/64) to H/16 exactly;
# no latent dim is 1, which export would specialise.
EXAMPLE_SIZE = (208, 272)
MIN_SIZE, MAX_SIZE = 32, 4096  # padded H and W a package takes (its dynamic dims: size / 16 in 2..256)
REBUILD_KEYS = ("schema", "target", "torch_version", "device", "precision", "preset", "weights_fingerprint",
                "code_fingerprint")


@dataclass(frozen=True)
class Graph:
    """One package to build: a module with positional inputs and its I/O specs."""

    name: str
    module: nn.Module
    inputs: tuple
    outputs: tuple


def package_path(out_dir: str | Path, graph: str, device: str) -> Path:
    return Path(out_dir) / f"{graph}.{TARGET}-{device}.pt2"


def graphs(network: nn.Module) -> list[Graph]:
    """The model's stages, then the latent graphs (``latent_*``)."""
    out = [Graph(name, s.module, s.inputs, s.outputs) for name, s in network.stages().items()]
    cfg = network.cfg
    out += [Graph(LATENT_PREFIX + name, module, ins, outs)
            for name, (module, ins, outs) in latent_graphs(cfg.ch_y, cfg.ch_z).items()]
    return out


def code_fingerprint() -> str:
    """Hash of the sources that define the compiled graphs: a package built from other
    network, latent or table code is stale even with the same weights."""
    from .. import models
    from ..entropy import latent, tables
    from . import aoti_graphs

    return source_fingerprint((models, aoti_graphs, tables, latent))


def device_record(device: torch.device) -> dict[str, Any]:
    """What the sidecar says about the build device; CUDA packages hold kernels for one architecture."""
    if device.type == "cpu":
        return {"type": "cpu"}
    major, minor = torch.cuda.get_device_capability(device)
    return {"type": "cuda", "gpu_name": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}"}


def compile_graph(graph: Graph, path: Path, device: torch.device, dtype: torch.dtype) -> float:
    """Export ``graph`` with dynamic H/W and compile it into the package ``path``; seconds taken."""
    # scale_index_torch caches its threshold tensor per device; filled inside export's
    # fake-tensor tracing it would cache a fake tensor, so fill it with a real one first.
    scale_index_torch(torch.zeros(1, device=device))
    args = tuple(stage_inputs(graph.inputs, *EXAMPLE_SIZE, dtype, seed=0, device=device))
    shapes = {"inputs": dynamic_dims(graph.inputs, MIN_SIZE, MAX_SIZE)}
    start = time.perf_counter()
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.pt2")  # private: two builds may share a folder
    try:
        with torch.no_grad():
            exported = torch.export.export(graph.module, args, dynamic_shapes=shapes, strict=False)
            torch._inductor.aoti_compile_and_package(exported, package_path=str(tmp))
            tmp.replace(path)
    except Exception as exc:  # export and inductor raise many types; report one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"AOTInductor could not compile graph {graph.name!r} for {device.type}: {first}") from exc
    finally:  # also on Ctrl-C / SIGTERM (BaseException); a no-op once renamed
        tmp.unlink(missing_ok=True)
    return time.perf_counter() - start


def read_sidecar(package: Path) -> dict[str, Any]:
    """The sidecar of an AOTInductor package; one-line :class:`EngineError` when either is
    missing or the sidecar is not an AOTInductor one."""
    return sidecar.read_sidecar(package, TARGET, "AOTInductor package", "ui2c build-engines --target aoti")


class StalePackageError(EngineError):
    """A package of this model that a build replaces freely: built by other code or another
    torch, or whose bytes no longer match its sidecar (an interrupted build, a damaged file)."""


def check_package(package: Path, graph: str, wanted: dict[str, Any]) -> dict[str, Any]:
    """The sidecar of ``package`` if it holds ``graph`` built for ``wanted``; else one-line
    :class:`EngineError`: foreign (another graph, model, weights, device or precision, or an
    unknown origin) or :class:`StalePackageError` (other code or torch)."""
    record = read_sidecar(package)
    wanted = {**wanted, "graph": graph}  # a renamed package is someone else's stage
    diffs = [k for k in (*REBUILD_KEYS, "graph") if record.get(k) != wanted.get(k)]
    if diffs:
        stale = set(diffs) <= {"code_fingerprint", "torch_version"}
        detail = ", ".join(f"{k} {record.get(k)!r} (want {wanted.get(k)!r})" for k in diffs)
        raise (StalePackageError if stale else EngineError)(
            f"package {package} is {'stale' if stale else 'foreign'}: {detail}; "
            "rebuild with `ui2c build-engines --target aoti`")
    if record.get("package_sha256") != file_sha256(package):
        raise StalePackageError(f"package {package} does not match the sha256 in its sidecar (replaced or corrupt)")
    return record


def identity(preset: str, weights_fp: str, device: torch.device, precision: str) -> dict[str, Any]:
    """The sidecar fields a package must match to be used for this model on this device."""
    return {"schema": SCHEMA, "target": TARGET, "torch_version": torch.__version__, "device": device_record(device),
            "precision": precision, "preset": preset, "weights_fingerprint": weights_fp,
            "code_fingerprint": code_fingerprint()}


def _write_tables(path: Path, tables: list[Any]) -> None:
    """``UI2T``, count, then per table set: rows, width, cdf[rows*width], lengths[rows], offsets[rows]
    (little-endian int32), so C++ registers exactly the integers Python codes with."""
    parts = [b"UI2T", struct.pack("<I", len(tables))]
    for t in tables:
        parts.append(struct.pack("<II", *t.cdf.shape))
        parts += [a.astype("<i4").tobytes() for a in (t.cdf, t.cdf_length, t.offset)]
    write_atomic(path, b"".join(parts))


def _write_manifest(out: Path, fields: dict[str, Any], packages: dict[str, Path]) -> None:
    lines = [f"{k} {v}" for k, v in fields.items()]
    lines += [f"package {name} {path.name}" for name, path in packages.items()]
    write_atomic(out / MANIFEST, ("\n".join(lines) + "\n").encode())


def read_manifest(engine_dir: str | Path) -> dict[str, str]:
    """The ``key value`` fields of an engine directory's manifest (``package`` lines skipped)."""
    path = Path(engine_dir) / MANIFEST
    if not path.is_file():
        raise EngineError(f"{engine_dir} has no {MANIFEST}; build it with `ui2c build-engines --target aoti`")
    pairs = (line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
    return {k: v for k, v in pairs if k != "package"}


def _network(preset: str, weights: str | Path | None, allow_random: bool) -> tuple[nn.Module, str]:
    """The preset with its weights (the shipped ones by default) and their fingerprint."""
    from ..models.checkpoint import load_preset, weights_fingerprint
    from ..models.presets import PAIR_PRESETS

    if preset not in PAIR_PRESETS:
        raise EngineError(f"the aoti target builds pair presets {PAIR_PRESETS}; got {preset!r}")
    network, _ = load_preset(preset, weights, allow_random=allow_random)
    return network, weights_fingerprint(network)


def _compile_job(preset: str, weights: str | Path | None, allow_random: bool, device: str, precision: str,
                 name: str, path: Path) -> float:
    """Compile one graph in a worker process (``--jobs``): each rebuilds the network."""
    network, _ = _network(preset, weights, allow_random)
    network = network.to(device=torch.device(device), dtype=PRECISIONS[precision])
    graph = next(g for g in graphs(network) if g.name == name)
    return compile_graph(graph, path, torch.device(device), PRECISIONS[precision])


def build_aoti(preset: str, out_dir: str | Path, device: str = "cpu", precision: str = "fp32", *,
               weights: str | Path | None = None, allow_random: bool = False, force: bool = False,
               only: tuple[str, ...] | None = None, jobs: int = 1) -> list[tuple[str, Path, bool]]:
    """Build (or keep up to date) every package of ``preset`` in ``out_dir``.

    Returns (graph, package, built) per graph.  ``only`` limits the graphs (tests);
    ``jobs`` > 1 compiles that many graphs at once in worker processes.
    """
    from ..entropy.tables import gaussian_tables, z_tables
    from ..models.ops import HIERARCHICAL_QP_OFFSETS, QP_LEVELS

    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r}: use {' or '.join(PRECISIONS)}")
    dev = torch.device(device)
    if dev.type not in ("cpu", "cuda"):
        raise EngineError(f"the aoti target builds for cpu or cuda, not {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EngineError("--device cuda: no CUDA device visible; AOTInductor builds on the device it targets")
    network, weights_fp = _network(preset, weights, allow_random)
    y_tables, zt = gaussian_tables(), z_tables(network)
    network = network.to(device=dev, dtype=PRECISIONS[precision])
    wanted = identity(preset, weights_fp, dev, precision)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    packages, todo, kept = {}, [], []
    for graph in graphs(network):
        package = packages[graph.name] = package_path(out, graph.name, dev.type)
        if only is not None and graph.name not in only:
            continue
        try:
            check_package(package, graph.name, wanted)
            kept.append(graph.name)
        except StalePackageError:
            todo.append(graph)
        except EngineError as exc:  # foreign or of unknown origin: only replaced when asked to
            if package.exists() and not force:
                raise EngineError(f"refusing to overwrite {package} ({exc}); pass --force") from None
            todo.append(graph)
    seconds = _compile_all(todo, packages, preset, weights, allow_random, dev, precision, jobs)
    for graph in todo:
        package = packages[graph.name]
        record = {**wanted, "graph": graph.name, "dynamic": {"H": [MIN_SIZE, MAX_SIZE], "W": [MIN_SIZE, MAX_SIZE], "multiple": 16},
                  "inputs": [s.name for s in graph.inputs], "outputs": [s.name for s in graph.outputs],
                  "package_bytes": package.stat().st_size, "package_sha256": file_sha256(package),
                  "build_seconds": round(seconds[graph.name], 2),
                  "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_atomic(sidecar_path(package), (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    _write_tables(out / TABLES, [y_tables, zt])
    cfg = network.cfg
    backend = f"{TARGET}/{dev.type}/{precision}/{TARGET}"
    _write_manifest(out, {"format": 1, "preset": preset, "weights": weights_fp,
                          "tables": f"{y_tables.fingerprint()}{zt.fingerprint()}", "backend": backend,
                          "device": dev.type, "precision": precision, "frames": cfg.frames, "ch_y": cfg.ch_y,
                          "ch_z": cfg.ch_z, "code": wanted["code_fingerprint"], "torch": torch.__version__,
                          "qp_levels": QP_LEVELS, "qp_offsets": ",".join(map(str, HIERARCHICAL_QP_OFFSETS)),
                          "min_size": MIN_SIZE, "max_size": MAX_SIZE},
                    packages)
    built = {g.name for g in todo}
    return [(name, packages[name], name in built) for name in packages if name in built or name in kept]


def _compile_all(todo: list[Graph], packages: dict[str, Path], preset: str, weights: str | Path | None,
                 allow_random: bool, dev: torch.device, precision: str, jobs: int) -> dict[str, float]:
    """Seconds per compiled graph; sequential in this process or ``jobs`` spawned workers."""
    if jobs <= 1 or len(todo) <= 1:
        seconds = {}
        for graph in todo:
            log.info("compiling %s for %s/%s", graph.name, dev.type, precision)
            seconds[graph.name] = compile_graph(graph, packages[graph.name], dev, PRECISIONS[precision])
        return seconds
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    log.info("compiling %s for %s/%s in %d processes", ", ".join(g.name for g in todo), dev.type, precision, jobs)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {g.name: pool.submit(_compile_job, preset, weights, allow_random, str(dev), precision, g.name,
                                       packages[g.name]) for g in todo}
        return {name: f.result() for name, f in futures.items()}
