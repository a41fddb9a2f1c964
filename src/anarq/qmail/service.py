"""Qmail: certified mail between identities; the node stores sealed envelopes only.

The sender's client signs and seals each message (see `envelope`); the node checks who
sends it, to whom, its size and shape, stores the envelope once in blob storage and
delivers one mailbox entry per recipient (plus the sender's copy in `sent`) through a
`Delivery`, issuing a signed delivery receipt for each, all in one transaction.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.blobs import put_bytes, read_bytes
from anarq.kernel.db import insert_ignore
from anarq.kernel.errors import (
    AnarqError,
    BadRequest,
    Conflict,
    NotFound,
)
from anarq.kernel.guard import Context
from anarq.kernel.ids import is_ulid, new_id
from anarq.kernel.subject import ExportItem, json_item
from anarq.node.service import NodeService
from anarq.qerberos.service import QerberosService
from anarq.qlock import BadEnvelope, recipients_of
from anarq.qmail import tables
from anarq.qmail.delivery import (
    Delivery,
    LocalDelivery,
    Outgoing,
    mailbox_resource,
)
from anarq.qmail.envelope import (
    envelope_digest,
)
from anarq.qmail.models import (
    Contact,
    ContactRequest,
    MailKey,
    MessageInfo,
    MessagePage,
    Postage,
    PostageInfo,
    PostageOffer,
    Proof,
    SendRequest,
    Threshold,
)
from anarq.qmail.postage import Purse
from anarq.qmail.receipts import Receipts
from anarq.qwallet.service import WalletService
from anarq.squid.service import SquidService

MESSAGE_MAX_BYTES = 8 * 1024 * 1024  # the sealed envelope; larger content goes by attachment
EXPIRY_MAX = timedelta(days=3650)
PAGE_MAX = 200
LABELS_PER_MESSAGE_MAX = 20
CONTACTS_MAX = 10_000
HOUSEKEEPING_EVERY_SECONDS = 30.0
EXPIRE_BATCH = 500
log = logging.getLogger(__name__)


class MessageTooLarge(AnarqError):
    code = "qmail.too_large"
    status = 413
    title = "Message too large"


class MalformedEnvelope(BadRequest):
    code = "qmail.malformed_envelope"


class UnknownRecipient(BadRequest):
    code = "qmail.unknown_recipient"


class EnvelopeReused(Conflict):
    code = "qmail.envelope_reused"


def message_resource(message_id: str) -> str:
    return f"qmail:message:{message_id}"


class MailService:
    erase_order = 20

    def __init__(
        self,
        kernel: Kernel,
        node: NodeService,
        squid: SquidService,
        qerberos: QerberosService,
        wallet: WalletService,
    ) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid
        self.qerberos = qerberos
        self.wallet = wallet
        # A sender's reputation score, once the reputation module is installed (it sets it).
        self.reputation_of: Callable[[str], int] | None = None
        # Tried in order; the first that accepts a recipient delivers to it.
        self.deliveries: list[Delivery] = [LocalDelivery(kernel, node, squid, self._folder_for)]
        self.receipts = Receipts(kernel, squid, qerberos)

    # Policy --------------------------------------------------------------------------

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """An identity administers its own mailbox (a guard policy)."""
        return ctx.actor.kind == "identity" and resource == mailbox_resource(ctx.actor.id)

    def _owner(self, ctx: Context) -> str:
        return ctx.identity("a mailbox")

    # Keys ----------------------------------------------------------------------------

    def mail_key(self, did: str) -> MailKey:
        """The key to seal mail to `did` and to check its signatures; registered identities."""
        identity = self.squid.identity(did)
        if identity.revoked_at is not None:
            raise NotFound(f"{did} has been revoked")
        key = self.squid.current_key(did)
        recipient = key.derive_recipient_key()
        return MailKey(
            did=did,
            key_id=recipient.key_id,
            recipient_key=base64.b64encode(recipient.to_bytes()).decode(),
            verify_key=base64.b64encode(key.to_bytes()).decode(),
        )

    # Sending -------------------------------------------------------------------------

    def send(self, ctx: Context, request: SendRequest) -> MessageInfo:
        """Store a sealed message and deliver it to every recipient, or refuse it whole.

        Refused: an unknown or revoked recipient, an envelope that is not a Qlock sealed
        envelope sealed to every recipient and the sender, more than `MESSAGE_MAX_BYTES`,
        a reply to a message the sender does not have, an expiry in the past or without a
        time zone, an envelope the node already holds (a sealed message is sent once: a
        copy would share its blob, and deleting one would take the other's content).
        """
        sender = self._owner(ctx)
        recipients = list(dict.fromkeys([*request.to, *request.cc]))
        routes = {did: self._route(did) for did in recipients if did != sender}
        envelope = _decode_envelope(request.envelope)
        self._require_sealed_to(envelope, [sender, *routes])
        now = self.k.clock.now()
        expires_at = request.expires_at
        if expires_at is not None and expires_at.utcoffset() is None:
            raise BadRequest("expires_at needs a time zone (RFC 3339, e.g. …Z)")
        if expires_at is not None and not now < expires_at <= now + EXPIRY_MAX:
            raise BadRequest(f"expires_at must be in the future, within {EXPIRY_MAX.days} days")
        parent = self._entry(sender, request.in_reply_to) if request.in_reply_to else None
        digest = envelope_digest(envelope)
        self._require_new_envelope(digest)
        message_id = new_id()
        outgoing = Outgoing(
            message_id=message_id,
            sender=sender,
            digest=digest,
            thread_id=parent["thread_id"] if parent is not None else message_id,
            in_reply_to=request.in_reply_to,
            sent_at=now,
        )
        self.node.identity.signing_key()  # made before the write, never inside it
        blob = put_bytes(self.k.blobs, envelope)
        try:
            with self._sending(ctx, sender, request.postage, message_id) as (tx, purse):
                outgoing = dataclasses.replace(outgoing, purse=purse)
                self._store(tx, outgoing, blob.cid, len(envelope), expires_at)
                for did, route in routes.items():
                    route.deliver(tx, ctx, outgoing, did)
                self.k.bus.publish(
                    tx,
                    "qmail.message.sent",
                    {"message_id": message_id, "recipients": list(routes)},
                    actor=sender,
                    subject=message_resource(message_id),
                    correlation_id=ctx.correlation_id or ctx.request_id,
                )
        except BaseException as exc:
            with self.k.db.read() as conn:
                if not self._blob_held(conn, blob.cid):
                    self._delete_blob(blob.cid)
            if isinstance(exc, IntegrityError):  # the same envelope, sent at the same instant
                self._require_new_envelope(digest)
            raise
        return self.message(ctx, message_id)

    @contextlib.contextmanager
    def _sending(
        self, ctx: Context, sender: str, offer: PostageOffer | None, message_id: str
    ) -> Iterator[tuple[Connection, Purse | None]]:
        """The send's one transaction; with a postage offer, a ledger transaction too, so
        that postage is paid exactly when the message is delivered."""
        if offer is None:
            with self.k.change(ctx, "write", mailbox_resource(sender)) as tx:
                yield tx, None
            return
        try:
            source = self.wallet.lookup(sender, offer.asset).id
        except NotFound:
            raise BadRequest(f"you hold no {offer.asset} account to pay postage from") from None
        with self.wallet.agent(ctx, "write", mailbox_resource(sender), parties=[sender]) as agent:
            yield agent.tx, Purse(agent, source, offer, message_id)

    def _require_new_envelope(self, digest: str) -> None:
        m = tables.messages
        with self.k.db.read() as conn:
            held = conn.execute(select(m.c.id).where(m.c.digest == digest).limit(1)).first()
        if held is not None:
            raise EnvelopeReused("this sealed envelope was already sent: seal the message anew")

    def _route(self, did: str) -> Delivery:
        for delivery in self.deliveries:
            if delivery.accepts(did):
                return delivery
        raise UnknownRecipient(f"no identity {did[:200]!r} to deliver to", recipient=did[:200])

    def _require_sealed_to(self, envelope: bytes, dids: list[str]) -> None:
        try:
            readers = set(recipients_of(envelope))
        except BadEnvelope as exc:
            raise MalformedEnvelope(f"the envelope is not a Qlock sealed envelope: {exc}") from None
        for did in dids:
            if self.squid.recipient_key(did).key_id not in readers:
                raise MalformedEnvelope(f"the envelope is not sealed to {did}'s current key")

    def _store(
        self,
        tx: Connection,
        message: Outgoing,
        blob_cid: str,
        size_bytes: int,
        expires_at: datetime | None,
    ) -> None:
        tx.execute(
            insert(tables.messages).values(
                id=message.message_id,
                sender=message.sender,
                digest=message.digest,
                blob_cid=blob_cid,
                size_bytes=size_bytes,
                thread_id=message.thread_id,
                in_reply_to=message.in_reply_to,
                sent_at=message.sent_at,
                expires_at=expires_at,
            )
        )
        tx.execute(
            insert(tables.entries).values(
                message_id=message.message_id,
                owner=message.sender,
                role="sender",
                folder="sent",
                previous_folder=None,
                received_at=message.sent_at,
                read_at=message.sent_at,
            )
        )

    def _folder_for(self, tx: Connection, recipient: str, message: Outgoing) -> str:
        """Spam control: contacts, and replies in a thread the recipient takes part in, go
        to the inbox, and so does mail from senders whose reputation reaches the recipient's
        threshold, or that pays the recipient's postage; everything else goes to `requests`."""
        c, m = tables.contacts, tables.messages
        known = tx.execute(
            select(c.c.contact).where(c.c.owner == recipient, c.c.contact == message.sender)
        ).first()
        if known is not None:
            return "inbox"
        if message.in_reply_to is not None:
            took_part = tx.execute(
                select(m.c.id)
                .where(m.c.thread_id == message.thread_id, m.c.sender == recipient)
                .limit(1)
            ).first()
            if took_part is not None:
                return "inbox"
        if self.reputation_of is not None:
            threshold = tx.execute(
                select(tables.thresholds.c.min_reputation).where(
                    tables.thresholds.c.owner == recipient
                )
            ).scalar_one_or_none()
            if threshold is not None and self.reputation_of(message.sender) >= threshold:
                return "inbox"
        if message.purse is not None:
            price = tx.execute(
                select(tables.postage.c.asset, tables.postage.c.amount).where(
                    tables.postage.c.owner == recipient
                )
            ).first()
            if price is not None and message.purse.pay(recipient, price.asset, int(price.amount)):
                return "inbox"
        return "requests"

    # Postage -------------------------------------------------------------------------

    def set_postage(self, ctx: Context, price: Postage) -> PostageInfo:
        """What strangers' mail must pay you to reach your inbox (paid to you)."""
        owner = self._owner(ctx)
        try:
            self.wallet.asset(price.asset)
        except NotFound:
            raise BadRequest(f"no asset {price.asset} on this node") from None
        row = {
            "owner": owner,
            "asset": price.asset,
            "amount": str(price.amount),
            "updated_at": self.k.clock.now(),
        }
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            tx.execute(delete(tables.postage).where(tables.postage.c.owner == owner))
            tx.execute(insert(tables.postage).values(**row))
        return PostageInfo(owner=owner, asset=price.asset, amount=price.amount)

    def clear_postage(self, ctx: Context) -> None:
        owner = self._owner(ctx)
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            tx.execute(delete(tables.postage).where(tables.postage.c.owner == owner))

    def set_threshold(self, ctx: Context, threshold: Threshold) -> Threshold:
        """Let strangers with at least this reputation reach your inbox."""
        owner = self._owner(ctx)
        row = {
            "owner": owner,
            "min_reputation": threshold.min_reputation,
            "updated_at": self.k.clock.now(),
        }
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            tx.execute(delete(tables.thresholds).where(tables.thresholds.c.owner == owner))
            tx.execute(insert(tables.thresholds).values(**row))
        return threshold

    def clear_threshold(self, ctx: Context) -> None:
        owner = self._owner(ctx)
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            tx.execute(delete(tables.thresholds).where(tables.thresholds.c.owner == owner))

    def threshold(self, ctx: Context) -> Threshold | None:
        owner = self._owner(ctx)
        with self.k.db.read() as conn:
            value = conn.execute(
                select(tables.thresholds.c.min_reputation).where(tables.thresholds.c.owner == owner)
            ).scalar_one_or_none()
        return None if value is None else Threshold(min_reputation=value)

    def postage(self, did: str) -> PostageInfo | None:
        """`did`'s postage for strangers, or None: anyone may ask before sending."""
        with self.k.db.read() as conn:
            row = (
                conn.execute(select(tables.postage).where(tables.postage.c.owner == did))
                .mappings()
                .first()
            )
        if row is None:
            return None
        return PostageInfo(owner=did, asset=row["asset"], amount=int(row["amount"]))

    # Reading -------------------------------------------------------------------------

    def message(self, ctx: Context, message_id: str) -> MessageInfo:
        owner = self._owner(ctx)
        self.k.check(ctx, "read", mailbox_resource(owner))
        return self._info(self._entry(owner, message_id))

    def page(
        self,
        ctx: Context,
        *,
        folder: str | None = None,
        label: str | None = None,
        thread: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> MessagePage:
        """Newest first; `before` (a message id) continues from the previous page."""
        owner = self._owner(ctx)
        self.k.check(ctx, "read", mailbox_resource(owner))
        if not 1 <= limit <= PAGE_MAX:
            raise BadRequest(f"limit must be 1 to {PAGE_MAX}")
        e, m, lb = tables.entries, tables.messages, tables.labels
        query = (
            select(e, m)
            .join(m, m.c.id == e.c.message_id)
            .where(e.c.owner == owner, *self._live(m))
            .order_by(e.c.message_id.desc())
            .limit(limit + 1)
        )
        if folder is not None:
            query = query.where(e.c.folder == folder)
        if thread is not None:
            query = query.where(m.c.thread_id == thread)
        if before is not None:
            query = query.where(e.c.message_id < before)
        if label is not None:
            query = query.where(
                select(lb.c.label)
                .where(lb.c.message_id == e.c.message_id, lb.c.owner == owner, lb.c.label == label)
                .exists()
            )
        with self.k.db.read() as conn:
            rows = list(conn.execute(query).mappings())
        more = len(rows) > limit
        infos = [self._info(row) for row in rows[:limit]]
        return MessagePage(messages=infos, next=infos[-1].id if more else None)

    def sealed(self, ctx: Context, message_id: str) -> bytes:
        """The sealed envelope, for the caller's client to open with its own key."""
        owner = self._owner(ctx)
        self.k.check(ctx, "read", mailbox_resource(owner))
        row = self._entry(owner, message_id)
        self.k.guard.record(ctx, "read", message_resource(message_id), "allow")
        return read_bytes(self.k.blobs, row["blob_cid"])

    def mark_read(
        self, ctx: Context, message_id: str, receipt: dict[str, Any] | None
    ) -> MessageInfo:
        """Mark read; with `receipt`, store the reader's signed read receipt and audit it."""
        owner = self._owner(ctx)
        row = self._entry(owner, message_id)
        if receipt is not None:
            self.receipts.check_read(owner, row, receipt)
        e = tables.entries
        now = self.k.clock.now()
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            tx.execute(
                update(e)
                .where(e.c.message_id == message_id, e.c.owner == owner, e.c.read_at.is_(None))
                .values(read_at=now)
            )
            if receipt is not None:
                self.receipts.store_read(tx, ctx, message_id, receipt)
        return self.message(ctx, message_id)

    # Organising ----------------------------------------------------------------------

    def move(self, ctx: Context, message_id: str, folder: str) -> MessageInfo:
        """Move to a folder (archive, inbox, …); only the sender's copy may be in `sent`."""
        owner = self._owner(ctx)
        row = self._entry(owner, message_id)
        if folder == "sent" and row["role"] != "sender":
            raise BadRequest("only the sender's copy of a message goes in sent")
        if folder == "requests" and row["role"] != "recipient":
            raise BadRequest("only received mail goes in requests")
        e = tables.entries
        previous = row["folder"] if folder == "trash" and row["folder"] != "trash" else None
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            tx.execute(
                update(e)
                .where(e.c.message_id == message_id, e.c.owner == owner)
                .values(folder=folder, previous_folder=previous)
            )
        return self.message(ctx, message_id)

    def delete(self, ctx: Context, message_id: str, *, forever: bool = False) -> MessageInfo | None:
        """To the trash; from the trash (or with `forever`), gone from this mailbox for good.

        The envelope itself is deleted once no mailbox holds the message.
        """
        owner = self._owner(ctx)
        row = self._entry(owner, message_id)
        if row["folder"] != "trash" and not forever:
            return self.move(ctx, message_id, "trash")
        e, lb = tables.entries, tables.labels
        with self.k.change(ctx, "delete", mailbox_resource(owner)) as tx:
            tx.execute(delete(lb).where(lb.c.message_id == message_id, lb.c.owner == owner))
            tx.execute(delete(e).where(e.c.message_id == message_id, e.c.owner == owner))
            cid = self._drop_if_unheld(tx, message_id)
            self.k.bus.publish(
                tx,
                "qmail.message.deleted",
                {"message_id": message_id, "owner": owner},
                actor=owner,
                subject=mailbox_resource(owner),
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        if cid is not None:
            self._delete_blob(cid)
        return None

    def label(self, ctx: Context, message_id: str, label: str) -> MessageInfo:
        owner = self._owner(ctx)
        self._entry(owner, message_id)
        lb = tables.labels
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            count = tx.execute(
                select(func.count())
                .select_from(lb)
                .where(lb.c.message_id == message_id, lb.c.owner == owner)
            ).scalar_one()
            if count >= LABELS_PER_MESSAGE_MAX:
                raise BadRequest(f"a message has at most {LABELS_PER_MESSAGE_MAX} labels")
            insert_ignore(tx, lb, {"message_id": message_id, "owner": owner, "label": label})
        return self.message(ctx, message_id)

    def unlabel(self, ctx: Context, message_id: str, label: str) -> MessageInfo:
        owner = self._owner(ctx)
        self._entry(owner, message_id)
        lb = tables.labels
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            tx.execute(
                delete(lb).where(
                    lb.c.message_id == message_id, lb.c.owner == owner, lb.c.label == label
                )
            )
        return self.message(ctx, message_id)

    # Contacts ------------------------------------------------------------------------

    def add_contact(self, ctx: Context, request: ContactRequest) -> Contact:
        """Mail from a contact goes straight to the inbox."""
        owner = self._owner(ctx)
        if request.contact == owner:
            raise BadRequest("you are always your own contact")
        c = tables.contacts
        with self.k.db.read() as conn:
            count = conn.execute(
                select(func.count()).select_from(c).where(c.c.owner == owner)
            ).scalar_one()
        if count >= CONTACTS_MAX:
            raise BadRequest(f"a contacts list holds at most {CONTACTS_MAX} identities")
        row = {
            "owner": owner,
            "contact": request.contact,
            "name": request.name,
            "added_at": self.k.clock.now(),
        }
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            if not insert_ignore(tx, c, row):
                tx.execute(
                    update(c)
                    .where(c.c.owner == owner, c.c.contact == request.contact)
                    .values(name=request.name)
                )
        return Contact(contact=request.contact, name=request.name, added_at=row["added_at"])

    def contacts(self, ctx: Context) -> list[Contact]:
        owner = self._owner(ctx)
        self.k.check(ctx, "read", mailbox_resource(owner))
        c = tables.contacts
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(c.c.contact, c.c.name, c.c.added_at)
                .where(c.c.owner == owner)
                .order_by(c.c.added_at)
            ).mappings()
            return [Contact(**row) for row in rows]

    def remove_contact(self, ctx: Context, contact: str) -> None:
        owner = self._owner(ctx)
        c = tables.contacts
        with self.k.change(ctx, "write", mailbox_resource(owner)) as tx:
            gone = tx.execute(delete(c).where(c.c.owner == owner, c.c.contact == contact)).rowcount
            if not gone:
                raise NotFound(f"{contact[:200]} is not in your contacts")

    # Proof ---------------------------------------------------------------------------

    def proof(self, ctx: Context, message_id: str) -> Proof:
        """The message's receipts (all for its sender, one's own for a recipient), each
        with the audit entry that names it and that entry's inclusion proof."""
        owner = self._owner(ctx)
        self.k.check(ctx, "read", mailbox_resource(owner))
        return self.receipts.proof(self._entry(owner, message_id), owner)

    # Expiry --------------------------------------------------------------------------

    def delete_expired(self) -> int:
        """Delete every expired message for good: entries, labels, receipts, envelope."""
        m = tables.messages
        with self.k.db.read() as conn:
            due = list(
                conn.execute(
                    select(m.c.id)
                    .where(m.c.expires_at.is_not(None), m.c.expires_at <= self.k.clock.now())
                    .limit(EXPIRE_BATCH)
                ).scalars()
            )
        system = Context.system()
        for message_id in due:
            with self.k.change(system, "delete", message_resource(message_id)) as tx:
                cid = self._drop(tx, message_id)
                self.k.bus.publish(
                    tx,
                    "qmail.message.expired",
                    {"message_id": message_id},
                    actor=system.actor.id,
                    subject=message_resource(message_id),
                )
            if cid is not None:
                self._delete_blob(cid)
        return len(due)

    async def run_housekeeping(self, stop: asyncio.Event) -> None:
        """Background task: delete expired messages every few seconds."""
        while not stop.is_set():
            try:
                while await asyncio.to_thread(self.delete_expired) == EXPIRE_BATCH:
                    pass
            except Exception:
                log.exception("deleting expired mail failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING_EVERY_SECONDS)
            except TimeoutError:
                continue

    # Data-subject requests -----------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """The person's mailbox (metadata), contacts and receipts, and each sealed envelope
        (openable with their own key)."""
        e, m, c, r = tables.entries, tables.messages, tables.contacts, tables.receipts
        with self.k.db.read() as conn:
            mailbox = [
                dict(row)
                for row in conn.execute(
                    select(e, m.c.sender, m.c.digest, m.c.thread_id, m.c.blob_cid)
                    .join(m, m.c.id == e.c.message_id)
                    .where(e.c.owner == did)
                    .order_by(e.c.message_id)
                ).mappings()
            ]
            contacts = [dict(row) for row in conn.execute(select(c).where(c.c.owner == did))]
            receipts = [
                json.loads(doc)
                for doc in conn.execute(
                    select(r.c.document)
                    .join(e, (e.c.message_id == r.c.message_id) & (e.c.owner == did))
                    .order_by(r.c.created_at)
                ).scalars()
            ]
        yield json_item(
            "mailbox.json", [{k: v for k, v in row.items() if k != "blob_cid"} for row in mailbox]
        )
        yield json_item("contacts.json", contacts)
        yield json_item("receipts.json", receipts)
        for row in mailbox:
            yield ExportItem(
                f"sealed/{row['message_id']}.qlse", [read_bytes(self.k.blobs, row["blob_cid"])]
            )

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Delete the person's mailbox entries, labels, contacts and read receipts; a message
        no mailbox holds any more is deleted whole. Copies in others' mailboxes are theirs."""
        e, c, r, lb = tables.entries, tables.contacts, tables.receipts, tables.labels
        with self.k.db.read() as conn:
            held = list(conn.execute(select(e.c.message_id).where(e.c.owner == did)).scalars())
        cids = []
        with self.k.change(ctx, "delete", mailbox_resource(did)) as tx:
            tx.execute(delete(lb).where(lb.c.owner == did))
            tx.execute(delete(e).where(e.c.owner == did))
            contacts = tx.execute(
                delete(c).where((c.c.owner == did) | (c.c.contact == did))
            ).rowcount
            tx.execute(delete(r).where(r.c.recipient == did, r.c.kind == "read"))
            for message_id in held:
                cid = self._drop_if_unheld(tx, message_id)
                if cid is not None:
                    cids.append(cid)
        for cid in cids:
            self._delete_blob(cid)
        return {"entries": len(held), "messages_deleted": len(cids), "contacts": contacts}

    # Rows ----------------------------------------------------------------------------

    def _live(self, m: Any) -> list[Any]:
        now = self.k.clock.now()
        return [(m.c.expires_at.is_(None)) | (m.c.expires_at > now)]

    def _entry(self, owner: str, message_id: str) -> RowMapping:
        """The caller's entry of a message, with the message; 404 for anyone else's."""
        if not is_ulid(message_id):
            raise NotFound(f"no message {message_id[:40]!r}")
        e, m = tables.entries, tables.messages
        with self.k.db.read() as conn:
            row = (
                conn.execute(
                    select(e, m)
                    .join(m, m.c.id == e.c.message_id)
                    .where(e.c.message_id == message_id, e.c.owner == owner, *self._live(m))
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no message {message_id} in your mailbox")
        return row

    def _info(self, row: RowMapping) -> MessageInfo:
        e, lb = tables.entries, tables.labels
        with self.k.db.read() as conn:
            recipients = list(
                conn.execute(
                    select(e.c.owner)
                    .where(e.c.message_id == row["message_id"], e.c.role == "recipient")
                    .order_by(e.c.owner)
                ).scalars()
            )
            labels = list(
                conn.execute(
                    select(lb.c.label)
                    .where(lb.c.message_id == row["message_id"], lb.c.owner == row["owner"])
                    .order_by(lb.c.label)
                ).scalars()
            )
        return MessageInfo(
            id=row["message_id"],
            thread_id=row["thread_id"],
            in_reply_to=row["in_reply_to"],
            sender=row["sender"],
            recipients=recipients,
            role=row["role"],
            folder=row["folder"],
            labels=labels,
            digest=row["digest"],
            size_bytes=row["size_bytes"],
            sent_at=row["sent_at"],
            received_at=row["received_at"],
            read_at=row["read_at"],
            expires_at=row["expires_at"],
        )

    def _drop_if_unheld(self, tx: Connection, message_id: str) -> str | None:
        e = tables.entries
        held = tx.execute(select(e.c.owner).where(e.c.message_id == message_id).limit(1)).first()
        return None if held is not None else self._drop(tx, message_id)

    def _drop(self, tx: Connection, message_id: str) -> str | None:
        """Delete a message and everything about it; its blob's CID, to delete after commit."""
        m = tables.messages
        cid = tx.execute(select(m.c.blob_cid).where(m.c.id == message_id)).scalar_one_or_none()
        for table in (tables.labels, tables.entries, tables.receipts):
            tx.execute(delete(table).where(table.c.message_id == message_id))
        tx.execute(delete(m).where(m.c.id == message_id))
        return cid if cid is not None and not self._blob_held(tx, cid) else None

    @staticmethod
    def _blob_held(conn: Connection, cid: str) -> bool:
        """Whether a message still names the blob (envelopes are content-addressed)."""
        m = tables.messages
        return conn.execute(select(m.c.id).where(m.c.blob_cid == cid).limit(1)).first() is not None

    def _delete_blob(self, cid: str) -> None:
        with contextlib.suppress(NotFound):
            self.k.blobs.delete(cid)


def _decode_envelope(text: str) -> bytes:
    if len(text) > (MESSAGE_MAX_BYTES * 4) // 3 + 4:
        raise MessageTooLarge(f"a sealed message is at most {MESSAGE_MAX_BYTES} bytes")
    try:
        envelope = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEnvelope("the envelope is not base64url") from None
    if len(envelope) > MESSAGE_MAX_BYTES:
        raise MessageTooLarge(f"a sealed message is at most {MESSAGE_MAX_BYTES} bytes")
    return envelope
