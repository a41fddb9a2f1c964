"""Certified delivery: checking and storing read receipts, and proving every receipt.

Delivery receipts are made by `LocalDelivery` as it delivers; read receipts are made by
the reader's client and checked here. Each receipt's SHA-256 is in the audit log
(`qmail:receipt:<digest>`); a proof pairs the receipt with that entry's inclusion proof.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.errors import BadRequest, Conflict
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.qerberos.service import QerberosService
from anarq.qmail import tables
from anarq.qmail.delivery import receipt_resource
from anarq.qmail.envelope import RECEIPT_FORMAT, MessageInvalid, receipt_digest, verify_receipt
from anarq.qmail.models import Proof, Receipt, ReceiptProof
from anarq.squid.service import SquidService

RECEIPT_CLOCK_SKEW = timedelta(minutes=10)


class Receipts:
    def __init__(self, kernel: Kernel, squid: SquidService, qerberos: QerberosService) -> None:
        self.k = kernel
        self.squid = squid
        self.qerberos = qerberos

    def check_read(self, owner: str, row: RowMapping, document: dict[str, Any]) -> None:
        """Refuse a read receipt that is not the reader's own, signed, for this message, now."""
        if row["role"] != "recipient":
            raise BadRequest("only a recipient gives a read receipt")
        expected = {
            "format": RECEIPT_FORMAT,
            "kind": "read",
            "message_id": row["message_id"],
            "digest": row["digest"],
            "recipient": owner,
            "issuer": owner,
        }
        unknown = sorted(set(document) - {*expected, "time", "proof"})
        if unknown:
            raise BadRequest(f"a read receipt has no field {unknown[0][:40]!r}")
        for field, value in expected.items():
            if document.get(field) != value:
                raise BadRequest(f"the read receipt's {field!r} must be {value!r}")
        try:
            time = datetime.fromisoformat(str(document.get("time", "")).replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest("the read receipt's time is not RFC 3339") from None
        if time.tzinfo is None or abs(time - self.k.clock.now()) > RECEIPT_CLOCK_SKEW:
            raise BadRequest("the read receipt's time is not now (UTC, within 10 minutes)")
        try:
            verify_receipt(document, self.squid.current_key(owner))
        except MessageInvalid as exc:
            raise BadRequest(str(exc)) from None
        with self.k.db.read() as conn:
            r = tables.receipts
            given = conn.execute(
                select(r.c.id).where(
                    r.c.message_id == row["message_id"], r.c.kind == "read", r.c.recipient == owner
                )
            ).first()
        if given is not None:
            raise Conflict("a read receipt for this message was already given")

    def store_read(
        self, tx: Connection, ctx: Context, message_id: str, document: dict[str, Any]
    ) -> None:
        """Keep a checked read receipt and name it in the audit log, in the caller's `tx`."""
        digest = receipt_digest(document)
        try:
            tx.execute(
                insert(tables.receipts).values(
                    id=new_id(),
                    message_id=message_id,
                    kind="read",
                    recipient=ctx.actor.id,
                    digest=digest,
                    document=json.dumps(document, separators=(",", ":")),
                    created_at=self.k.clock.now(),
                )
            )
        except IntegrityError:
            raise Conflict("a read receipt for this message was already given") from None
        self.k.guard.record(ctx, "write", receipt_resource(digest), "allow", tx)
        self.k.bus.publish(
            tx,
            "qmail.message.read",
            {"message_id": message_id, "reader": ctx.actor.id},
            actor=ctx.actor.id,
            subject=f"qmail:message:{message_id}",
            correlation_id=ctx.correlation_id or ctx.request_id,
        )

    def proof(self, row: RowMapping, owner: str) -> Proof:
        """Receipts of the message in `row` (`owner`'s entry): all of them for its sender,
        one's own for a recipient; each with its audit entry and inclusion proof."""
        message_id = row["message_id"]
        r = tables.receipts
        query = select(r).where(r.c.message_id == message_id).order_by(r.c.created_at, r.c.id)
        if row["role"] != "sender":
            query = query.where(r.c.recipient == owner)
        with self.k.db.read() as conn:
            found = list(conn.execute(query).mappings())
        proofs = []
        for receipt in found:
            actor = row["sender"] if receipt["kind"] == "delivery" else receipt["recipient"]
            entry = self.qerberos.find(receipt_resource(receipt["digest"]), actor=actor)
            inclusion = (
                self.qerberos.inclusion(Context.system(), entry.seq) if entry is not None else None
            )
            proofs.append(
                ReceiptProof(
                    receipt=Receipt(
                        id=receipt["id"],
                        kind=receipt["kind"],
                        recipient=receipt["recipient"],
                        digest=receipt["digest"],
                        document=json.loads(receipt["document"]),
                        created_at=receipt["created_at"],
                    ),
                    audit_seq=entry.seq if entry is not None else None,
                    audit_leaf=entry.leaf if entry is not None else None,
                    inclusion=inclusion.model_dump(mode="json") if inclusion else None,
                )
            )
        return Proof(message_id=message_id, digest=row["digest"], receipts=proofs)
