"""How a message reaches a recipient's mailbox: the seam cross-node delivery plugs into.

`MailService.send` checks and stores the sealed envelope once, then hands each recipient
to the first `Delivery` that accepts it, inside the sender's transaction. `LocalDelivery`
serves identities registered on this node: a mailbox entry and a delivery receipt signed
by the node, recorded in the audit log. A QNET delivery will accept remote DIDs and queue
the envelope in a persistent outbox instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from anarq.kernel import Kernel
from anarq.kernel.clock import rfc3339
from anarq.kernel.errors import AnarqError
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.node.service import NodeService
from anarq.qmail import tables
from anarq.qmail.envelope import receipt, receipt_digest, sign_receipt
from anarq.qmail.postage import Purse
from anarq.squid.service import SquidService


@dataclass(frozen=True)
class Outgoing:
    """A stored message on its way: what a delivery needs, never its content."""

    message_id: str
    sender: str
    digest: str
    thread_id: str
    in_reply_to: str | None
    sent_at: datetime
    # The sender's postage offer, payable in the send's transaction (see `postage`).
    purse: Purse | None = None


@dataclass(frozen=True)
class Delivered:
    recipient: str
    folder: str
    receipt: dict[str, Any]


class Delivery(Protocol):
    def accepts(self, did: str) -> bool:
        """Whether this delivery can take mail for `did`."""
        ...

    def deliver(self, tx: Connection, ctx: Context, message: Outgoing, recipient: str) -> Delivered:
        """Deliver within the sender's transaction (a failure undoes the whole send)."""
        ...


def receipt_resource(digest: str) -> str:
    """The audit log's name for a receipt: its SHA-256, so its presence is provable."""
    return f"qmail:receipt:{digest}"


def mailbox_resource(did: str) -> str:
    return f"qmail:mailbox:{did}"


# Which folder an arriving message lands in (spam control): (tx, recipient, message) → folder.
Sorter = Callable[[Connection, str, Outgoing], str]


class LocalDelivery:
    """Recipients registered on this node: an entry in their mailbox and a signed receipt."""

    def __init__(
        self, kernel: Kernel, node: NodeService, squid: SquidService, sort: Sorter
    ) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid
        self.sort = sort

    def accepts(self, did: str) -> bool:
        try:
            return self.squid.identity(did).revoked_at is None
        except AnarqError:
            return False

    def deliver(self, tx: Connection, ctx: Context, message: Outgoing, recipient: str) -> Delivered:
        folder = self.sort(tx, recipient, message)
        now = self.k.clock.now()
        tx.execute(
            insert(tables.entries).values(
                message_id=message.message_id,
                owner=recipient,
                role="recipient",
                folder=folder,
                previous_folder=None,
                received_at=now,
                read_at=None,
            )
        )
        document = sign_receipt(
            self.node.identity.signing_key(),
            receipt(
                kind="delivery",
                message_id=message.message_id,
                digest=message.digest,
                recipient=recipient,
                time=rfc3339(now),
                issuer=self.node.identity.did,
            ),
        )
        digest = receipt_digest(document)
        tx.execute(
            insert(tables.receipts).values(
                id=new_id(),
                message_id=message.message_id,
                kind="delivery",
                recipient=recipient,
                digest=digest,
                document=json.dumps(document, separators=(",", ":")),
                created_at=now,
            )
        )
        self.k.guard.record(ctx, "write", receipt_resource(digest), "allow", tx)
        self.k.bus.publish(
            tx,
            "qmail.message.delivered",
            {"message_id": message.message_id, "recipient": recipient, "folder": folder},
            actor=ctx.actor.id,
            subject=mailbox_resource(recipient),
            correlation_id=ctx.correlation_id or ctx.request_id,
        )
        return Delivered(recipient, folder, document)
