"""Qdrive's public addressing against UnixFS vectors from the IPFS reference importer.

`unixfs_vectors.json` was made by `unixfs_vectors_gen.mjs` (ipfs-unixfs-importer with the
`ipfs add --cid-version=1` defaults); see the file's `generator` field.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from multiformats import CID

from anarq.qdrive.unixfs import UnixFSBuilder, unixfs_cid

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "unixfs_vectors.json").read_text())


@cache
def content(size: int) -> bytes:
    """The vectors' content: SHA-256("anarq-unixfs-vector" || counter, 8 bytes BE), joined."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"anarq-unixfs-vector" + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


@pytest.mark.parametrize("vector", VECTORS["files"], ids=lambda v: str(v["size"]))
def test_root_cid_matches_the_reference(vector: dict[str, Any]) -> None:
    data = content(vector["size"])
    assert unixfs_cid([data]) == vector["cid"]
    # Fed in odd-sized pieces, the answer is the same.
    pieces = [data[i : i + 100_003] for i in range(0, len(data), 100_003)]
    assert unixfs_cid(pieces) == vector["cid"]


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["files"] if "dag_pb_blocks" in v], ids=lambda v: str(v["size"])
)
def test_dag_pb_blocks_are_byte_identical(vector: dict[str, Any]) -> None:
    made: list[tuple[str, bytes]] = []
    builder = UnixFSBuilder(on_block=lambda cid, block: made.append((str(cid), block)))
    builder.update(content(vector["size"]))
    builder.finish()
    dag_pb = [(cid, block.hex()) for cid, block in made if CID.decode(cid).codec.name == "dag-pb"]
    assert dag_pb == [(b["cid"], b["hex"]) for b in vector["dag_pb_blocks"]]


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["files"] if "car_base64" in v], ids=lambda v: str(v["size"])
)
def test_every_block_of_the_reference_car_is_made(vector: dict[str, Any]) -> None:
    car = base64.b64decode(vector["car_base64"])
    made: dict[str, bytes] = {}
    builder = UnixFSBuilder(on_block=lambda cid, block: made.__setitem__(str(cid), block))
    builder.update(content(vector["size"]))
    assert str(builder.finish()) == vector["cid"]
    for block in made.values():
        assert block in car


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["files"] if "car_base64" in v], ids=lambda v: str(v["size"])
)
def test_the_reference_car_imports_to_its_content(vector: dict[str, Any]) -> None:
    import io

    from anarq.qdrive import car

    reader = car.CarReader.open(io.BytesIO(base64.b64decode(vector["car_base64"])))
    assert [str(root) for root in reader.roots] == [vector["cid"]]
    [entry] = list(car.files(reader, reader.roots[0]))
    assert entry.size == vector["size"]
    assert b"".join(car.content(reader, entry.cid)) == content(vector["size"])


@pytest.mark.parametrize(
    "vector", [v for v in VECTORS["files"] if "car_base64" in v], ids=lambda v: str(v["size"])
)
def test_a_tampered_block_is_refused(vector: dict[str, Any]) -> None:
    import io

    from anarq.qdrive import car

    data = bytearray(base64.b64decode(vector["car_base64"]))
    data[-5] ^= 0x01  # inside the last block
    reader = car.CarReader.open(io.BytesIO(bytes(data)))
    with pytest.raises(car.BadCar, match="does not match its CID"):
        [entry] = list(car.files(reader, reader.roots[0]))
        b"".join(car.content(reader, entry.cid))
