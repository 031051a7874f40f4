"""Python API of the CPU rANS coder (format: ``entropy/csrc/rans_format.hpp``).

The stream carries only coded symbols and checks that both sides agree on their
number.  Skipped symbols (scale under the force-zero threshold) are either dropped by
the caller, who then passes the same reduced ``cdf_indexes`` to :func:`decode`, or
marked by a negative index with ``skip_negative``, which drops them here and has
:func:`decode` put 0 in their place.
"""
from __future__ import annotations

import numpy as np

from ui2c.entropy import _rans
from ui2c.entropy.tables import CdfTables

DEFAULT_BITS_PER_LANE: int = _rans.DEFAULT_BITS_PER_LANE
MAX_LANES: int = _rans.MAX_LANES
GROUP_LANES: int = _rans.GROUP_LANES


def native_tables(tables: CdfTables) -> "_rans.Tables":
    """Validated C++ copy of ``tables`` (with its decode lookup), cached on the object."""
    if tables._native is None:
        tables._native = _rans.Tables(tables.cdf, tables.cdf_length, tables.offset)
    return tables._native


def _int32_vector(name: str, a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == np.int32 and arr.ndim == 1:
        return np.ascontiguousarray(arr)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(f"{name} must be a 1-D integer array")
    if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
        raise ValueError(f"{name} does not fit int32")
    return np.ascontiguousarray(arr, dtype=np.int32)


def encode(
    symbols: np.ndarray,
    cdf_indexes: np.ndarray,
    tables: CdfTables,
    num_threads: int = 1,
    *,
    bits_per_lane: int = DEFAULT_BITS_PER_LANE,
    lanes: int | None = None,
    skip_negative: bool = False,
) -> bytes:
    """Encode int32 ``symbols`` with CDF rows ``cdf_indexes`` into one stream.

    ``bits_per_lane`` tunes the layout policy (format §6); ``lanes`` forces the lane
    count P (1..32 or a multiple of 32, at most the symbol count), for tests and
    tuning.  Either way the decoder reads P from the header.  With ``skip_negative`` a
    negative index marks a skipped symbol, dropped here (saves the caller a compaction
    pass).  Raises ``ValueError`` on bad indexes or arguments.
    """
    sym = _int32_vector("symbols", symbols)
    idx = _int32_vector("cdf_indexes", cdf_indexes)
    if lanes is not None and lanes < 1:
        raise ValueError("lanes must be >= 1")
    return _rans.encode(sym, idx, native_tables(tables), int(num_threads), int(bits_per_lane), int(lanes or 0),
                        bool(skip_negative))


def decode(data: bytes, cdf_indexes: np.ndarray, tables: CdfTables, num_threads: int = 1, *,
           skip_negative: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Decode a stream made by :func:`encode` into int32 symbols (0 at negative indexes
    with ``skip_negative``), into ``out`` when given (a writable C-contiguous int32
    array of the indexes' length, e.g. a view of pinned memory), which is returned.

    Raises ``TruncatedStreamError`` / ``CorruptStreamError`` (ui2c.errors) on bad data
    and ``UnsupportedVersionError`` on a format-1 stream; never reads outside ``data``
    and always finishes in time linear in its size.
    """
    idx = _int32_vector("cdf_indexes", cdf_indexes)
    return _rans.decode(bytes(data), idx, native_tables(tables), int(num_threads), bool(skip_negative), out)


class StreamDecoder:
    """Decodes one stream in consecutive segments (format §8), for a stream whose later
    symbols' tables depend on its earlier symbols: a unit's two latent steps share one
    stream, and step 1's indexes come from the spatial prior over step 0's symbols.

    ``next(indexes)`` decodes the next coded symbols (as :func:`decode`, with
    ``skip_negative`` fixed for the stream); ``finish()`` checks that every symbol was
    decoded and every lane ended exactly, raising ``CorruptStreamError`` otherwise, so
    a caller must call it before trusting the symbols.  Header errors raise here.
    """

    def __init__(self, data: bytes, tables: CdfTables, num_threads: int = 1, *, skip_negative: bool = False) -> None:
        self._native = _rans.StreamDecoder(bytes(data))
        self._tables = native_tables(tables)
        self._threads = int(num_threads)
        self._skip = bool(skip_negative)

    @property
    def symbols(self) -> int:
        """Coded symbols the stream holds."""
        return self._native.symbols

    @property
    def decoded(self) -> int:
        """Coded symbols decoded so far."""
        return self._native.decoded

    def next(self, cdf_indexes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        idx = _int32_vector("cdf_indexes", cdf_indexes)
        return self._native.next(idx, self._tables, self._threads, self._skip, out)

    def finish(self) -> None:
        self._native.finish()
