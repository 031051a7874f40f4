"""Build targets: full TensorRT (``trt``) and TensorRT-RTX (``trt-rtx``).

Both expose the same Python API (builder, ONNX parser, runtime), so a
:class:`Target` only carries what differs: which module to import, how the
builder config picks the hardware it compiles for, and how that hardware is
described in the engine sidecar.

* ``trt`` compiles and times kernels on the GPU it runs on, so the sidecar names
  that GPU and its compute capability and the engine only runs there.
* ``trt-rtx`` builds ahead of time on the CPU for a list of compute capabilities
  (kernels are JIT-specialised at run time), so the sidecar lists those targets.

Modules are imported lazily: the package must import on machines without either.
"""
from __future__ import annotations

import importlib
import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ui2c.errors import EngineError

log = logging.getLogger("ui2c.engines")

TARGETS = ("trt", "trt-rtx")

# TensorRT-RTX's documented portable set (Ampere, Ada, Blackwell).  Hopper (SM90)
# is not an RTX target at all; Turing (SM75) needs its own engine.
DEFAULT_RTX_CAPABILITIES = ("SM80", "SM86", "SM89", "SM120")

_MODULES = {
    "trt": ("tensorrt",),
    # The ``tensorrt-rtx`` meta wheel installs ``tensorrt_rtx``; the standalone
    # ``tensorrt-rtx-cu12-bindings`` wheel installs the same API as ``tensorrt_rtx_bindings``.
    "trt-rtx": ("tensorrt_rtx", "tensorrt_rtx_bindings"),
}
_INSTALL_HINT = {
    "trt": "pip install 'ui2c[gpu]' (tensorrt-cu12) on a machine with an NVIDIA GPU",
    "trt-rtx": "pip install tensorrt-rtx-cu12-libs tensorrt-rtx-cu12-bindings",
}


def import_tensorrt(target: str) -> ModuleType:
    """Import the TensorRT flavour for ``target`` or raise :class:`EngineError` saying how to get it."""
    if target not in _MODULES:
        raise EngineError(f"unknown engine target {target!r}: use one of {', '.join(TARGETS)}")
    errors = []
    for name in _MODULES[target]:
        try:
            return importlib.import_module(name)
        except ImportError as exc:  # also covers a wheel whose shared libraries fail to load
            errors.append(f"{name}: {exc}")
    raise EngineError(
        f"target {target!r} needs TensorRT{'-RTX' if target == 'trt-rtx' else ''} "
        f"({'; '.join(errors)}); install it with: {_INSTALL_HINT[target]}"
    )


def make_logger(trt: ModuleType) -> Any:
    """A TensorRT logger that forwards to :mod:`logging` and keeps errors for exceptions."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(msg)
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.Severity.WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return _Logger()


def cuda_device_info(device: int = 0) -> dict[str, str]:
    """Name and compute capability (``"9.0"``) of a CUDA device.

    Asks cuda-bindings first, then ``nvidia-smi``; raises :class:`EngineError` when
    neither sees a GPU, because a ``trt`` engine cannot be built or run without one.
    """
    try:
        from cuda.bindings import runtime as cudart

        err, prop = cudart.cudaGetDeviceProperties(device)
        if err == cudart.cudaError_t.cudaSuccess:
            name = prop.name.split(b"\0", 1)[0].decode() if isinstance(prop.name, bytes) else str(prop.name)
            return {"gpu_name": name, "compute_capability": f"{prop.major}.{prop.minor}"}
        reason = f"cuda-bindings: {err.name}"
    except ImportError as exc:
        reason = f"cuda-bindings not installed ({exc})"
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", f"--id={device}", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0 and "," in out.stdout:
            name, cap = (part.strip() for part in out.stdout.strip().splitlines()[0].rsplit(",", 1))
            return {"gpu_name": name, "compute_capability": cap}
        reason += f"; nvidia-smi: {out.stderr.strip() or out.stdout.strip()}"
    raise EngineError(f"no CUDA device {device} visible ({reason})")


@dataclass
class Target:
    """A build target: its TensorRT module and the hardware it builds for."""

    name: str
    trt: ModuleType
    compute_capabilities: tuple[str, ...] = ()
    device: dict[str, Any] = field(default_factory=dict)

    @property
    def uses_timing_cache(self) -> bool:
        """TensorRT-RTX >= 1.2 makes timing-cache calls no-ops (it times nothing ahead
        of time), so a cache file would be a misleading empty header."""
        return self.name == "trt"

    @property
    def version(self) -> str:
        return str(self.trt.__version__)

    def configure(self, config: Any) -> None:
        """Point the builder config at the target hardware."""
        if self.name == "trt-rtx":
            config.num_compute_capabilities = len(self.compute_capabilities)
            for index, cap in enumerate(self.compute_capabilities):
                if not config.set_compute_capability(getattr(self.trt.ComputeCapability, cap), index):
                    raise EngineError(f"TensorRT-RTX rejected compute capability {cap} (targets {self.compute_capabilities})")


def load_target(name: str, compute_capabilities: tuple[str, ...] | None = None) -> Target:
    """Resolve ``name`` to a :class:`Target`, importing its TensorRT module now."""
    trt = import_tensorrt(name)
    if name == "trt":
        if compute_capabilities:
            raise EngineError("compute capabilities are only chosen for trt-rtx; trt builds for the GPU it runs on")
        return Target(name, trt, device=cuda_device_info())
    caps = tuple(compute_capabilities or DEFAULT_RTX_CAPABILITIES)
    known = [c for c in trt.ComputeCapability.__members__ if c.startswith("SM")]
    unknown = [c for c in caps if c not in known]
    if unknown or not caps:
        raise EngineError(f"TensorRT-RTX {trt.__version__} cannot target {unknown or 'nothing'}; it knows {known}")
    return Target(name, trt, caps, device={"compute_capabilities": list(caps)})
