"""A room's timeline: messages, edits, tombstones, reactions, read marks, group keys.

Every entry gets the room's next sequence number from the counter on its room row,
bumped by `UPDATE … RETURNING` in the writer's own transaction: the row lock orders
writers on PostgreSQL (any number of workers) and SQLite alike, so sequence numbers are
dense and in commit order per room.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel.db import insert_ignore
from anarq.kernel.errors import AnarqError, BadRequest, Conflict, NotFound
from anarq.kernel.guard import Context
from anarq.qchat import tables
from anarq.qchat.envelope import ChatCryptoError, parse_body, unb64url
from anarq.qchat.models import Event, EventPage, KeyUpload, PostRequest, RoomKey
from anarq.qchat.tables import BODY_MAX_CHARS
from anarq.qlock import BadEnvelope, recipients_of

if TYPE_CHECKING:
    from anarq.qchat.service import ChatService

PAGE_MAX = 200


class MessageTooLarge(AnarqError):
    code = "qchat.too_large"
    status = 413
    title = "Message too large"


class MalformedEnvelope(BadRequest):
    code = "qchat.malformed_envelope"


class KeyRequired(Conflict):
    code = "qchat.key_required"


def room_resource(room_id: str) -> str:
    return f"qchat:room:{room_id}"


def append_event(
    tx: Connection, now: datetime, room_id: str, kind: str, sender: str, **fields: Any
) -> dict[str, Any]:
    """The room's next sequence number, taken in `tx`, and the event stored under it."""
    r = tables.rooms
    seq = tx.execute(
        update(r).where(r.c.id == room_id).values(last_seq=r.c.last_seq + 1).returning(r.c.last_seq)
    ).scalar_one()
    row = {
        "room_id": room_id,
        "seq": int(seq),
        "kind": kind,
        "sender": sender,
        "body": fields.get("body"),
        "target_seq": fields.get("target_seq"),
        "subject": fields.get("subject"),
        "epoch": fields.get("epoch"),
        "created_at": now,
        "edited_at": None,
        "deleted_at": None,
    }
    tx.execute(tables.events.insert().values(**row))
    return row


class Timeline:
    def __init__(self, chat: ChatService) -> None:
        self.chat = chat
        self.k = chat.k

    # Writing ---------------------------------------------------------------------------

    def post(self, ctx: Context, room_id: str, request: PostRequest) -> Event:
        """Add a message. Members not muted only; an end-to-end room takes ciphertext of its
        current epoch, and none while its new key is awaited."""
        sender = self.chat.identity(ctx)
        room = self.chat.room_row(room_id)
        self._check_body(room, request.body)
        if request.reply_to is not None:
            self._message(room_id, request.reply_to)
        return self._write(
            ctx, room, "write", "message", sender, body=request.body, target_seq=request.reply_to
        )

    def edit(self, ctx: Context, room_id: str, seq: int, body: str) -> Event:
        """Replace the text of one's own message (not a deleted one)."""
        sender = self.chat.identity(ctx)
        room = self.chat.room_row(room_id)
        self._check_body(room, body)
        original = self._message(room_id, seq)
        if original["sender"] != sender:
            raise BadRequest("only its sender edits a message")
        if original["deleted_at"] is not None:
            raise Conflict(f"message {seq} is deleted")

        def tombstone(tx: Connection, event: dict[str, Any]) -> None:
            e = tables.events
            tx.execute(
                update(e)
                .where(e.c.room_id == room_id, e.c.seq == seq)
                .values(body=body, epoch=event["epoch"], edited_at=event["created_at"])
            )

        return self._write(
            ctx, room, "write", "edit", sender, body=body, target_seq=seq, then=tombstone
        )

    def delete(self, ctx: Context, room_id: str, seq: int) -> Event:
        """Tombstone a message: its text and its edits' texts are gone for good. The sender,
        or a moderator (who holds `delete` on the room)."""
        actor = self.chat.identity(ctx)
        room = self.chat.room_row(room_id)
        original = self._message(room_id, seq)
        if original["deleted_at"] is not None:
            raise Conflict(f"message {seq} is already deleted")
        action = "write" if original["sender"] == actor else "delete"

        def tombstone(tx: Connection, event: dict[str, Any]) -> None:
            e = tables.events
            tx.execute(
                update(e)
                .where(e.c.room_id == room_id, e.c.seq == seq)
                .values(body=None, deleted_at=event["created_at"])
            )
            tx.execute(
                update(e)
                .where(e.c.room_id == room_id, e.c.target_seq == seq, e.c.kind == "edit")
                .values(body=None)
            )

        return self._write(ctx, room, action, "delete", actor, target_seq=seq, then=tombstone)

    def react(self, ctx: Context, room_id: str, seq: int, reaction: str, remove: bool) -> Event:
        actor = self.chat.identity(ctx)
        room = self.chat.room_row(room_id)
        if self._message(room_id, seq)["deleted_at"] is not None:
            raise Conflict(f"message {seq} is deleted")
        kind = "unreaction" if remove else "reaction"
        return self._write(ctx, room, "write", kind, actor, body=reaction, target_seq=seq)

    def _write(
        self,
        ctx: Context,
        room: RowMapping,
        action: str,
        kind: str,
        sender: str,
        *,
        then: Callable[[Connection, dict[str, Any]], None] | None = None,
        **fields: Any,
    ) -> Event:
        room_id = room["id"]
        with self.k.change(ctx, action, room_resource(room_id)) as tx:
            self.chat.require_joined(tx, room_id, sender)
            event = append_event(tx, self.k.clock.now(), room_id, kind, sender, **fields)
            epoch = self._current_epoch(tx, room_id) if room["e2e"] else None
            if room["e2e"] and kind in ("message", "edit"):
                self._require_epoch(fields["body"], epoch)
            if epoch is not None:
                event["epoch"] = epoch
                tx.execute(
                    update(tables.events)
                    .where(tables.events.c.room_id == room_id, tables.events.c.seq == event["seq"])
                    .values(epoch=epoch)
                )
            if then is not None:
                then(tx, event)
        self.chat.announce(event)
        return Event(**event)

    def _current_epoch(self, tx: Connection, room_id: str) -> int | None:
        r = tables.rooms
        row = tx.execute(select(r.c.epoch, r.c.key_ready).where(r.c.id == room_id)).one()
        return int(row.epoch) if row.key_ready else None

    @staticmethod
    def _require_epoch(body: str, epoch: int | None) -> None:
        if epoch is None:
            raise KeyRequired("the room awaits its new group key: upload it, then send")
        if parse_body(body).epoch != epoch:
            raise KeyRequired(f"encrypt with the room's current group key (epoch {epoch})")

    def _check_body(self, room: RowMapping, body: str) -> None:
        if len(body) > BODY_MAX_CHARS:
            raise MessageTooLarge(f"a message body is at most {BODY_MAX_CHARS} characters")
        if room["e2e"]:
            try:
                parse_body(body)
            except ChatCryptoError as exc:
                raise MalformedEnvelope(f"not an encrypted body: {exc}") from None

    def _message(self, room_id: str, seq: int) -> RowMapping:
        e = tables.events
        with self.k.db.read() as conn:
            row = (
                conn.execute(
                    select(e).where(e.c.room_id == room_id, e.c.seq == seq, e.c.kind == "message")
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no message {seq} in room {room_id}")
        return row

    # Reading ---------------------------------------------------------------------------

    def page(
        self,
        ctx: Context,
        room_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> EventPage:
        """Events ascending. `after`: the next ones from there; `before`: the newest ones
        before it (scroll back); neither: the newest."""
        self.chat.require_reader(ctx, room_id)
        if not 1 <= limit <= PAGE_MAX:
            raise BadRequest(f"limit must be 1 to {PAGE_MAX}")
        if after is not None and before is not None:
            raise BadRequest("give after or before, not both")
        if after is not None:
            rows = self.events_after(room_id, after, limit + 1)
            return EventPage(events=[Event(**r) for r in rows[:limit]], more=len(rows) > limit)
        e = tables.events
        query = select(e).where(e.c.room_id == room_id)
        if before is not None:
            query = query.where(e.c.seq < before)
        with self.k.db.read() as conn:
            found = conn.execute(query.order_by(e.c.seq.desc()).limit(limit + 1)).mappings()
            rows = [dict(row) for row in found]
        newest = [Event(**r) for r in rows[:limit]]
        return EventPage(events=newest[::-1], more=len(rows) > limit)

    def events_after(self, room_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Raw rows after `after`, ascending (the WebSocket's catch-up; no access check)."""
        e = tables.events
        with self.k.db.read() as conn:
            return [
                dict(row)
                for row in conn.execute(
                    select(e)
                    .where(e.c.room_id == room_id, e.c.seq > after)
                    .order_by(e.c.seq)
                    .limit(limit)
                ).mappings()
            ]

    def mark_read(self, ctx: Context, room_id: str, seq: int) -> int:
        """Move the caller's read mark forward (never back); the new mark."""
        did = self.chat.identity(ctx)
        room = self.chat.room_row(room_id)
        if seq > room["last_seq"]:
            raise BadRequest(f"the room's last sequence number is {room['last_seq']}")
        m = tables.members
        with self.k.change(ctx, "read", room_resource(room_id)) as tx:
            self.chat.require_joined(tx, room_id, did)
            tx.execute(
                update(m)
                .where(m.c.room_id == room_id, m.c.did == did, m.c.last_read_seq < seq)
                .values(last_read_seq=seq)
            )
            mark = tx.execute(
                select(m.c.last_read_seq).where(m.c.room_id == room_id, m.c.did == did)
            ).scalar_one()
        return int(mark)

    def unread(self, conn: Connection, room_id: str, did: str, last_read: int) -> int:
        e = tables.events
        return int(
            conn.execute(
                select(func.count())
                .select_from(e)
                .where(
                    e.c.room_id == room_id,
                    e.c.seq > last_read,
                    e.c.kind == "message",
                    e.c.sender != did,
                    e.c.deleted_at.is_(None),
                )
            ).scalar_one()
        )

    # Group keys ------------------------------------------------------------------------

    def upload_key(self, ctx: Context, room_id: str, upload: KeyUpload) -> RoomKey:
        """The group key of the room's current epoch, sealed to exactly its joined members.

        Refused: a room that is not end-to-end, another epoch than the awaited one, an
        envelope that is not Qlock-sealed, or sealed to anyone more or less than the members.
        """
        did = self.chat.identity(ctx)
        room = self.chat.room_row(room_id)
        if not room["e2e"]:
            raise BadRequest("this room is not end-to-end encrypted: it has no group key")
        if upload.epoch != room["epoch"] or room["key_ready"]:
            raise Conflict(f"the room awaits no key for epoch {upload.epoch}")
        try:
            readers = set(recipients_of(unb64url(upload.envelope)))
        except (BadEnvelope, ChatCryptoError) as exc:
            raise MalformedEnvelope(f"the key is not a Qlock sealed envelope: {exc}") from None
        members = self.chat.joined(room_id)
        expected = {self.chat.squid.recipient_key(m).key_id for m in members}
        if readers != expected:
            raise MalformedEnvelope("the key must be sealed to exactly the room's joined members")
        r = tables.rooms
        now = self.k.clock.now()
        with self.k.change(ctx, "write", room_resource(room_id)) as tx:
            self.chat.require_joined(tx, room_id, did)
            if sorted(self.chat.joined(room_id, conn=tx)) != sorted(members):
                raise Conflict("the members changed meanwhile: seal the key again")
            ready = tx.execute(
                update(r)
                .where(r.c.id == room_id, r.c.epoch == upload.epoch, r.c.key_ready.is_(False))
                .values(key_ready=True)
            ).rowcount
            row = {
                "room_id": room_id,
                "epoch": upload.epoch,
                "envelope": upload.envelope,
                "created_by": did,
                "created_at": now,
            }
            if not ready or not insert_ignore(tx, tables.keys, row):
                raise Conflict(f"epoch {upload.epoch} already has its key")
            event = append_event(tx, now, room_id, "key", did, epoch=upload.epoch)
        self.chat.announce(event)
        return RoomKey(**{k: v for k, v in row.items() if k != "room_id"})

    def keys(self, ctx: Context, room_id: str) -> list[RoomKey]:
        """Every epoch's sealed key; a member's client opens those sealed to it."""
        self.chat.require_reader(ctx, room_id)
        k = tables.keys
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(k.c.epoch, k.c.envelope, k.c.created_by, k.c.created_at)
                .where(k.c.room_id == room_id)
                .order_by(k.c.epoch)
            ).mappings()
            return [RoomKey(**row) for row in rows]
