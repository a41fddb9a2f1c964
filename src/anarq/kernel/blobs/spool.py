"""A temporary file that hashes what is written to it: the first step of every blob upload."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Self

from anarq.kernel.errors import PayloadTooLarge

TMP_SUFFIX = ".part"


class Spool:
    """Bytes on their way into the store. Bounded by `max_bytes`, never held in memory."""

    def __init__(self, directory: Path, *, max_bytes: int | None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, suffix=TMP_SUFFIX)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._max_bytes = max_bytes
        self.size_bytes = 0
        self.closed = False

    def write(self, chunk: bytes) -> None:
        assert not self.closed, "write after commit or abort"
        self.size_bytes += len(chunk)
        if self._max_bytes is not None and self.size_bytes > self._max_bytes:
            self.discard()
            raise PayloadTooLarge(f"blob exceeds the limit of {self._max_bytes} bytes")
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> bytes:
        """Flush and fsync the bytes; return their sha2-256 digest."""
        assert not self.closed
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self.closed = True
        return self._hash.digest()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.closed = True
        self.path.unlink(missing_ok=True)


class SpooledWriter:
    """A `BlobWriter` whose bytes wait in a `Spool` until `commit()` places them.

    Subclasses say where committed bytes go; leaving the `with` block without a
    commit aborts and leaves nothing behind.
    """

    def __init__(self, directory: Path, max_bytes: int | None) -> None:
        self._spool = Spool(directory, max_bytes=max_bytes)

    @property
    def size_bytes(self) -> int:
        return self._spool.size_bytes

    def write(self, chunk: bytes) -> None:
        self._spool.write(chunk)

    def abort(self) -> None:
        self._spool.discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._spool.closed:
            self.abort()


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
