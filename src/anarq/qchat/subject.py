"""Qchat's part in data-subject requests: what the node holds of a person's chat, and
erasing it.

Export: the rooms the person is or was in (with their membership), every event they
sent (ciphertext in end-to-end rooms: they open it with the room keys, which are
exported too, sealed as they are to the members of each epoch).

Erasure: the person leaves every room they are in — the room's key changes, as on any
leave, so they read nothing written afterwards — and every message, edit and reaction
they sent is tombstoned (its body gone, as on a delete). The events stay as positions
in the rooms' timelines (sender, time, kind), so the others' histories keep their order.
A room the person owns keeps its other members and moderators; it has no owner left.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from anarq.kernel.guard import Context
from anarq.kernel.subject import ExportItem, json_item
from anarq.qchat import tables
from anarq.qchat.timeline import append_event, room_resource

if TYPE_CHECKING:
    from anarq.qchat.service import ChatService


# Events whose body is what a person wrote (a membership event's body is its new state).
CONTENT_KINDS = ("message", "edit", "reaction", "unreaction")


def export_subject(chat: ChatService, did: str) -> Iterator[ExportItem]:
    r, m, e, k = tables.rooms, tables.members, tables.events, tables.keys
    with chat.k.db.read() as conn:
        rooms = [
            dict(row)
            for row in conn.execute(
                select(r.c.id, r.c.kind, r.c.visibility, r.c.name, r.c.e2e, r.c.owner)
                .add_columns(m.c.role, m.c.state, m.c.muted, m.c.last_read_seq, m.c.updated_at)
                .join(m, (m.c.room_id == r.c.id) & (m.c.did == did))
                .order_by(r.c.id)
            ).mappings()
        ]
        events = [
            dict(row)
            for row in conn.execute(
                select(e).where(e.c.sender == did).order_by(e.c.room_id, e.c.seq)
            ).mappings()
        ]
        keys = [
            dict(row)
            for row in conn.execute(
                select(k)
                .where(k.c.room_id.in_([room["id"] for room in rooms if room["e2e"]]))
                .order_by(k.c.room_id, k.c.epoch)
            ).mappings()
        ]
    yield json_item("rooms.json", rooms)
    yield json_item("sent-events.json", events)
    yield json_item("room-keys.json", keys)


def erase_subject(chat: ChatService, ctx: Context, did: str) -> dict[str, int]:
    m, e = tables.members, tables.events
    with chat.k.db.read() as conn:
        joined = list(
            conn.execute(
                select(m.c.room_id, m.c.grant_id).where(m.c.did == did, m.c.state == "joined")
            ).all()
        )
        rooms_written = list(
            conn.execute(select(e.c.room_id).where(e.c.sender == did).distinct()).scalars()
        )
    now = chat.k.clock.now()
    announced = []
    for room_id, grant_id in joined:
        with chat.k.change(ctx, "delete", room_resource(room_id)) as tx:
            chat._set_member(tx, room_id, did, role="member", state="left", grant_id=None)
            announced.append(
                append_event(tx, now, room_id, "member", ctx.actor.id, subject=did, body="left")
            )
            chat._new_epoch(tx, room_id)
        if grant_id is not None:
            chat._revoke(grant_id)
    tombstoned = 0
    for room_id in rooms_written:
        with chat.k.change(ctx, "delete", room_resource(room_id)) as tx:
            tombstoned += tx.execute(
                update(e)
                .where(
                    e.c.room_id == room_id,
                    e.c.sender == did,
                    e.c.kind.in_(CONTENT_KINDS),
                    e.c.body.is_not(None),
                )
                .values(body=None, deleted_at=now)
            ).rowcount
    for event in announced:
        chat.announce(event)
    return {"rooms_left": len(joined), "events_tombstoned": tombstoned}
