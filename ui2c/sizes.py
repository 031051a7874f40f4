"""Frame sizes as people write them: ``WIDTHxHEIGHT`` or a name such as ``1080p``.

Every option that takes a frame size (``ui2c encode --size``, ``ui2c complexity``,
``ui2c bench``, engine profiles) parses it here, so a size one command accepts is
accepted by all.  The module needs only the standard library: the engine builder
imports it without loading torch, which :mod:`ui2c.args` pulls in.
"""
from __future__ import annotations

import re

NAMED_SIZES: dict[str, tuple[int, int]] = {
    "360p": (640, 360),
    "480p": (854, 480),
    "540p": (960, 540),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "2160p": (3840, 2160),
}

_WXH = re.compile(r"(\d+)x(\d+)")


def parse_size(text: str) -> tuple[int, int]:
    """(width, height) of ``"1920x1080"`` or a :data:`NAMED_SIZES` name, any case.

    Raises ValueError with a message that reads as one line in any front end; callers
    re-raise it as their own error type.
    """
    spec = text.strip().lower()
    if spec in NAMED_SIZES:
        return NAMED_SIZES[spec]
    match = _WXH.fullmatch(spec)
    if not match:
        raise ValueError(f"size must look like 1920x1080 or one of {', '.join(NAMED_SIZES)}, got {text!r}")
    width, height = int(match[1]), int(match[2])
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    return width, height
