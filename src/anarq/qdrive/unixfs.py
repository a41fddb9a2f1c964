"""IPFS addressing of file content: the CID `ipfs add --cid-version=1` gives the same bytes.

The defaults of Kubo and of the JS importer: fixed 256 KiB chunks stored as raw leaves,
CIDv1 with sha2-256, a balanced DAG of dag-pb nodes with at most 174 links each, and a
file of one chunk addressed by its raw leaf alone.

A dag-pb node (https://ipld.io/specs/codecs/dag-pb/spec/) is the protobuf

    PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }   (Links written first)
    PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }

and a UnixFS file node's Data is `Data { Type = 1 (File = 2); filesize = 3; repeated
blocksizes = 4 }` (https://github.com/ipfs/specs, UnixFS). `Tsize` is the size of the
linked block plus everything below it.

`UnixFSBuilder` takes the content in any pieces, holds at most one chunk and one pending
link list per tree level, and can hand every block it makes to a callback (CAR export).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from multiformats import CID, multihash, varint

CHUNK_BYTES: Final = 256 * 1024
MAX_LINKS: Final = 174
UNIXFS_FILE: Final = 2

BlockSink = Callable[[CID, bytes], None]


def raw_cid(data: bytes) -> CID:
    return CID("base32", 1, "raw", multihash.wrap(hashlib.sha256(data).digest(), "sha2-256"))


def dag_pb_cid(data: bytes) -> CID:
    return CID("base32", 1, "dag-pb", multihash.wrap(hashlib.sha256(data).digest(), "sha2-256"))


def _field_bytes(number: int, payload: bytes) -> bytes:
    return varint.encode(number << 3 | 2) + varint.encode(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
    return varint.encode(number << 3) + varint.encode(value)


@dataclass(frozen=True, slots=True)
class _Link:
    cid: CID
    tsize: int  # the linked block and everything below it
    filesize: int  # file bytes under the link


def encode_file_node(links: list[_Link]) -> bytes:
    """A dag-pb UnixFS file node linking `links` in order."""
    data = _field_varint(1, UNIXFS_FILE) + _field_varint(3, sum(link.filesize for link in links))
    for link in links:
        data += _field_varint(4, link.filesize)
    encoded = b""
    for link in links:
        body = (
            _field_bytes(1, bytes(link.cid)) + _field_bytes(2, b"") + _field_varint(3, link.tsize)
        )
        encoded += _field_bytes(2, body)
    return encoded + _field_bytes(1, data)


@dataclass
class UnixFSBuilder:
    """Feed content with `update`, then `finish()` for the root CID."""

    on_block: BlockSink | None = None
    size: int = 0
    _pending: bytearray = field(default_factory=bytearray)
    _levels: list[list[_Link]] = field(default_factory=list)
    _chunks: int = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self._pending += data
        while len(self._pending) > CHUNK_BYTES:
            # More follows this chunk, so it is not the last one.
            chunk = bytes(self._pending[:CHUNK_BYTES])
            del self._pending[:CHUNK_BYTES]
            self._leaf(chunk)

    def finish(self) -> CID:
        if self._pending or self._chunks == 0:
            self._leaf(bytes(self._pending))
            self._pending.clear()
        # Close every level from the bottom; the top level's single entry is the root.
        level = 0
        while True:
            links = self._levels[level]
            if level == len(self._levels) - 1 and len(links) == 1:
                return links[0].cid
            self._levels[level] = []
            self._add(level + 1, self._node(links))
            level += 1

    def add_leaf(self, digest: bytes, size: int) -> None:
        """A chunk already hashed elsewhere (its SHA-256), in order; no bytes needed."""
        self.size += size
        self._chunks += 1
        cid = CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256"))
        self._add(0, _Link(cid, size, size))

    def _leaf(self, chunk: bytes) -> None:
        cid = raw_cid(chunk)
        if self.on_block is not None:
            self.on_block(cid, chunk)
        self._chunks += 1
        self._add(0, _Link(cid, len(chunk), len(chunk)))

    def _add(self, level: int, link: _Link) -> None:
        if level == len(self._levels):
            self._levels.append([])
        links = self._levels[level]
        if len(links) == MAX_LINKS:
            # A full node at this level: only now is it known that more follows it.
            self._levels[level] = []
            self._add(level + 1, self._node(links))
            links = self._levels[level]
        links.append(link)

    def _node(self, links: list[_Link]) -> _Link:
        block = encode_file_node(links)
        cid = dag_pb_cid(block)
        if self.on_block is not None:
            self.on_block(cid, block)
        return _Link(
            cid,
            len(block) + sum(link.tsize for link in links),
            sum(link.filesize for link in links),
        )


def root_from_digests(digests: bytes, size: int) -> CID:
    """The root CID of `size` bytes whose 256 KiB chunks have these SHA-256s, joined."""
    builder = UnixFSBuilder()
    count = len(digests) // 32
    for n in range(count):
        last = n == count - 1
        builder.add_leaf(
            digests[n * 32 : (n + 1) * 32], size - n * CHUNK_BYTES if last else CHUNK_BYTES
        )
    return builder.finish()


def unixfs_cid(pieces: Iterable[bytes]) -> str:
    """The CIDv1 `ipfs add --cid-version=1` gives content arriving as `pieces`."""
    builder = UnixFSBuilder()
    for piece in pieces:
        builder.update(piece)
    return str(builder.finish())
