"""Resolutions of engine optimization profiles.

A profile is built for the padded network size of a frame size (``models.stages``
owns the padding rule and the manifest's shape grammar, which the engine builder
uses through :mod:`.manifest`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ui2c.errors import EngineError
from ui2c.models.stages import padded

NAMED_RESOLUTIONS: dict[str, tuple[int, int]] = {
    "360p": (640, 360),
    "480p": (854, 480),
    "540p": (960, 540),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "2160p": (3840, 2160),
}

_SIZE = re.compile(r"(\d+)x(\d+)")


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
    spec = spec.strip()
    if spec in NAMED_RESOLUTIONS:
        return Resolution(spec, *NAMED_RESOLUTIONS[spec])
    match = _SIZE.fullmatch(spec)
    if match and int(match[1]) > 0 and int(match[2]) > 0:
        return Resolution(spec, int(match[1]), int(match[2]))
    names = ", ".join(NAMED_RESOLUTIONS)
    raise EngineError(f"unknown resolution {spec!r}: use one of {names} or WIDTHxHEIGHT")
