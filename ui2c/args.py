"""Option types shared by the ``ui2c`` sub-commands.

Every option is checked when it is parsed, so a bad value is reported as one line
naming the option before any model is loaded or any file is created; the library
checks again, but only as a second line of defence.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from .entropy.rans import DEFAULT_BITS_PER_LANE
from .errors import OutputError
from .models.ops import QP_LEVELS
from .sizes import parse_size

QP_MAX = QP_LEVELS - 1


class Parser(argparse.ArgumentParser):
    """argparse prints the usage and then the error; the CLI promises one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def qp(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= QP_MAX:
        raise argparse.ArgumentTypeError(f"qp must be in 0..{QP_MAX}, got {value}")
    return value


def qp_list(text: str) -> list[int]:
    """Comma-separated qps, at least one."""
    values = [qp(v) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected at least one qp, e.g. 8,24,40,56")
    if len(set(values)) != len(values):  # each qp names its own stream and CSV
        raise argparse.ArgumentTypeError(f"qp {next(v for v in values if values.count(v) > 1)} is listed twice")
    return values


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _finite(text: str) -> float:
    """A finite number (``nan`` would silently disable every comparison it enters)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def unit_interval(text: str) -> float:
    value = _finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in 0..1, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


def size(text: str) -> tuple[int, int]:
    """``WxH`` or a named size such as 1080p (:mod:`ui2c.sizes`)."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def even_size(text: str) -> tuple[int, int]:
    """A :func:`size` for the 4:2:0 frames a command makes itself (``ui2c bench``), which
    need even sizes: refused here rather than after a model has been built."""
    width, height = size(text)
    if width % 2 or height % 2:
        raise argparse.ArgumentTypeError(f"size must be even (4:2:0 frames), got {text!r}")
    return width, height


def output_path(text: str) -> Path:
    """A file or folder name; ``-`` is refused rather than written as a file named ``-``."""
    if not text:
        raise argparse.ArgumentTypeError("output path is empty")
    if text == "-":
        raise argparse.ArgumentTypeError("writing to stdout ('-') is not supported; name a file")
    return Path(text)


def add_reset_options(p: argparse.ArgumentParser) -> None:
    """Where an encoder inserts reset points (``encode`` and ``eval`` share them)."""
    p.add_argument("--reset-interval", type=non_negative_int, default=0,
                   help="a reset point in each unit holding a multiple of N frames (0 = never)")
    p.add_argument("--scene-cut", type=unit_interval, default=0.1,
                   help="mean |ΔY| (0..1) that starts a reset point; 0 disables (default: %(default)s)")
    p.add_argument("--drift-guard", type=non_negative_float, metavar="DB",
                   help="insert a reset point when a unit's PSNR falls DB under the last reset unit's "
                        "(costs the recon stage in the encoder; default: off)")


def reset_settings(args: argparse.Namespace) -> dict:
    """The parsed reset options as ``encode_file`` keywords."""
    return {"reset_interval": args.reset_interval,
            "scene_cut_threshold": None if args.scene_cut == 0 else args.scene_cut,
            "drift_guard_db": args.drift_guard}


def bits_per_lane(text: str) -> int:
    value = positive_int(text)
    if value >= 1 << 32:
        raise argparse.ArgumentTypeError(f"must be below 2^32, got {value}")
    return value


def add_bits_per_lane(p: argparse.ArgumentParser) -> None:
    """The rANS layout density of ``encode`` and ``bench fps`` (rans_format.hpp §6)."""
    p.add_argument("--bits-per-lane", type=bits_per_lane, default=DEFAULT_BITS_PER_LANE,
                   help="rANS layout: one lane per this many bits of a step (default: %(default)s). Lower values "
                        "give more lanes in groups of 32, so decoding spreads over --threads or GPU warps, "
                        "for about 28 bits per extra lane")


def default_precision(backend: str, device: str) -> str:
    """fp16 where the networks run on a GPU (TensorRT engines and CUDA), else fp32: one rule
    for ``ui2c encode`` and ``ui2c build-engines``, so the pair finds each other's engines."""
    return "fp16" if backend == "tensorrt" or device != "cpu" else "fp32"


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output")


def refuse_existing(path: Path, overwrite: bool) -> None:
    """The ffmpeg habit: an existing output (or non-empty output folder) needs ``-y``."""
    if overwrite or not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    raise OutputError(f"{path} exists; pass -y/--overwrite to replace it")
