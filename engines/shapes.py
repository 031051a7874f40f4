"""Resolutions of engine optimization profiles.

A profile is built for the padded network size of a frame size (``models.stages``
owns the padding rule and the manifest's shape grammar, which the engine builder
uses through :mod:`.manifest`; :mod:`ui2c.sizes` parses frame sizes for every command).
"""
from __future__ import annotations

from dataclasses import dataclass

from ui2c.errors import EngineError
from ui2c.models.stages import padded
from ui2c.sizes import parse_size


@dataclass(frozen=True)
class Resolution:
    """A named frame size and its padded network size (``width``/``height``)."""

    name: str
    frame_width: int
    frame_height: int

    @property
    def width(self) -> int:
        return padded(self.frame_width)

    @property
    def height(self) -> int:
        return padded(self.frame_height)


def parse_resolution(spec: str) -> Resolution:
    """``"720p"`` or ``"1920x1080"`` (frame size, padded here) to a :class:`Resolution`."""
    try:
        return Resolution(spec.strip(), *parse_size(spec))
    except ValueError as exc:
        raise EngineError(f"bad resolution: {exc}") from None
