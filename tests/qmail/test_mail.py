"""Qmail through the HTTP API: sealed mail between identities, folders, receipts, expiry."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from anarq.kernel.clock import ManualClock, rfc3339
from anarq.kernel.db import metadata
from anarq.kernel.node import Node
from anarq.qerberos import merkle
from anarq.qlock import RecipientKey, SigningKey, VerifyKey
from anarq.qmail import tables
from anarq.qmail.envelope import (
    compose,
    open_message,
    receipt,
    receipt_digest,
    seal_message,
    sign_receipt,
    verify_receipt,
    verify_sender,
)
from tests.qdrive.test_drive import Person


class Mailer(Person):
    """A registered identity whose client seals, signs and opens its own mail."""

    def __init__(self, http: httpx.AsyncClient, name: str, *, hybrid: bool = False) -> None:
        super().__init__(http, name)
        if hybrid:
            from anarq.sdk.signing import RequestSigner

            self.signer = RequestSigner.for_key(SigningKey.generate(hybrid=True))
            self.did = self.signer.did

    async def mail_key(self, did: str) -> dict[str, Any]:
        response = await self.http.get(f"/qmail/keys/{did}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def seal(self, to: list[str], subject: str, body: str, **fields: Any) -> str:
        readers = []
        for did in [self.did, *to]:
            key = await self.mail_key(did)
            readers.append(RecipientKey.from_bytes(base64.b64decode(key["recipient_key"])))
        message = compose(
            sender=self.did,
            to=to,
            subject=subject,
            body=body,
            sent_at=rfc3339(datetime.now(UTC)),
            in_reply_to=fields.get("in_reply_to"),
        )
        sealed = seal_message(self.signer.key, message, readers)
        return base64.urlsafe_b64encode(sealed).decode()

    async def send_mail(
        self, to: list[str], subject: str, body: str = "hello", **fields: Any
    ) -> httpx.Response:
        envelope = await self.seal(to, subject, body, **fields)
        return await self.send(
            "POST", "/qmail/messages", json={"to": to, "envelope": envelope, **fields}
        )

    async def sent(self, to: list[str], subject: str, body: str = "hello", **fields: Any) -> dict:
        response = await self.send_mail(to, subject, body, **fields)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def folder(self, name: str) -> list[dict[str, Any]]:
        response = await self.send("GET", "/qmail/messages", params={"folder": name})
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    async def open(self, message_id: str) -> dict[str, Any]:
        response = await self.send("GET", f"/qmail/messages/{message_id}/sealed")
        assert response.status_code == 200, response.text
        opened = open_message(response.content, self.signer.key.derive_agreement_key())
        key = await self.mail_key(opened.sender)
        verify_sender(
            opened, opened.sender, VerifyKey.from_bytes(base64.b64decode(key["verify_key"]))
        )
        return opened.message


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Mailer:
    return await Mailer(http, "alice", hybrid=True).register()  # type: ignore[return-value]


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Mailer:
    return await Mailer(http, "bob").register()  # type: ignore[return-value]


@pytest.fixture
async def carol(http: httpx.AsyncClient) -> Mailer:
    return await Mailer(http, "carol").register()  # type: ignore[return-value]


def row_counts(node: Node) -> dict[str, int]:
    from sqlalchemy import func

    with node.kernel.db.read() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in tables.TABLES
        }


async def test_message_goes_sealed_from_sender_to_recipient(alice: Mailer, bob: Mailer) -> None:
    sent = await alice.sent([bob.did], "lunch?", "at noon, the usual place")
    assert sent["folder"] == "sent" and sent["recipients"] == [bob.did]
    [arrived] = await bob.folder("requests")  # alice is not yet bob's contact
    assert arrived["id"] == sent["id"] and arrived["sender"] == alice.did
    message = await bob.open(sent["id"])
    assert message["subject"] == "lunch?" and message["body"] == "at noon, the usual place"
    assert message["from"] == alice.did and message["to"] == [bob.did]
    assert (await alice.open(sent["id"]))["subject"] == "lunch?"  # the sender's own copy


async def test_stranger_cannot_read_a_message(alice: Mailer, bob: Mailer, carol: Mailer) -> None:
    sent = await alice.sent([bob.did], "private")
    for path in ("", "/sealed", "/proof"):
        response = await carol.send("GET", f"/qmail/messages/{sent['id']}{path}")
        assert response.status_code == 404, response.text
    anonymous = await carol.http.get(f"/qmail/messages/{sent['id']}/sealed")
    assert anonymous.status_code == 401


async def test_contacts_and_replies_reach_the_inbox(alice: Mailer, bob: Mailer) -> None:
    first = await alice.sent([bob.did], "first")
    assert [m["id"] for m in await bob.folder("requests")] == [first["id"]]
    reply = await bob.sent([alice.did], "re: first", in_reply_to=first["id"])
    assert reply["thread_id"] == first["id"]
    # A reply in a thread alice started lands in her inbox, though bob is no contact.
    assert [m["id"] for m in await alice.folder("inbox")] == [reply["id"]]
    added = await bob.send("POST", "/qmail/contacts", json={"contact": alice.did, "name": "A"})
    assert added.status_code == 201, added.text
    second = await alice.sent([bob.did], "second")
    assert [m["id"] for m in await bob.folder("inbox")] == [second["id"]]
    listed = await bob.send("GET", "/qmail/contacts")
    assert [c["contact"] for c in listed.json()] == [alice.did]
    thread = await alice.send("GET", "/qmail/messages", params={"thread": first["id"]})
    assert {m["id"] for m in thread.json()["messages"]} == {first["id"], reply["id"]}


async def test_folders_labels_pagination_and_delete(node: Node, alice: Mailer, bob: Mailer) -> None:
    ids = [(await alice.sent([bob.did], f"note {n}"))["id"] for n in range(3)]
    page = await bob.send("GET", "/qmail/messages", params={"folder": "requests", "limit": 2})
    first = page.json()
    assert [m["id"] for m in first["messages"]] == ids[::-1][:2] and first["next"] == ids[1]
    rest = await bob.send(
        "GET", "/qmail/messages", params={"folder": "requests", "before": first["next"]}
    )
    assert [m["id"] for m in rest.json()["messages"]] == [ids[0]]

    moved = await bob.send("POST", f"/qmail/messages/{ids[0]}/move", json={"folder": "archive"})
    assert moved.json()["folder"] == "archive"
    labelled = await bob.send("POST", f"/qmail/messages/{ids[0]}/labels", json={"label": "tax"})
    assert labelled.json()["labels"] == ["tax"]
    by_label = await bob.send("GET", "/qmail/messages", params={"label": "tax"})
    assert [m["id"] for m in by_label.json()["messages"]] == [ids[0]]

    assert (await bob.send("DELETE", f"/qmail/messages/{ids[0]}")).status_code == 204
    assert [m["id"] for m in await bob.folder("trash")] == [ids[0]]
    assert (await bob.send("DELETE", f"/qmail/messages/{ids[0]}")).status_code == 204
    assert await bob.folder("trash") == []
    # alice still holds her copy: the envelope stays until no mailbox holds it.
    assert (await alice.open(ids[0]))["subject"] == "note 0"
    assert (await alice.send("DELETE", f"/qmail/messages/{ids[0]}?forever=true")).status_code == 204
    with node.kernel.db.read() as conn:
        m = tables.messages
        assert conn.execute(select(m).where(m.c.id == ids[0])).first() is None


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"to": ["did:key:z6MkunknownRecipientThatIsNotRegistered"]}, id="unknown"),
        pytest.param({"envelope": "not an envelope!"}, id="not-base64"),
        pytest.param({"envelope": base64.urlsafe_b64encode(b"QLSE garbage").decode()}, id="bad"),
        pytest.param({"in_reply_to": "01JZZZZZZZZZZZZZZZZZZZZZZZ"}, id="unknown-parent"),
        pytest.param({"expires_at": "2001-01-01T00:00:00Z"}, id="expired"),
        pytest.param({"to": []}, id="nobody"),
        pytest.param({"subject": "x"}, id="unknown-field"),
    ],
)
async def test_bad_send_is_refused_and_stores_nothing(
    node: Node, alice: Mailer, bob: Mailer, change: dict[str, Any]
) -> None:
    envelope = await alice.seal([bob.did], "refused", "never stored")
    before = row_counts(node)
    response = await alice.send(
        "POST", "/qmail/messages", json={"to": [bob.did], "envelope": envelope, **change}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert row_counts(node) == before


async def test_envelope_not_sealed_to_a_recipient_is_refused(
    node: Node, alice: Mailer, bob: Mailer, carol: Mailer
) -> None:
    envelope = await alice.seal([bob.did], "for bob only", "hi")
    response = await alice.send(
        "POST", "/qmail/messages", json={"to": [bob.did, carol.did], "envelope": envelope}
    )
    assert response.status_code == 400 and response.json()["code"] == "qmail.malformed_envelope"
    assert row_counts(node)["qmail_messages"] == 0


async def test_oversize_message_is_refused(node: Node, alice: Mailer, bob: Mailer) -> None:
    from anarq.qmail.service import MessageTooLarge, _decode_envelope

    huge = base64.urlsafe_b64encode(os.urandom(8 * 1024 * 1024 + 1)).decode()
    with pytest.raises(MessageTooLarge):
        _decode_envelope(huge)
    response = await alice.send("POST", "/qmail/messages", json={"to": [bob.did], "envelope": huge})
    assert response.status_code == 413, response.text
    assert row_counts(node)["qmail_messages"] == 0


async def test_receipts_are_signed_and_in_the_audit_log(
    node: Node, alice: Mailer, bob: Mailer
) -> None:
    sent = await alice.sent([bob.did], "certified")
    read = receipt(
        kind="read",
        message_id=sent["id"],
        digest=sent["digest"],
        recipient=bob.did,
        time=rfc3339(datetime.now(UTC)),
        issuer=bob.did,
    )
    signed = sign_receipt(bob.signer.key, read)
    forged = sign_receipt(SigningKey.generate(hybrid=False), read)
    refused = await bob.send("POST", f"/qmail/messages/{sent['id']}/read", json={"receipt": forged})
    assert refused.status_code == 400, refused.text
    padded = sign_receipt(bob.signer.key, {**read, "note": "x" * 1000})
    extra = await bob.send("POST", f"/qmail/messages/{sent['id']}/read", json={"receipt": padded})
    assert extra.status_code == 400 and "note" in extra.json()["detail"]
    given = await bob.send("POST", f"/qmail/messages/{sent['id']}/read", json={"receipt": signed})
    assert given.status_code == 200 and given.json()["read_at"] is not None
    again = await bob.send("POST", f"/qmail/messages/{sent['id']}/read", json={"receipt": signed})
    assert again.status_code == 409

    proof = (await alice.send("GET", f"/qmail/messages/{sent['id']}/proof")).json()
    kinds = {p["receipt"]["kind"]: p for p in proof["receipts"]}
    assert set(kinds) == {"delivery", "read"}
    node_key = node.service("node").identity.verify_key()
    verify_receipt(kinds["delivery"]["receipt"]["document"], node_key)
    verify_receipt(kinds["read"]["receipt"]["document"], bob.signer.key.verify_key)
    for item in proof["receipts"]:
        document = item["receipt"]["document"]
        assert document["digest"] == sent["digest"] and document["recipient"] == bob.did
        assert f"qmail:receipt:{receipt_digest(document)}" in item["audit_leaf"]
        inclusion = item["inclusion"]
        assert merkle.verify_inclusion(
            merkle.leaf_hash(item["audit_leaf"].encode()),
            inclusion["leaf_index"],
            inclusion["tree_size"],
            [base64.b64decode(step) for step in inclusion["proof"]],
            base64.b64decode(inclusion["tree_head"]["root"]),
        )
    bobs = (await bob.send("GET", f"/qmail/messages/{sent['id']}/proof")).json()
    assert {p["receipt"]["recipient"] for p in bobs["receipts"]} == {bob.did}


async def test_expired_messages_are_deleted_for_good(
    node: Node, alice: Mailer, bob: Mailer
) -> None:
    soon = rfc3339(datetime.now(UTC) + timedelta(days=7))
    sent = await alice.sent([bob.did], "self-destruct", expires_at=soon)
    kept = await alice.sent([bob.did], "stays")
    with node.kernel.db.read() as conn:
        cid = conn.execute(
            select(tables.messages.c.blob_cid).where(tables.messages.c.id == sent["id"])
        ).scalar_one()
    svc = node.service("qmail")
    assert svc.delete_expired() == 0
    real_clock = node.kernel.clock
    node.kernel.clock = ManualClock(datetime.now(UTC) + timedelta(days=8))
    try:
        assert svc.delete_expired() == 1
    finally:
        node.kernel.clock = real_clock
    assert not node.kernel.blobs.exists(cid)
    assert [m["id"] for m in await bob.folder("requests")] == [kept["id"]]
    with node.kernel.db.read() as conn:
        for table in (tables.entries, tables.receipts, tables.messages):
            column = table.c.id if table is tables.messages else table.c.message_id
            assert conn.execute(select(table).where(column == sent["id"])).first() is None


def files_holding(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_no_plaintext_reaches_the_node(
    node: Node, settings: Any, alice: Mailer, bob: Mailer
) -> None:
    marker = f"plaintext-marker-{os.urandom(8).hex()}"
    await alice.sent([bob.did], f"subject {marker}", f"body {marker}")
    needle = marker.encode()
    if settings.backend_kind == "embedded":
        assert files_holding(Path(settings.data_dir), needle) == []
    with node.kernel.db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                assert marker not in repr(tuple(row)), f"plaintext in {table.name}"
    # And the envelope, as stored, does not contain it either.
    with node.kernel.db.read() as conn:
        cid = conn.execute(select(tables.messages.c.blob_cid)).scalar_one()
    assert needle not in b"".join(node.kernel.blobs.open(cid))


async def test_mail_key_of_unknown_identity_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/qmail/keys/did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_export_and_erase_the_mailbox(node: Node, alice: Mailer, bob: Mailer) -> None:
    from anarq.kernel.guard import Context

    sent = await alice.sent([bob.did], "mine")
    svc = node.service("qmail")
    items = {
        item.name: b"".join(item.chunks) for item in svc.export_subject(Context.system(), bob.did)
    }
    assert json.loads(items["mailbox.json"])[0]["message_id"] == sent["id"]
    assert f"sealed/{sent['id']}.qlse" in items
    erased = svc.erase_subject(Context.system(), bob.did)
    assert erased["entries"] == 1 and erased["messages_deleted"] == 0
    erased = svc.erase_subject(Context.system(), alice.did)
    assert erased["messages_deleted"] == 1
    assert row_counts(node)["qmail_messages"] == 0


async def test_a_resent_envelope_is_refused_and_the_original_stays(
    alice: Mailer, bob: Mailer
) -> None:
    sent = await alice.sent([bob.did], "original", "keep me")
    envelope = (await bob.send("GET", f"/qmail/messages/{sent['id']}/sealed")).content
    text = base64.urlsafe_b64encode(envelope).decode()
    resent = await bob.send("POST", "/qmail/messages", json={"to": [bob.did], "envelope": text})
    assert resent.status_code == 409, resent.text
    # Had it been taken, deleting that copy for good would take the shared envelope with it.
    if resent.status_code == 201:
        await bob.send("DELETE", f"/qmail/messages/{resent.json()['id']}?forever=true")
    assert (await alice.open(sent["id"]))["body"] == "keep me"


async def test_an_expiry_without_a_time_zone_is_a_400(alice: Mailer, bob: Mailer) -> None:
    response = await alice.send_mail([bob.did], "tz", expires_at="2999-01-01T00:00:00")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# Postage --------------------------------------------------------------------------------

PI = 10**8


async def fund(http: httpx.AsyncClient, operator: dict[str, str], who: Mailer, pi: int) -> None:
    body = {"id": f"fund-{who.name}", "to": who.did, "amount": str(pi * PI)}
    minted = await http.post("/qwallet/assets/PI/mint", json=body, headers=operator)
    assert minted.status_code == 201, minted.text


async def available(who: Mailer) -> int:
    accounts = (await who.send("GET", "/qwallet/accounts", params={"asset": "PI"})).json()
    return sum(int(a["balance"]) for a in accounts if a["name"] == "main")


async def test_postage_takes_a_stranger_to_the_inbox_and_pays_the_recipient(
    http: httpx.AsyncClient,
    operator: dict[str, str],
    node: Node,
    alice: Mailer,
    bob: Mailer,
    carol: Mailer,
) -> None:
    price = {"asset": "PI", "amount": str(PI // 10)}
    asked = await bob.send("PUT", "/qmail/postage", json=price)
    assert asked.status_code == 200, asked.text
    assert (await http.get(f"/qmail/postage/{bob.did}")).json()["amount"] == str(PI // 10)
    assert (await http.get(f"/qmail/postage/{carol.did}")).status_code == 404
    await fund(http, operator, alice, 1)

    offer = {"asset": "PI", "max_amount": str(PI // 5)}
    paid = await alice.sent([bob.did, carol.did], "a paid hello", postage=offer)

    assert [m["id"] for m in await bob.folder("inbox")] == [paid["id"]]
    assert [m["id"] for m in await carol.folder("requests")] == [paid["id"]]  # asks nothing
    assert await available(alice) == PI - PI // 10  # only bob charged, and his price only
    assert await available(bob) == PI // 10 - PI // 10 * 50 // 10_000  # PI's 0.5 %, as a payee
    books = (await http.get("/qwallet/books", headers=operator)).json()
    assert books["ok"], books["problems"]

    too_little = {"asset": "PI", "max_amount": str(PI // 20)}
    cheap = await alice.sent([bob.did], "a cheap hello", postage=too_little)
    await alice.send("POST", "/qwallet/accounts", json={"asset": "QTOKEN"})
    other = await alice.sent([bob.did], "in tokens", postage={"asset": "QTOKEN", "max_amount": "1"})
    unpaid = await alice.sent([bob.did], "no postage")
    requests = {m["id"] for m in await bob.folder("requests")}
    assert {cheap["id"], other["id"], unpaid["id"]} <= requests
    assert await available(alice) == PI - PI // 10  # none of those paid anything

    await bob.send("POST", "/qmail/contacts", json={"contact": alice.did})
    friendly = await alice.sent([bob.did], "as a contact", postage=offer)
    assert friendly["id"] in {m["id"] for m in await bob.folder("inbox")}
    assert await available(alice) == PI - PI // 10  # contacts pay nothing


async def test_postage_the_sender_cannot_pay_leaves_the_message_in_requests(
    http: httpx.AsyncClient, operator: dict[str, str], alice: Mailer, bob: Mailer, carol: Mailer
) -> None:
    await bob.send("PUT", "/qmail/postage", json={"asset": "PI", "amount": str(2 * PI)})
    await fund(http, operator, alice, 1)

    sent = await alice.sent([bob.did], "hello", postage={"asset": "PI", "max_amount": str(5 * PI)})

    assert [m["id"] for m in await bob.folder("requests")] == [sent["id"]]
    assert await available(alice) == PI
    no_account = await carol.send_mail(
        [bob.did], "hi", postage={"asset": "PI", "max_amount": str(PI)}
    )
    assert no_account.status_code == 400 and "account" in no_account.json()["detail"]
    bad = await bob.send("PUT", "/qmail/postage", json={"asset": "NOPE", "amount": "1"})
    assert bad.status_code == 400
    zero = await bob.send("PUT", "/qmail/postage", json={"asset": "PI", "amount": "0"})
    assert zero.status_code == 422
    gone = await bob.send("DELETE", "/qmail/postage")
    assert gone.status_code == 204
    assert (await http.get(f"/qmail/postage/{bob.did}")).status_code == 404


async def test_strangers_with_enough_reputation_reach_the_inbox(
    http: httpx.AsyncClient, node: Node, alice: Mailer, bob: Mailer, carol: Mailer
) -> None:
    dave = await Mailer(http, "dave").register()
    # Carol has one checked fact to her name: membership of a DAO alice made.
    made = await alice.send(
        "POST", "/dao/daos", json={"name": "Allotment", "members": [{"did": carol.did}]}
    )
    assert made.status_code == 201, made.text
    assert (await bob.send("GET", "/qmail/threshold")).status_code == 404
    bad = await bob.send("PUT", "/qmail/threshold", json={"min_reputation": 5000})
    assert bad.status_code == 422
    assert (
        await bob.send("PUT", "/qmail/threshold", json={"min_reputation": 10})
    ).status_code == 200
    assert (await bob.send("GET", "/qmail/threshold")).json() == {"min_reputation": 10}

    known = await carol.sent([bob.did], "from a DAO member")
    unknown = await dave.sent([bob.did], "from nobody yet")
    assert [m["id"] for m in await bob.folder("inbox")] == [known["id"]]
    assert [m["id"] for m in await bob.folder("requests")] == [unknown["id"]]

    assert (await bob.send("DELETE", "/qmail/threshold")).status_code == 204
    later_one = await carol.sent([bob.did], "after the threshold went")
    assert later_one["id"] in {m["id"] for m in await bob.folder("requests")}
