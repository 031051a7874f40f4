"""What the package ships in ``ui2c/assets``: the demo clip and demo weights.

One place resolves them, relative to the installed package, so a wheel install
finds them as an editable one does (a path built from a source file's location
breaks as soon as the folder map is applied, e.g. ``ui2c/ui2c/assets``).
"""
from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_CLIP = ASSETS / "bbb_320x180_16f.y4m"
_WEIGHTS = {"ui2c-s": "ui2c-s.pt"}


def default_weights(preset: str) -> Path | None:
    """The shipped weights of ``preset``, if there are any."""
    name = _WEIGHTS.get(preset)
    path = ASSETS / name if name else None
    return path if path is not None and path.is_file() else None
