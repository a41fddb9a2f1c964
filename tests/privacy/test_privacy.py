"""Data-subject requests: a full export, and an erasure with a signed receipt."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import httpx
from sqlalchemy import select

from anarq.kernel.node import Node
from anarq.privacy.service import canonical
from anarq.qdrive import tables as drive
from anarq.qerberos import tables as audit
from anarq.qlock import verify_detached
from anarq.qonsent import tables as consent
from tests.qdrive.test_drive import Person


def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 80, 20)).save(out, "PNG")
    return out.getvalue()


async def test_export_holds_everything_and_a_signed_manifest(
    node: Node, http: httpx.AsyncClient
) -> None:
    alice = await Person(http, "alice").register()
    bob = await Person(http, "bob").register()
    secret = b"my diary " * 50
    info = await alice.put("/diary/2026.txt", secret)
    await alice.send("POST", f"/qdrive/files/{info['id']}/shares", json={"grantee": bob.did})

    response = await alice.send("GET", "/privacy/export")
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert {
        "squid/identity.json",
        "qonsent/grants-given.json",
        "qdrive/files.json",
        "qdrive/files/diary/2026.txt",
        "qerberos/audit-entries.jsonl",
        "manifest.json",
    } <= names
    assert archive.read("qdrive/files/diary/2026.txt") == secret
    assert json.loads(archive.read("squid/identity.json"))["name"] == "alice"
    given = json.loads(archive.read("qonsent/grants-given.json"))
    assert [g["grantee"] for g in given] == [bob.did]

    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["subject"] == alice.did
    for entry in manifest["entries"]:
        assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
    signature = json.loads(archive.read("manifest.sig.json"))
    verify_detached(node.service("node").identity.verify_key(), canonical(manifest), signature)
    # Bob's export holds none of Alice's files.
    bobs = zipfile.ZipFile(io.BytesIO((await bob.send("GET", "/privacy/export")).content))
    assert not any(name.startswith("qdrive/files/") for name in bobs.namelist())
    assert (await http.get("/privacy/export")).status_code in (401, 403)


async def test_erasure_shreds_revokes_and_signs_a_receipt(
    node: Node, http: httpx.AsyncClient
) -> None:
    alice = await Person(http, "alice").register()
    bob = await Person(http, "bob").register()
    info = await alice.put("/letters/one.txt", b"dear bob")
    profile = await alice.send(
        "POST",
        "/qmask/profiles",
        json={"name": "mine", "rules": [{"field": "email", "action": "remove"}]},
    )
    assert profile.status_code == 201, profile.text
    pointer = await alice.send(
        "PUT",
        "/qindex/pointers/home",
        json={"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
    )
    assert pointer.status_code in (200, 201), pointer.text
    photo = await alice.send("POST", "/qpic/upload", params={"name": "cat.png"}, content=tiny_png())
    assert photo.status_code == 201, photo.text
    await alice.send("POST", f"/qdrive/files/{info['id']}/shares", json={"grantee": bob.did})
    with node.kernel.db.read() as conn:
        blobs = list(conn.execute(select(drive.segments.c.blob_cid)).scalars())

    wrong = await alice.send("POST", "/privacy/erase", json={"confirm": bob.did})
    assert wrong.status_code == 400
    assert (await alice.read(info["id"])).status_code == 200  # nothing changed

    response = await alice.send("POST", "/privacy/erase", json={"confirm": alice.did})
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["subject"] == alice.did
    # The letter, and the photo: its original and two thumbnails.
    assert receipt["erased"]["qdrive"]["files_shredded"] == 4
    assert receipt["erased"]["qonsent"]["grants_revoked"] == 1
    assert receipt["erased"]["squid"]["identities"] == 1
    assert receipt["erased"]["qmask"]["profiles"] == 1
    assert receipt["erased"]["qindex"]["pointers"] == 1
    assert receipt["erased"]["qpic"]["photos"] == 1
    body = {k: v for k, v in receipt.items() if k != "signature"}
    verify_detached(
        node.service("node").identity.verify_key(), canonical(body), receipt["signature"]
    )

    assert all(not node.kernel.blobs.exists(cid) for cid in blobs)
    with node.kernel.db.read() as conn:
        assert conn.execute(select(drive.versions)).all() == []
        live = conn.execute(
            select(consent.grants).where(consent.grants.c.revoked_at.is_(None))
        ).all()
        assert live == []
        digest = hashlib.sha256(canonical(receipt)).hexdigest()
        recorded = conn.execute(
            select(audit.entries.c.resource).where(
                audit.entries.c.resource == f"privacy:erasure:{digest}"
            )
        ).all()
    assert recorded
    # The identity is revoked: its signatures no longer open anything.
    assert (await alice.send("GET", "/qdrive/quota")).status_code == 401
    assert (await bob.read(info["id"])).status_code == 404
