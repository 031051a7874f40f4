"""Resolutions and the manifest's shape grammar.

The export manifest writes every dim as an int or an expression in the padded
frame size: ``"H"``, ``"H/k"`` or ``"ceil(H/k)"`` (same with ``W``).  The grammar is
parsed with a regular expression, never ``eval()``, because manifests are data
files that may come from elsewhere.  ``H/k`` must divide exactly: a fractional
size means the exporter meant ``ceil`` and silently flooring would build an engine
whose profile cannot match the graph.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ui2c.errors import EngineError

PAD_MULTIPLE = 16
"""Frames are padded to a multiple of the largest network stride."""

NAMED_RESOLUTIONS: dict[str, tuple[int, int]] = {
    "360p": (640, 360),
    "480p": (854, 480),
    "540p": (960, 540),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "2160p": (3840, 2160),
}

_DIM = re.compile(r"(?P<int>\d+)|(?P<ceil>ceil\()?(?P<var>[HW])(?:/(?P<div>\d+))?(?(ceil)\))")
_SIZE = re.compile(r"(\d+)x(\d+)")


@dataclass(frozen=True)
class Resolution:
    """A named frame size and its padded network size (``width``/``height``)."""

    name: str
    frame_width: int
    frame_height: int

    @property
    def width(self) -> int:
        return _pad(self.frame_width)

    @property
    def height(self) -> int:
        return _pad(self.frame_height)


def _pad(size: int) -> int:
    return -(-size // PAD_MULTIPLE) * PAD_MULTIPLE


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


def eval_dim(expr: int | str, height: int, width: int) -> int:
    """Evaluate one manifest dim for the padded frame size ``height`` x ``width``."""
    if isinstance(expr, bool) or not isinstance(expr, (int, str)):
        raise EngineError(f"shape entry {expr!r} is neither an int nor an expression")
    if isinstance(expr, int):
        if expr < 0:
            raise EngineError(f"negative shape entry {expr}")
        return expr
    match = _DIM.fullmatch(expr.replace(" ", ""))
    if match is None:
        raise EngineError(f"bad shape expression {expr!r}: expected int, H, H/k or ceil(H/k) (or W)")
    if match["int"] is not None:
        return int(match["int"])
    size = height if match["var"] == "H" else width
    divisor = int(match["div"] or 1)
    if divisor == 0:
        raise EngineError(f"division by zero in shape expression {expr!r}")
    if match["ceil"]:
        return -(-size // divisor)
    if size % divisor:
        raise EngineError(f"{expr!r} is fractional for {match['var']}={size}; the manifest should say ceil({expr})")
    return size // divisor


def eval_shape(shape: list[int | str], height: int, width: int) -> tuple[int, ...]:
    """Evaluate every dim of a manifest shape."""
    return tuple(eval_dim(d, height, width) for d in shape)
