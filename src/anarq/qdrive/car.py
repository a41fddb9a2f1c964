"""CAR v1 (https://ipld.io/specs/transport/car/carv1/): export a file's UnixFS DAG, import one.

    header: varint(len) | dag-cbor {"roots": [CID], "version": 1}
    blocks: varint(len(cid) + len(data)) | cid bytes | data        (repeated)

Export streams the blocks as `UnixFSBuilder` makes them (leaves, then the nodes above
them), the order the JS importer writes. Import reads any CAR v1 holding UnixFS files
or directories: every block is checked against its CID, then the DAG is walked from the
root in file order, reading one block at a time from the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

import dag_cbor
from multiformats import CID, varint

from anarq.qdrive.unixfs import UnixFSBuilder

CAR_MEDIA_TYPE: Final = "application/vnd.ipld.car"
MAX_BLOCK_BYTES: Final = 4 * 1024 * 1024  # well above 256 KiB chunks and 174-link nodes
MAX_HEADER_BYTES: Final = 64 * 1024
UNIXFS_RAW, UNIXFS_DIRECTORY, UNIXFS_FILE, UNIXFS_SHARD = 0, 1, 2, 5


class BadCar(ValueError):
    """The bytes are not a CAR v1 this importer can read; the message says why."""


def header(root: CID) -> bytes:
    encoded = dag_cbor.encode({"roots": [root], "version": 1})
    return varint.encode(len(encoded)) + encoded


def frame(cid: CID, data: bytes) -> bytes:
    raw = bytes(cid)
    return varint.encode(len(raw) + len(data)) + raw + data


def export(root: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The CAR of the content `chunks`, whose UnixFS root must be `root` (checked at the end)."""
    yield header(CID.decode(root))
    pending: list[bytes] = []
    builder = UnixFSBuilder(on_block=lambda cid, data: pending.append(frame(cid, data)))
    for piece in chunks:
        builder.update(piece)
        yield from pending
        pending.clear()
    made = builder.finish()
    yield from pending
    if str(made) != root:
        raise BadCar(f"the content's root is {made}, not {root}: the stored data changed")


# Reading -------------------------------------------------------------------------------


def _read_varint(handle: BinaryIO) -> int | None:
    value = shift = 0
    while True:
        byte = handle.read(1)
        if not byte:
            if shift:
                raise BadCar("the CAR ends inside a length prefix")
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise BadCar("a length prefix is too long")


def _read_cid(data: bytes) -> tuple[CID, int]:
    """The CID at the start of `data` and how many bytes it takes (CIDv1 only)."""
    try:
        version, rest = _uvarint(data, 0)
        if version != 1:
            raise BadCar("only CIDv1 blocks are read")
        _, rest = _uvarint(data, rest)  # codec
        _, after_code = _uvarint(data, rest)  # multihash code
        length, start = _uvarint(data, after_code)
        end = start + length
        return CID.decode(data[:end]), end
    except (IndexError, ValueError) as exc:
        raise BadCar(f"a block's CID does not parse: {exc}") from None


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    """The varint at `offset` and the offset after it (`IndexError` if it is cut short)."""
    try:
        value, used, _ = varint.decode_raw(memoryview(data)[offset : offset + 10])
    except ValueError as exc:
        raise IndexError(str(exc)) from None
    return value, offset + used


@dataclass
class CarReader:
    """An index of a CAR file's blocks; blocks are read (and verified) on demand."""

    handle: BinaryIO
    roots: list[CID]
    offsets: dict[bytes, tuple[int, int]]

    @classmethod
    def open(cls, handle: BinaryIO) -> CarReader:
        size = _read_varint(handle)
        if size is None or not 0 < size <= MAX_HEADER_BYTES:
            raise BadCar("not a CAR: no header")
        try:
            decoded = dag_cbor.decode(handle.read(size))
        except Exception as exc:  # the decoder raises several types for garbage
            raise BadCar(f"the CAR header is not dag-cbor: {exc}") from None
        if not isinstance(decoded, dict) or decoded.get("version") != 1:
            raise BadCar("only CAR version 1 is read")
        roots = decoded.get("roots")
        if not isinstance(roots, list) or not roots or not all(isinstance(r, CID) for r in roots):
            raise BadCar("the CAR header names no root CIDs")
        offsets: dict[bytes, tuple[int, int]] = {}
        while (length := _read_varint(handle)) is not None:
            if not 0 < length <= MAX_BLOCK_BYTES + 100:
                raise BadCar(f"a block of {length} bytes is out of bounds")
            start = handle.tell()
            prefix = handle.read(min(length, 100))
            cid, used = _read_cid(prefix)
            offsets[bytes(cid)] = (start + used, length - used)
            handle.seek(start + length)
            if handle.tell() != start + length or len(prefix) < min(length, 100):
                raise BadCar("the CAR ends inside a block")
        named = [root.set(base="base32") for root in roots if isinstance(root, CID)]
        return cls(handle, named, offsets)

    def block(self, cid: CID) -> bytes:
        where = self.offsets.get(bytes(cid))
        if where is None:
            raise BadCar(f"block {cid} is missing from the CAR")
        self.handle.seek(where[0])
        data = self.handle.read(where[1])
        if cid.hashfun.name != "sha2-256":
            raise BadCar(f"block {cid} uses {cid.hashfun.name}; only sha2-256 is read")
        if hashlib.sha256(data).digest() != cid.raw_digest:
            raise BadCar(f"block {cid} does not match its CID")
        return data


@dataclass(frozen=True)
class Link:
    cid: CID
    name: str
    tsize: int


@dataclass(frozen=True)
class Node:
    links: list[Link]
    kind: int  # UnixFS type
    data: bytes  # UnixFS Data field (file bytes inline in the node)
    filesize: int


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of a protobuf message; lengths and varints only."""
    offset = 0
    try:
        while offset < len(data):
            key, offset = _uvarint(data, offset)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, offset = _uvarint(data, offset)
                yield number, wire, value
            elif wire == 2:
                length, offset = _uvarint(data, offset)
                if offset + length > len(data):
                    raise BadCar("a protobuf field runs past its message")
                yield number, wire, data[offset : offset + length]
                offset += length
            else:
                raise BadCar(f"protobuf wire type {wire} is not used by dag-pb or UnixFS")
    except IndexError:
        raise BadCar("a protobuf message is cut short") from None


def decode_node(block: bytes) -> Node:
    links: list[Link] = []
    unixfs = b""
    for number, _, value in _fields(block):
        if number == 2 and isinstance(value, bytes):
            cid, name, tsize = None, "", 0
            for n, _, v in _fields(value):
                if n == 1 and isinstance(v, bytes):
                    cid = CID.decode(v)
                elif n == 2 and isinstance(v, bytes):
                    name = v.decode("utf-8", errors="strict")
                elif n == 3 and isinstance(v, int):
                    tsize = v
            if cid is None:
                raise BadCar("a dag-pb link has no hash")
            links.append(Link(cid, name, tsize))
        elif number == 1 and isinstance(value, bytes):
            unixfs = value
    kind, data, filesize = UNIXFS_FILE, b"", 0
    for number, _, value in _fields(unixfs):
        if number == 1 and isinstance(value, int):
            kind = value
        elif number == 2 and isinstance(value, bytes):
            data = value
        elif number == 3 and isinstance(value, int):
            filesize = value
    return Node(links, kind, data, filesize)


@dataclass(frozen=True)
class CarFile:
    """A file found in a CAR: its path under the root and its size."""

    path: str
    cid: CID
    size: int


def files(car: CarReader, root: CID, path: str = "") -> Iterator[CarFile]:
    """Every file under `root`: the root itself if it is a file, else a directory walk."""
    if root.codec.name == "raw":
        yield CarFile(path, root, len(car.block(root)))
        return
    if root.codec.name != "dag-pb":
        raise BadCar(f"{root} is {root.codec.name}; only UnixFS (dag-pb and raw) is read")
    node = decode_node(car.block(root))
    if node.kind == UNIXFS_DIRECTORY:
        for link in node.links:
            if not link.name or "/" in link.name or link.name in (".", ".."):
                raise BadCar(f"directory entry {link.name!r} is not a usable name")
            yield from files(car, link.cid, f"{path}/{link.name}")
    elif node.kind in (UNIXFS_FILE, UNIXFS_RAW):
        size = node.filesize or len(node.data)
        yield CarFile(path, root, size)
    elif node.kind == UNIXFS_SHARD:
        raise BadCar("sharded (HAMT) directories are not read yet")
    else:
        raise BadCar(f"UnixFS type {node.kind} is not a file or directory")


def content(car: CarReader, cid: CID) -> Iterator[bytes]:
    """A file's bytes, block by block, in order."""
    if cid.codec.name == "raw":
        yield car.block(cid)
        return
    node = decode_node(car.block(cid))
    if node.data:
        yield node.data
    for link in node.links:
        yield from content(car, link.cid)
