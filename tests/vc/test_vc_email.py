"""The verified-email credential: the node mails a one-use link through a real SMTP
server (aiosmtpd on loopback); following it issues the credential to who asked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.vc import credentials as vcs
from anarq.vc import tables
from tests.conftest import free_port
from tests.vc.test_vc import Holder


class Inbox:
    """An SMTP server's handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def settings(settings: Settings, smtp: tuple[int, Inbox]) -> Settings:
    return settings.model_copy(
        update={"public_url": "http://node.test", "smtp_url": f"smtp://127.0.0.1:{smtp[0]}"}
    )


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Holder:
    person = Holder(http, "alice")
    await person.register()
    return person


def pending(node: Node) -> int:
    with node.kernel.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.email_checks)).scalar_one())


async def test_an_emailed_link_confirms_the_address_once(
    http: httpx.AsyncClient, node: Node, alice: Holder, smtp: tuple[int, Inbox]
) -> None:
    inbox = smtp[1]
    before = len(inbox.messages)
    sent = await alice.send("POST", "/vc/email", json={"email": "alice@example.org"})
    assert sent.status_code == 202, sent.text
    assert len(inbox.messages) == before + 1
    mail = inbox.messages[-1]
    assert mail["To"] == "alice@example.org" and mail["From"] == "anarq@node.test"
    text = mail.get_payload(decode=True).decode()
    assert alice.did in text
    token = re.search(r"token=([A-Za-z0-9_-]+)", text).group(1)  # type: ignore[union-attr]

    page = await http.get("/vc/email/confirm", params={"token": token})
    assert page.status_code == 200 and "<form method=post" in page.text
    assert pending(node) == 1, "opening the link confirms nothing by itself"
    confirmed = await http.post("/vc/email/confirm", data={"token": token})
    assert confirmed.status_code == 201 and "alice@example.org" in confirmed.text

    held = (await alice.send("GET", "/vc/credentials")).json()
    credential = next(h["credential"] for h in held if h["kind"] == "VerifiedEmailCredential")
    assert credential["credentialSubject"] == {"id": alice.did, "email": "alice@example.org"}
    assert vcs.verify_credential(credential, now=datetime.now(UTC)).verified

    again = await http.post("/vc/email/confirm", json={"token": token})
    assert again.status_code == 400 and "used or expired" in again.json()["detail"]
    assert (await http.post("/vc/email/confirm", json={"nope": 1})).status_code == 400
    assert (await http.post("/vc/email/confirm", data={})).status_code == 400


async def test_bad_addresses_a_flood_and_a_dead_relay_are_refused(
    http: httpx.AsyncClient, node: Node, alice: Holder, settings: Settings
) -> None:
    for address in ("not-an-address", "x@localhost", "a b@example.org"):
        bad = await alice.send("POST", "/vc/email", json={"email": address})
        assert bad.status_code == 422, address
    assert (await http.post("/vc/email", json={"email": "a@example.org"})).status_code == 401
    for _ in range(5):
        ok = await alice.send("POST", "/vc/email", json={"email": "alice@example.org"})
        assert ok.status_code == 202
    flood = await alice.send("POST", "/vc/email", json={"email": "alice@example.org"})
    assert flood.status_code == 429

    bob = Holder(http, "bob")
    await bob.register()
    before = pending(node)
    node.kernel.settings = settings.model_copy(
        update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"}
    )
    dead = await bob.send("POST", "/vc/email", json={"email": "bob@example.org"})
    assert dead.status_code == 502 and dead.json()["code"] == "vc.mail_relay_failed"
    assert pending(node) == before, "a link that could not be sent does not linger"
    node.kernel.settings = settings.model_copy(update={"smtp_url": ""})
    none = await bob.send("POST", "/vc/email", json={"email": "bob@example.org"})
    assert none.status_code == 503 and none.json()["code"] == "vc.no_mail_relay"
