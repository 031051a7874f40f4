"""Typed errors: every failure the user can cause names its problem.

Callers catch ``UI2CError`` to handle any of them; the CLI prints the message and
exits non-zero instead of a traceback.
"""


class UI2CError(Exception):
    """Base class of all errors the package raises on bad input or setup."""


class CheckpointError(UI2CError):
    """A checkpoint is missing keys, has unexpected keys or mis-shaped tensors."""


class BitstreamError(UI2CError):
    """A bitstream or container cannot be decoded."""


class TruncatedStreamError(BitstreamError):
    """The data ends before the structure it announces."""


class CorruptStreamError(BitstreamError):
    """The data is inconsistent (bad magic, CRC mismatch, impossible values)."""


class UnsupportedVersionError(BitstreamError):
    """The container was written by a format version this build cannot read."""


class ModelMismatchError(UI2CError):
    """The stream was produced by another model, weights, tables or precision."""


class InputFormatError(UI2CError):
    """Video input has the wrong size, chroma format or file layout."""


class OutputError(UI2CError):
    """An output cannot be written: bad path, existing file, no space, no permission."""


class EngineError(UI2CError):
    """An engine or backend is missing, stale or was built for another target."""


class UsageError(UI2CError):
    """Options that do not apply together: refused rather than silently ignored."""
