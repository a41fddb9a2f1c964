"""Content-addressed blob store: streamed in, verified out, never half-written.

A blob is named by the CIDv1 of its bytes. Writers stream chunks into a
`BlobWriter`; `commit()` makes the blob visible atomically (temp file, fsync,
rename locally; a single completed upload on S3). Readers get chunks and an
integrity check against the CID at the end of the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from anarq.kernel.blobs.cid import cid_for_bytes, cid_for_digest, digest_of

# Readers get a blob in chunks of at most this. Large enough for few system calls and
# thread hops per MiB, and, for a reader re-cutting the bytes into records of its own
# (a Qlock stream's 256 KiB + 16 B chunks), few records split across two chunks.
CHUNK_BYTES = 1024 * 1024

__all__ = [
    "CHUNK_BYTES",
    "BlobInfo",
    "BlobStore",
    "BlobWriter",
    "cid_for_bytes",
    "cid_for_digest",
    "digest_of",
    "open_blob_store",
]


@dataclass(frozen=True)
class BlobInfo:
    cid: str
    size_bytes: int


class BlobWriter(Protocol):
    """An upload in progress. Use as a context manager: leaving without `commit()` aborts."""

    @property
    def size_bytes(self) -> int: ...

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> BlobInfo: ...

    def abort(self) -> None: ...

    def __enter__(self) -> BlobWriter: ...

    def __exit__(self, *exc_info: object) -> None: ...


class BlobStore(Protocol):
    kind: str

    def writer(self, *, max_bytes: int | None = None) -> BlobWriter:
        """Start a streamed upload; `max_bytes` bounds it (`PayloadTooLarge` past that)."""
        ...

    def open(self, cid: str) -> Iterator[bytes]:
        """Stream a blob's bytes; raises `BlobCorrupted` at the end if they don't match the CID."""
        ...

    def stat(self, cid: str) -> BlobInfo: ...

    def exists(self, cid: str) -> bool: ...

    def delete(self, cid: str) -> None: ...

    def iter_cids(self) -> Iterator[str]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def put(store: BlobStore, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> BlobInfo:
    """Store a stream of chunks and return its CID and size."""
    with store.writer(max_bytes=max_bytes) as writer:
        for chunk in chunks:
            writer.write(chunk)
        return writer.commit()


def put_bytes(store: BlobStore, data: bytes) -> BlobInfo:
    return put(store, [data])


def read_bytes(store: BlobStore, cid: str) -> bytes:
    return b"".join(store.open(cid))


def open_blob_store(url: str, *, spool_dir: str | None = None) -> BlobStore:
    """The store a settings URL names: `file:///path` or `s3://bucket?endpoint=…`."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        from anarq.kernel.blobs.local import LocalBlobStore

        return LocalBlobStore.from_url(url)
    if scheme == "s3":
        from anarq.kernel.blobs.s3 import S3BlobStore

        return S3BlobStore.from_url(url, spool_dir=spool_dir)
    raise ValueError(f"unsupported blob store URL scheme {scheme!r}")
