"""The runner contract every inference backend implements (Polygraphy style).

A *stage* is one network graph of the model (see ``ui2c.models.stages``): it takes
named arrays and returns named arrays.  A backend is a factory of one runner per
stage.  Arrays are NumPy on the host for CPU backends; a device backend may return
its own array type as long as ``to_host`` converts it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Mapping

import numpy as np


class Runner(ABC):
    """Runs one stage: ``infer(feed) -> outputs``, both keyed by tensor name."""

    stage: str

    @abstractmethod
    def infer(self, feed: Mapping[str, np.ndarray],
              out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Run the stage on ``feed`` and return every output by name.

        ``out`` optionally holds preallocated arrays for (some of) the outputs; the
        runner writes into them and returns them, so a session can keep its
        reference and feature buffers fixed across units (no allocation per pair).
        """


class Backend(ABC):
    """Creates runners for the stages of one model and precision."""

    name: str
    precision: str

    @abstractmethod
    def runner(self, stage: str) -> Runner:
        """The runner for ``stage`` (created once, then reused)."""

    def describe(self) -> str:
        """Identifies the backend and precision, e.g. ``onnxruntime-cpu/fp32``;
        written to the container so a decoder can refuse a mismatched producer."""
        return f"{self.name}/{self.precision}"
