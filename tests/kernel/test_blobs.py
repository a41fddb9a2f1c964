import os
from pathlib import Path

import pytest

from anarq.kernel.blobs import (
    CHUNK_BYTES,
    BlobStore,
    cid_for_bytes,
    digest_of,
    open_blob_store,
    put,
    put_bytes,
    read_bytes,
)
from anarq.kernel.errors import BlobCorrupted, BlobNotFound, InvalidCid, PayloadTooLarge
from anarq.kernel.settings import Settings

# `ipfs add --cid-version=1 --raw-leaves` of the five bytes "hello".
HELLO_CID = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"


@pytest.fixture
def store(settings: Settings) -> BlobStore:
    return open_blob_store(settings.effective_blobs_url, spool_dir=str(settings.data_dir / "spool"))


def test_cid_matches_ipfs_raw_leaf() -> None:
    assert cid_for_bytes(b"hello") == HELLO_CID


@pytest.mark.parametrize(
    "bad",
    ["", "hello", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", HELLO_CID[:-3], "b" * 200],
)
def test_invalid_cids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidCid):
        digest_of(bad)


def test_put_then_read_round_trips(store: BlobStore) -> None:
    info = put_bytes(store, b"hello")
    assert info.cid == HELLO_CID
    assert info.size_bytes == 5
    assert read_bytes(store, HELLO_CID) == b"hello"
    assert store.stat(HELLO_CID).size_bytes == 5
    assert store.exists(HELLO_CID)


def test_large_blob_streams_in_chunks(store: BlobStore) -> None:
    chunk = os.urandom(1024 * 1024)
    info = put(store, (chunk for _ in range(12)))
    assert info.size_bytes == 12 * 1024 * 1024
    sizes = [len(part) for part in store.open(info.cid)]
    assert sum(sizes) == info.size_bytes
    assert max(sizes) <= CHUNK_BYTES


def test_same_content_is_stored_once(store: BlobStore) -> None:
    first = put_bytes(store, b"same bytes")
    second = put_bytes(store, b"same bytes")
    assert first == second
    assert list(store.iter_cids()).count(first.cid) == 1


def test_limit_refuses_oversize_and_keeps_nothing(store: BlobStore) -> None:
    with pytest.raises(PayloadTooLarge):
        put(store, [b"x" * 600, b"y" * 600], max_bytes=1000)
    assert list(store.iter_cids()) == []


def test_abandoned_upload_leaves_no_blob(store: BlobStore) -> None:
    with store.writer() as writer:
        writer.write(b"half of something")
    assert list(store.iter_cids()) == []


def test_missing_blob_is_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.open(HELLO_CID)
    with pytest.raises(BlobNotFound):
        store.stat(HELLO_CID)
    assert not store.exists(HELLO_CID)


def test_delete_removes(store: BlobStore) -> None:
    info = put_bytes(store, b"to delete")
    store.delete(info.cid)
    assert not store.exists(info.cid)


def test_ping_succeeds(store: BlobStore) -> None:
    store.ping()


def test_corruption_on_disk_is_detected(tmp_path: Path) -> None:
    store = open_blob_store((tmp_path / "blobs").as_uri())
    info = put_bytes(store, b"precious")
    path = tmp_path / "blobs" / digest_of(info.cid).hex()[:2] / digest_of(info.cid).hex()[2:4]
    (path / info.cid).write_bytes(b"tampered")
    with pytest.raises(BlobCorrupted):
        read_bytes(store, info.cid)


def test_commit_leaves_no_staged_files(tmp_path: Path) -> None:
    store = open_blob_store((tmp_path / "blobs").as_uri())
    put_bytes(store, b"abc")
    assert list((tmp_path / "blobs" / ".tmp").iterdir()) == []
