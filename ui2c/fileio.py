"""Files the package publishes or verifies: atomic outputs and content hashes.

One implementation serves every writer (containers, decoded video, export manifests,
engines), so all of them give the same guarantee: the target is absent, the old
file, or complete, and no temporary file outlives the process, whether it ends
normally, by an exception or by a signal the CLI turns into one (``ui2c.cli``).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import weakref
from pathlib import Path
from types import ModuleType
from typing import BinaryIO, Iterable

from .errors import InputFormatError, OutputError

PathLike = str | os.PathLike


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks so large ONNX files or engines do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_fingerprint(modules: Iterable[ModuleType]) -> str:
    """Hash of the Python sources of ``modules`` (a package: every ``.py`` file in its
    folder), names included: what keys a cached export or compiled package, which is
    stale once the code that produced it changes even if the weights did not."""
    digest = hashlib.sha256()
    for module in modules:
        folder = Path(module.__file__).parent
        paths = sorted(folder.glob("*.py")) if hasattr(module, "__path__") else [Path(module.__file__)]
        for path in paths:
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def refuse_overwrite(output: PathLike, protect: Iterable[PathLike]) -> None:
    """Raise if ``output`` is one of ``protect`` (an encode's own input), however spelled."""
    out = Path(output)
    for other in map(Path, protect):
        same = (os.path.samefile(out, other) if out.exists() and other.exists()
                else out.resolve() == other.resolve())
        if same:
            raise InputFormatError(f"refusing to write {output}: it is the input file {other}")


def check_output(path: PathLike, protect: Iterable[PathLike] = ()) -> Path:
    """Problems an output path can have, found before any work is done on it."""
    out = Path(path)
    if not str(path):
        raise OutputError("output path is empty")
    refuse_overwrite(out, protect)
    if out.is_dir():
        raise OutputError(f"{out} is a directory, not a file name")
    if not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: directory {out.parent} does not exist")
    try:  # an unnamed file (O_TMPFILE on Linux): asks the file system itself, root and read-only mounts included
        tempfile.TemporaryFile(dir=out.parent).close()
    except OSError as e:
        raise OutputError(f"cannot write {out}: directory {out.parent} is not writable ({e.strerror})") from None
    return out


def _discard(temp: Path, file: BinaryIO) -> None:
    """Close and delete a temporary file; errors are moot since it is being thrown away."""
    try:
        file.close()
    except OSError:
        pass
    temp.unlink(missing_ok=True)


class AtomicOutput:
    """A binary file written as ``.<name>.<random>.part`` beside the target and renamed
    onto it by :meth:`commit`; :meth:`abort` (or leaving a ``with`` block by an
    exception) deletes the temporary file.  A writer that is never closed deletes it
    when collected or at interpreter exit."""

    def __init__(self, path: PathLike, protect: Iterable[PathLike] = ()) -> None:
        self.path = check_output(path, protect)
        self.temp_path = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror}") from None
        self.file: BinaryIO = os.fdopen(fd, "w+b")
        self._committed = False
        self._cleanup = weakref.finalize(self, _discard, self.temp_path, self.file)

    @property
    def closed(self) -> bool:
        return self.file.closed

    def commit(self) -> None:
        """Flush to the disk and publish (so a crash right after leaves the whole file, not an
        empty one); on failure (disk full, target turned into a directory) nothing is left
        behind.  Committing twice is harmless; committing an aborted output is an error."""
        if self._committed:
            return
        if self.file.closed:
            raise OutputError(f"cannot write {self.path}: the output was closed or aborted before it was complete")
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.temp_path, self.path)
            self._committed = True
        except OSError as e:
            self.abort()
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None
        self._cleanup.detach()

    def abort(self) -> None:
        self._cleanup()

    def __enter__(self) -> "AtomicOutput":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_atomic(path: PathLike, data: bytes | memoryview) -> None:
    """Publish ``data`` as ``path`` in one step (manifests, engines, sidecars)."""
    with AtomicOutput(path) as out:
        out.file.write(data)


def staging_dir(target: Path) -> Path:
    """A new private folder beside ``target`` in which to build its replacement (same file
    system, so publishing it is a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))


def discard_dir(folder: Path) -> None:
    """Remove ``folder``, renaming it aside first so that no reader sees it half-deleted."""
    aside = staging_dir(folder)
    try:
        os.rename(folder, aside / folder.name)
    except FileNotFoundError:  # someone else discarded it first
        pass
    shutil.rmtree(aside, ignore_errors=True)


def replace_dir(staging: Path, target: Path) -> None:
    """Publish the complete folder ``staging`` as ``target``, discarding an old ``target``:
    a reader finds the old folder, the new one or (for an instant) none, never a mix."""
    if target.exists():
        discard_dir(target)
    os.rename(staging, target)
