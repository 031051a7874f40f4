"""AOTInductor backend: runs the packages of ``ui2c build-engines --target aoti``.

The packages are the same files the C++ runtime (``runtime/cpp``) loads, so a
stream coded by either decodes bit-identically with the other.  Every package's
sidecar is checked against the model, device and precision before it is loaded:
a stale or foreign package is refused with one line instead of running other
weights or kernels built for another GPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from ...engines import aoti
from ...errors import EngineError
from .base import Backend, Runner


class AotiRunner(Runner):
    def __init__(self, package: Path, stage: str, inputs: list[str], outputs: list[str]):
        self.stage = stage
        self.input_names, self.output_names = inputs, outputs
        self._model = torch._inductor.aoti_load_package(str(package))

    def infer(self, feed: Mapping[str, torch.Tensor],
              out: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        try:
            args = [feed[n] for n in self.input_names]
        except KeyError as missing:
            raise EngineError(f"stage {self.stage!r} needs input {missing}") from None
        with torch.inference_mode():
            results = self._model(*args)
        outputs = {}
        for name, value in zip(self.output_names, results):
            if out is not None and name in out:
                value = out[name].copy_(value)
            outputs[name] = value
        return outputs


class AotiBackend(Backend):
    name = "aoti"
    mode = "aoti"

    def __init__(self, engine_dir: str | Path, preset: str, weights_fingerprint: str,
                 device: str | torch.device | None = None, precision: str = "fp32"):
        """``device=None`` takes the device the directory was built for (its ``ui2c-aoti.txt``)."""
        self.engine_dir = Path(engine_dir)
        if not self.engine_dir.is_dir():
            raise EngineError(f"engine directory {self.engine_dir} does not exist; build it with "
                              "`ui2c build-engines --target aoti`")
        self.device = torch.device(device if device is not None else aoti.read_manifest(self.engine_dir)["device"])
        self.precision = precision
        self._wanted = aoti.identity(preset, weights_fingerprint, self.device, precision)
        self._runners: dict[str, AotiRunner] = {}

    def _package(self, stage: str) -> Path:
        return aoti.package_path(self.engine_dir, stage, self.device.type)

    def _checked(self, stage: str) -> tuple[Path, dict]:
        """``stage``'s package and its checked sidecar (the check hashes the package)."""
        package = self._package(stage)
        return package, aoti.check_package(package, stage, self._wanted)

    def runner(self, stage: str) -> AotiRunner:
        if stage not in self._runners:  # checked again when loaded: the folder may have changed since check_all
            package, record = self._checked(stage)
            self._runners[stage] = AotiRunner(package, stage, record["inputs"], record["outputs"])
        return self._runners[stage]

    def check_size(self, height: int, width: int) -> None:
        """The packages' dynamic dims cover the padded sizes their sidecars record; outside
        them a package may run anyway (its guards are not always compiled in) and compute garbage."""
        # the range only (no hash of the package: every runner checks its package as it loads it)
        dynamic = aoti.read_sidecar(self._package("adaptor"))["dynamic"]
        (h_lo, h_hi), (w_lo, w_hi) = dynamic["H"], dynamic["W"]
        if not (h_lo <= height <= h_hi and w_lo <= width <= w_hi):
            raise EngineError(f"padded frame size {width}x{height} is outside the {w_lo}..{w_hi} x {h_lo}..{h_hi} "
                              f"range the AOTInductor packages in {self.engine_dir} were built for")

    def check_all(self, stages: list[str]) -> None:
        """Validate every package up front, so a bad directory fails before coding starts."""
        for stage in stages:
            self._checked(stage)
