"""Blobs in a local folder: `<root>/<2 hex>/<2 hex>/<cid>`, uploads staged in `<root>/.tmp`."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from anarq.kernel.blobs import CHUNK_BYTES, BlobInfo
from anarq.kernel.blobs.cid import cid_for_digest, digest_of
from anarq.kernel.blobs.spool import TMP_SUFFIX, SpooledWriter, fsync_dir
from anarq.kernel.errors import BackendUnavailable, BlobCorrupted, BlobNotFound

# Staged uploads older than this are leftovers of a crash, not uploads in progress.
STALE_UPLOAD_SECONDS = 3600


class LocalWriter(SpooledWriter):
    def __init__(self, store: LocalBlobStore, max_bytes: int | None) -> None:
        super().__init__(store.tmp_dir, max_bytes)
        self._store = store

    def commit(self) -> BlobInfo:
        digest = self._spool.finish()
        cid = cid_for_digest(digest)
        final = self._store.path_for(cid)
        if final.exists():
            self._spool.discard()  # same bytes already stored: dedup
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._spool.path, final)
            fsync_dir(final.parent)
        return BlobInfo(cid=cid, size_bytes=self._spool.size_bytes)


class LocalBlobStore:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / ".tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_uploads()

    @classmethod
    def from_url(cls, url: str) -> LocalBlobStore:
        return cls(Path(unquote(urlsplit(url).path)))

    def path_for(self, cid: str) -> Path:
        hexdigest = digest_of(cid).hex()
        return self.root / hexdigest[:2] / hexdigest[2:4] / cid

    def writer(self, *, max_bytes: int | None = None) -> LocalWriter:
        return LocalWriter(self, max_bytes)

    def open(self, cid: str) -> Iterator[bytes]:
        expected = digest_of(cid)
        path = self.path_for(cid)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {cid}") from None
        return _verified_chunks(handle, expected, cid)

    def stat(self, cid: str) -> BlobInfo:
        try:
            return BlobInfo(cid=cid, size_bytes=self.path_for(cid).stat().st_size)
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {cid}") from None

    def exists(self, cid: str) -> bool:
        return self.path_for(cid).exists()

    def delete(self, cid: str) -> None:
        self.path_for(cid).unlink(missing_ok=True)

    def iter_cids(self) -> Iterator[str]:
        for path in sorted(self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*")):
            yield path.name

    def ping(self) -> None:
        if not os.access(self.tmp_dir, os.W_OK):
            raise BackendUnavailable(f"blob folder {self.root} is not writable")

    def close(self) -> None:
        return None

    def _sweep_stale_uploads(self) -> None:
        cutoff = time.time() - STALE_UPLOAD_SECONDS
        for leftover in self.tmp_dir.glob(f"*{TMP_SUFFIX}"):
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
            except FileNotFoundError:
                continue


def _verified_chunks(handle: object, expected: bytes, cid: str) -> Iterator[bytes]:
    import io

    assert isinstance(handle, io.BufferedReader)
    digest = hashlib.sha256()
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            yield chunk
    if digest.digest() != expected:
        raise BlobCorrupted(f"blob {cid} does not match its content identifier")
