"""Qdrive through the HTTP API: encrypted storage, resumable uploads, sharing, trash, quota."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from anarq.kernel.node import Node
from anarq.kernel.tables import outbox
from anarq.qdrive import tables
from anarq.qdrive.service import DriveService
from anarq.qdrive.unixfs import unixfs_cid
from anarq.qlock import SigningKey, decrypt_stream, stream_recipients
from anarq.qlock import stream as stream_module
from anarq.sdk.signing import RequestSigner

CHUNK = 256 * 1024


class Person:
    """An identity registered with the node, sending signed requests."""

    def __init__(self, http: httpx.AsyncClient, name: str) -> None:
        self.http = http
        self.name = name
        self.signer = RequestSigner.for_key(SigningKey.generate(hybrid=False))
        self.did = self.signer.did

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request = self.http.build_request(method, path, **kwargs)
        self.signer.sign(request)
        return await self.http.send(request)

    async def register(self) -> Person:
        key = base64.b64encode(self.signer.key.verify_key.to_bytes()).decode()
        response = await self.send(
            "POST", "/squid/identities", json={"name": self.name, "public_key": key}
        )
        assert response.status_code == 201, response.text
        return self

    async def put(self, path: str, data: bytes, **params: Any) -> dict[str, Any]:
        response = await self.send(
            "PUT", "/qdrive/files", params={"path": path, **params}, content=data
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def read(self, file_id: str, **params: Any) -> httpx.Response:
        return await self.send("GET", f"/qdrive/files/{file_id}/content", params=params)


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Person:
    return await Person(http, "alice").register()


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Person:
    return await Person(http, "bob").register()


def version_rows(node: Node, file_id: str) -> list[Any]:
    v = tables.versions
    with node.kernel.db.read() as conn:
        return list(conn.execute(select(v).where(v.c.file_id == file_id).order_by(v.c.version)))


def segment_cids(node: Node, file_id: str, version: int) -> list[str]:
    sg = tables.segments
    with node.kernel.db.read() as conn:
        return list(
            conn.execute(
                select(sg.c.blob_cid)
                .where(sg.c.file_id == file_id, sg.c.version == version)
                .order_by(sg.c.n)
            ).scalars()
        )


async def test_private_file_is_stored_encrypted_and_reads_back(node: Node, alice: Person) -> None:
    secret = b"the plan: " + os.urandom(3000)
    info = await alice.put("/notes/plan.txt", secret)
    assert info["path"] == "/notes/plan.txt" and info["size"] == len(secret)
    assert info["visibility"] == "private" and info["version"] == 1

    response = await alice.read(info["id"])
    assert response.status_code == 200
    assert response.content == secret
    [row] = version_rows(node, info["id"])
    stored = b"".join(
        b"".join(node.kernel.blobs.open(c)) for c in segment_cids(node, info["id"], 1)
    )
    assert secret[:64] not in stored and len(stored) > len(secret)
    assert row.unixfs_cid is None and row.header is not None

    # The owner's own key opens the sealed form: the data key is wrapped for them.
    sealed = await alice.send("GET", f"/qdrive/files/{info['id']}/sealed")
    mine = alice.signer.key.derive_agreement_key()
    assert b"".join(decrypt_stream([sealed.content], mine)) == secret


async def test_other_bytes_are_never_encrypted_where_some_were(node: Node, alice: Person) -> None:
    """A part's position is claimed for its bytes before they are encrypted there (its
    nonces follow from the position): after a crash between the encryption and the
    record, or a second request racing the first, only the same bytes may go there."""
    data = os.urandom(2 * CHUNK)
    started = await alice.send(
        "POST", "/qdrive/uploads", json={"path": "/claimed.bin", "size": len(data)}
    )
    upload = started.json()
    service: DriveService = node.service("qdrive")
    # As a request that encrypted the first chunk and was cut off before recording it.
    first = data[:CHUNK]
    service._claim(upload["id"], 0, hashlib.sha256(hashlib.sha256(first).digest()).digest())
    blobs_before = sorted(node.kernel.blobs.iter_cids())

    other = await alice.send(
        "PATCH",
        f"/qdrive/uploads/{upload['id']}",
        content=os.urandom(CHUNK),
        headers={"Upload-Offset": "0"},
    )
    assert other.status_code == 409, other.text
    assert other.json()["code"] == "qdrive.part_changed" and other.json()["offset"] == 0
    assert (await alice.send("GET", f"/qdrive/uploads/{upload['id']}")).json()["offset"] == 0
    assert sorted(node.kernel.blobs.iter_cids()) == blobs_before  # nothing was encrypted

    for start in (0, CHUNK):  # the same bytes go on, and so does the upload
        sent = await alice.send(
            "PATCH",
            f"/qdrive/uploads/{upload['id']}",
            content=data[start : start + CHUNK],
            headers={"Upload-Offset": str(start)},
        )
        assert sent.status_code == 200, sent.text
    done = await alice.send("POST", f"/qdrive/uploads/{upload['id']}/complete")
    assert done.status_code == 201, done.text
    assert (await alice.read(done.json()["id"])).content == data


async def test_resumable_upload_in_parts(node: Node, alice: Person) -> None:
    data = os.urandom(700_000)
    started = await alice.send(
        "POST", "/qdrive/uploads", json={"path": "/big.bin", "size": len(data)}
    )
    assert started.status_code == 201, started.text
    upload = started.json()
    assert upload["offset"] == 0 and upload["part_multiple_bytes"] == CHUNK

    ragged = await alice.send(
        "PATCH",
        f"/qdrive/uploads/{upload['id']}",
        content=data[:300_000],
        headers={"Upload-Offset": "0"},
    )
    assert ragged.status_code == 400  # not whole chunks, and not the end
    first = await alice.send(
        "PATCH",
        f"/qdrive/uploads/{upload['id']}",
        content=data[:CHUNK],
        headers={"Upload-Offset": "0"},
    )
    assert first.json()["offset"] == CHUNK
    # A part sent again (a retry after a lost answer) is refused and says where to go on.
    again = await alice.send(
        "PATCH",
        f"/qdrive/uploads/{upload['id']}",
        content=data[:CHUNK],
        headers={"Upload-Offset": "0"},
    )
    assert again.status_code == 409 and again.json()["offset"] == CHUNK
    early = await alice.send("POST", f"/qdrive/uploads/{upload['id']}/complete")
    assert early.status_code == 409

    status = (await alice.send("GET", f"/qdrive/uploads/{upload['id']}")).json()
    for start, end in ((status["offset"], 2 * CHUNK), (2 * CHUNK, len(data))):
        sent = await alice.send(
            "PATCH",
            f"/qdrive/uploads/{upload['id']}",
            content=data[start:end],
            headers={"Upload-Offset": str(start)},
        )
        assert sent.status_code == 200, sent.text
    done = await alice.send("POST", f"/qdrive/uploads/{upload['id']}/complete")
    assert done.status_code == 201, done.text
    assert (await alice.read(done.json()["id"])).content == data
    assert len(segment_cids(node, done.json()["id"], 1)) == 3  # the parts are the body
    with node.kernel.db.read() as conn:
        assert conn.execute(select(tables.upload_parts)).all() == []


async def test_public_upload_in_parts_gets_the_same_cid(alice: Person) -> None:
    data = os.urandom(3 * CHUNK + 123)
    upload = (
        await alice.send(
            "POST",
            "/qdrive/uploads",
            json={"path": "/p.bin", "size": len(data), "visibility": "public"},
        )
    ).json()
    for start in range(0, len(data), 2 * CHUNK):
        part = data[start : start + 2 * CHUNK]
        sent = await alice.send(
            "PATCH",
            f"/qdrive/uploads/{upload['id']}",
            content=part,
            headers={"Upload-Offset": str(start)},
        )
        assert sent.status_code == 200, sent.text
    done = (await alice.send("POST", f"/qdrive/uploads/{upload['id']}/complete")).json()
    [version] = (await alice.send("GET", f"/qdrive/files/{done['id']}/versions")).json()
    assert version["cid"] == unixfs_cid([data])
    assert (await alice.read(done["id"])).content == data


async def test_public_file_has_the_ipfs_cid(node: Node, alice: Person) -> None:
    data = hashlib.sha256(b"x").digest() * 8193  # two chunks: a dag-pb root over raw leaves
    info = await alice.put("/pub/data.bin", data, visibility="public")
    [version] = (await alice.send("GET", f"/qdrive/files/{info['id']}/versions")).json()
    assert version["cid"] == unixfs_cid([data]) and version["cid"].startswith("bafybei")
    assert version["encrypted"] is False
    found = await alice.send("GET", "/qdrive/resolve", params={"ref": version["cid"]})
    assert found.json()["id"] == info["id"]
    assert (await alice.read(info["id"])).content == data


async def test_share_wraps_the_key_and_unshare_takes_it_back(
    node: Node, alice: Person, bob: Person
) -> None:
    data = b"for bob's eyes " * 100
    info = await alice.put("/shared/letter.txt", data)
    assert (await bob.read(info["id"])).status_code == 403

    shared = await alice.send(
        "POST", f"/qdrive/files/{info['id']}/shares", json={"grantee": bob.did}
    )
    assert shared.status_code == 201, shared.text
    assert (await bob.read(info["id"])).content == data
    # Bob's own key opens the stored stream: the data key was wrapped for him.
    sealed = await bob.send("GET", f"/qdrive/files/{info['id']}/sealed")
    bobs = bob.signer.key.derive_agreement_key()
    assert b"".join(decrypt_stream([sealed.content], bobs)) == data
    listed = (await alice.send("GET", f"/qdrive/files/{info['id']}/shares")).json()
    assert [s["grantee"] for s in listed] == [bob.did]

    gone = await alice.send("DELETE", f"/qdrive/files/{info['id']}/shares/{bob.did}")
    assert gone.status_code == 204
    assert (await bob.read(info["id"])).status_code == 403

    # The next version gets a new data key that was never wrapped for Bob.
    await alice.put("/shared/letter.txt", b"version two", overwrite="true")
    first, second = version_rows(node, info["id"])
    bob_key_id = bob.signer.key.verify_key.derive_recipient_key().key_id
    assert bob_key_id in stream_recipients(first.header)
    assert bob_key_id not in stream_recipients(second.header)


async def test_readers_past_a_full_header_are_served_through_their_grant(
    node: Node, alice: Person, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anarq.qdrive.service

    monkeypatch.setattr(anarq.qdrive.service, "MAX_RECIPIENTS", 3)  # the node, alice, one more
    info = await alice.put("/popular.txt", b"everyone reads this")
    readers = [await Person(http, f"reader{i}").register() for i in range(3)]
    answers = []
    for reader in readers:
        shared = await alice.send(
            "POST", f"/qdrive/files/{info['id']}/shares", json={"grantee": reader.did}
        )
        assert shared.status_code == 201, shared.text
        answers.append(shared.json()["key_wrapped"])

    assert answers == [True, False, False]
    for reader in readers:
        assert (await reader.read(info["id"])).content == b"everyone reads this"
    # A new version is wrapped for as many readers as a header holds; the rest still read.
    await alice.put("/popular.txt", b"second edition", overwrite="true")
    _first, second = version_rows(node, info["id"])
    assert len(stream_recipients(second.header)) == 3
    for reader in readers:
        assert (await reader.read(info["id"])).content == b"second edition"


async def test_reads_are_audited(node: Node, alice: Person, bob: Person) -> None:
    from anarq.qerberos import tables as audit

    info = await alice.put("/a.txt", b"hello")
    await alice.read(info["id"])
    await bob.read(info["id"])
    with node.kernel.db.read() as conn:
        rows = conn.execute(
            select(audit.entries.c.actor, audit.entries.c.verdict).where(
                audit.entries.c.resource == f"qdrive:file:{info['id']}",
                audit.entries.c.action == "read",
            )
        ).all()
    assert (alice.did, "allow") in rows and (bob.did, "deny") in rows


async def test_versions_dedup_trash_restore_and_purge(node: Node, alice: Person) -> None:
    one = await alice.put("/doc.txt", b"first")
    two = await alice.put("/doc.txt", b"second", overwrite="true")
    assert two["id"] == one["id"] and two["version"] == 2
    versions = (await alice.send("GET", f"/qdrive/files/{one['id']}/versions")).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert (await alice.read(one["id"], version=1)).content == b"first"
    taken = await alice.send("PUT", "/qdrive/files", params={"path": "/doc.txt"}, content=b"x")
    assert taken.status_code == 409

    copy = await alice.put("/copy.txt", b"second")  # same content: stored once
    assert segment_cids(node, copy["id"], 1) == segment_cids(node, one["id"], 2)

    trashed = await alice.send("DELETE", f"/qdrive/files/{one['id']}")
    assert trashed.json()["trashed_at"] is not None
    listing = (await alice.send("GET", "/qdrive/files", params={"trash": "true"})).json()
    assert [e["name"] for e in listing["entries"]] == ["doc.txt"]
    restored = await alice.send("POST", f"/qdrive/files/{one['id']}/restore")
    assert restored.json()["trashed_at"] is None

    blobs = [segment_cids(node, one["id"], 1)[0], segment_cids(node, one["id"], 2)[0]]
    purged = await alice.send("DELETE", f"/qdrive/files/{one['id']}", params={"forever": "true"})
    assert purged.status_code == 204
    assert version_rows(node, one["id"]) == []
    assert not node.kernel.blobs.exists(blobs[0])  # only /doc.txt used it
    assert node.kernel.blobs.exists(blobs[1])  # /copy.txt still does
    assert (await alice.read(one["id"])).status_code == 404
    with node.kernel.db.read() as conn:
        types = set(conn.execute(select(outbox.c.type)).scalars())
    assert {"qdrive.file.stored", "qdrive.file.deleted"} <= types


async def test_folders_list_and_move(alice: Person) -> None:
    for path in ("/photos/2026/a.jpg", "/photos/2026/b.jpg", "/photos/c.jpg", "/top.txt"):
        await alice.put(path, path.encode())
    root = (await alice.send("GET", "/qdrive/files")).json()
    assert [(e["kind"], e["name"]) for e in root["entries"]] == [
        ("folder", "photos"),
        ("file", "top.txt"),
    ]
    moved = await alice.send(
        "POST", "/qdrive/move", json={"source": "/photos/2026", "target": "/archive/2026"}
    )
    assert sorted(f["path"] for f in moved.json()) == [
        "/archive/2026/a.jpg",
        "/archive/2026/b.jpg",
    ]
    photos = (await alice.send("GET", "/qdrive/files", params={"folder": "/photos"})).json()
    assert [e["name"] for e in photos["entries"]] == ["c.jpg"]
    into_itself = await alice.send(
        "POST", "/qdrive/move", json={"source": "/archive", "target": "/archive/x"}
    )
    assert into_itself.status_code == 400


@pytest.mark.parametrize(
    "path", ["/../etc/passwd", "/a/./b", "", "/", "/bad\x01name", "/" + "x" * 1100]
)
async def test_bad_paths_are_4xx_and_store_nothing(node: Node, alice: Person, path: str) -> None:
    response = await alice.send("PUT", "/qdrive/files", params={"path": path}, content=b"x")
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    with node.kernel.db.read() as conn:
        assert conn.execute(select(tables.files)).all() == []


async def test_quota_refuses_what_does_not_fit(
    node: Node, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    await alice.put("/one.bin", os.urandom(1000))
    quota = (await alice.send("GET", "/qdrive/quota")).json()
    assert quota["used_bytes"] == 1000 and quota["files"] == 1
    limited = node.kernel.settings.model_copy(update={"drive_quota_bytes": 1500})
    monkeypatch.setattr(node.kernel, "settings", limited)
    response = await alice.send(
        "PUT", "/qdrive/files", params={"path": "/two.bin"}, content=os.urandom(600)
    )
    assert response.status_code == 413
    assert response.json()["code"] == "qdrive.quota_exceeded"
    started = await alice.send("POST", "/qdrive/uploads", json={"path": "/b", "size": 501})
    assert started.status_code == 413
    with node.kernel.db.read() as conn:
        assert len(conn.execute(select(tables.files)).all()) == 1


async def test_parts_past_the_declared_size_are_refused(alice: Person) -> None:
    upload = (
        await alice.send("POST", "/qdrive/uploads", json={"path": "/small", "size": 10})
    ).json()
    over = await alice.send(
        "PATCH",
        f"/qdrive/uploads/{upload['id']}",
        content=b"x" * 11,
        headers={"Upload-Offset": "0"},
    )
    assert over.status_code == 400
    assert (await alice.send("GET", f"/qdrive/uploads/{upload['id']}")).json()["offset"] == 0
    aborted = await alice.send("DELETE", f"/qdrive/uploads/{upload['id']}")
    assert aborted.status_code == 204
    assert (await alice.send("GET", f"/qdrive/uploads/{upload['id']}")).status_code == 404


async def test_share_links_with_password_expiry_and_cap(
    node: Node, http: httpx.AsyncClient, alice: Person
) -> None:
    info = await alice.put("/party.txt", b"see you at eight")
    made = await alice.send(
        "POST",
        f"/qdrive/files/{info['id']}/links",
        json={"password": "open sesame", "max_downloads": 2},
    )
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["token"].startswith("anq_lnk_") and link["password"] is True

    no_password = await http.get(link["url_path"])
    assert no_password.status_code == 401
    wrong = await http.get(link["url_path"], headers={"X-Anarq-Link-Password": "nope"})
    assert wrong.status_code == 401
    right = {"X-Anarq-Link-Password": "open sesame"}
    first = await http.get(link["url_path"], headers=right)
    assert first.status_code == 200 and first.content == b"see you at eight"
    assert "attachment" in first.headers["content-disposition"]
    assert (await http.get(link["url_path"], headers=right)).status_code == 200
    assert (await http.get(link["url_path"], headers=right)).status_code == 404  # cap reached

    listed = (await alice.send("GET", f"/qdrive/files/{info['id']}/links")).json()
    assert listed[0]["downloads"] == 2 and listed[0]["token"] is None  # the node keeps a hash

    open_link = (await alice.send("POST", f"/qdrive/files/{info['id']}/links", json={})).json()
    assert (await http.get(open_link["url_path"])).status_code == 200
    revoked = await alice.send("DELETE", f"/qdrive/links/{open_link['id']}")
    assert revoked.json()["revoked_at"] is not None
    assert (await http.get(open_link["url_path"])).status_code == 404
    assert (await http.get("/qdrive/l/anq_lnk_made_up")).status_code == 404
    past = await alice.send(
        "POST",
        f"/qdrive/files/{info['id']}/links",
        json={"expires_at": "2020-01-01T00:00:00Z"},
    )
    assert past.status_code == 400


async def test_car_export_reimports_to_the_same_bytes_and_cid(node: Node, alice: Person) -> None:
    import io

    from anarq.qdrive import car

    data = os.urandom(600_000)  # three chunks
    info = await alice.put("/export/me.bin", data)
    exported = await alice.send("GET", f"/qdrive/files/{info['id']}/car")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/vnd.ipld.car"
    reader = car.CarReader.open(io.BytesIO(exported.content))
    assert str(reader.roots[0]) == unixfs_cid([data])
    [entry] = list(car.files(reader, reader.roots[0]))
    assert entry.size == len(data)
    assert b"".join(car.content(reader, entry.cid)) == data


async def test_empty_files_both_ways(alice: Person) -> None:
    small = await alice.put("/empty-put", b"")
    assert (await alice.read(small["id"])).content == b""
    upload = (await alice.send("POST", "/qdrive/uploads", json={"path": "/e", "size": 0})).json()
    done = await alice.send("POST", f"/qdrive/uploads/{upload['id']}/complete")
    assert done.status_code == 201, done.text
    assert (await alice.read(done.json()["id"])).content == b""
    public = await alice.put("/empty-public", b"", visibility="public")
    [version] = (await alice.send("GET", f"/qdrive/files/{public['id']}/versions")).json()
    assert version["cid"] == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


async def test_a_version_sealed_with_chacha20_still_reads_beside_aes_gcm_ones(
    node: Node, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files stored before AES-256-GCM (or on a CPU without AES) keep ChaCha20-Poly1305.
    old, new = os.urandom(2 * CHUNK + 5), os.urandom(CHUNK + 7)
    monkeypatch.setattr(stream_module, "_cpu_has_aes", lambda: False)
    info = await alice.put("/mixed.bin", old)
    monkeypatch.setattr(stream_module, "_cpu_has_aes", lambda: True)
    await alice.put("/mixed.bin", new, overwrite=True)

    with node.kernel.db.read() as conn:
        headers = conn.execute(
            select(tables.versions.c.version, tables.versions.c.header)
            .where(tables.versions.c.file_id == info["id"])
            .order_by(tables.versions.c.version)
        ).all()
    assert [row.header[5:7] for row in headers] == [b"\x00\x03", b"\x00\x02"]
    assert (await alice.read(info["id"], version=1)).content == old
    assert (await alice.read(info["id"], version=2)).content == new
