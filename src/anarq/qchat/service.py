"""Qchat: rooms between identities, their members and roles, and the live timeline.

Who may do what in a room is a set of Qonsent grants on `qchat:room:<id>`, made and
revoked by this service as membership changes: the owner holds `admin`; a member gets
`read write`, a moderator `read write delete share`, a muted member `read` only. Every
room action goes through the kernel's `change`/`check` with those grants, deny by
default, each verdict in the audit log. The timeline lives in `timeline`.

In an end-to-end room every membership change (join, leave, kick, ban) starts a new key
epoch: nothing can be sent until a joined member uploads a group key sealed to exactly
the members of that moment, so a removed member never holds a key to later messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.db import insert_ignore
from anarq.kernel.errors import AnarqError, BadRequest, Conflict, Forbidden, NotFound
from anarq.kernel.guard import Context
from anarq.kernel.ids import is_ulid, new_id
from anarq.kernel.subject import ExportItem
from anarq.qchat import subject, tables
from anarq.qchat.live import Live
from anarq.qchat.models import CreateRoom, Member, Room
from anarq.qchat.timeline import Timeline, append_event, room_resource
from anarq.qonsent.models import GrantRequest
from anarq.qonsent.service import QonsentService
from anarq.squid.service import SquidService

ROLE_ACTIONS = {"member": ["read", "write"], "moderator": ["read", "write", "delete", "share"]}
MUTED_ACTIONS = ["read"]
ROOMS_LIST_MAX = 500


class UnknownIdentity(NotFound):
    code = "qchat.unknown_identity"


class _AlreadyJoined(Exception):
    """A racing join of the same identity committed first (nothing to do)."""


def rooms_resource(did: str) -> str:
    """Where an identity makes its rooms: its own space."""
    return f"qchat:rooms:{did}"


class ChatService:
    erase_order = 25

    def __init__(self, kernel: Kernel, squid: SquidService, qonsent: QonsentService) -> None:
        self.k = kernel
        self.squid = squid
        self.qonsent = qonsent
        self.live = Live()
        self.timeline = Timeline(self)

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """An identity makes rooms in its own space (a guard policy)."""
        return ctx.actor.kind == "identity" and resource == rooms_resource(ctx.actor.id)

    def identity(self, ctx: Context) -> str:
        return ctx.identity("a chat room")

    async def run_live_bridge(self, stop: asyncio.Event) -> None:
        """Background task: live events across this node's workers (see `live`)."""
        settings = self.k.settings
        await self.live.run_bridge(stop, settings.effective_bus_url, settings.cluster)

    def announce(self, event: dict[str, Any]) -> None:
        self.live.announce({"type": "event", "room": event["room_id"], "event": event})

    # Rooms -----------------------------------------------------------------------------

    def create(self, ctx: Context, request: CreateRoom) -> Room:
        """A group room, or a direct room with `peer` (both joined at once, invite-only)."""
        owner = self.identity(ctx)
        if (request.kind == "direct") != (request.peer is not None):
            raise BadRequest("a direct room names its peer; a group room does not")
        if request.peer is not None:
            if request.peer == owner:
                raise BadRequest("a direct room is with someone else")
            self._require_known(request.peer)
        room_id = new_id()
        now = self.k.clock.now()
        with self.k.change(ctx, "write", rooms_resource(owner)) as tx:
            tx.execute(
                tables.rooms.insert().values(
                    id=room_id,
                    kind=request.kind,
                    visibility="invite" if request.kind == "direct" else request.visibility,
                    name=request.name,
                    e2e=request.e2e,
                    owner=owner,
                    last_seq=0,
                    epoch=1 if request.e2e else 0,
                    key_ready=not request.e2e,
                    created_at=now,
                )
            )
            self.qonsent.register_owner(tx, room_resource(room_id), owner)
            self._set_member(tx, room_id, owner, role="owner", state="joined", grant_id=None)
            event = append_event(tx, now, room_id, "member", owner, subject=owner, body="created")
        self.announce(event)
        if request.peer is not None:
            self._admit(room_id, request.peer, "member", invited=True)
        return self.room(ctx, room_id)

    def room(self, ctx: Context, room_id: str) -> Room:
        """A room the caller is in or invited to, or any public room."""
        did = self.identity(ctx)
        row = self.room_row(room_id)
        with self.k.db.read() as conn:
            member = self._member(conn, room_id, did)
            if member is None and row["visibility"] != "public":
                raise NotFound(f"no room {room_id}")
            return self._room(conn, row, member)

    def rooms(self, ctx: Context, *, public: bool = False) -> list[Room]:
        """The caller's rooms (joined or invited), with unread counts; or the public ones."""
        did = self.identity(ctx)
        r, m = tables.rooms, tables.members
        with self.k.db.read() as conn:
            if public:
                rows = conn.execute(
                    select(r)
                    .where(r.c.visibility == "public")
                    .order_by(r.c.id.desc())
                    .limit(ROOMS_LIST_MAX)
                ).mappings()
                return [self._room(conn, row, self._member(conn, row["id"], did)) for row in rows]
            rows = conn.execute(
                select(r, m)
                .join(m, m.c.room_id == r.c.id)
                .where(m.c.did == did, m.c.state.in_(("joined", "invited")))
                .order_by(r.c.id.desc())
                .limit(ROOMS_LIST_MAX)
            ).mappings()
            return [self._room(conn, row, row) for row in rows]

    def members(self, ctx: Context, room_id: str) -> list[Member]:
        self.require_reader(ctx, room_id)
        m = tables.members
        with self.k.db.read() as conn:
            rows = conn.execute(select(m).where(m.c.room_id == room_id).order_by(m.c.did))
            return [Member(**row) for row in rows.mappings()]

    # Membership ------------------------------------------------------------------------

    def invite(self, ctx: Context, room_id: str, did: str) -> Member:
        """Invite an identity to a group room (moderators: `share` on the room)."""
        self.identity(ctx)
        room = self.room_row(room_id)
        if room["kind"] == "direct":
            raise BadRequest("a direct room has its two members for good")
        self._require_known(did)
        with self.k.change(ctx, "share", room_resource(room_id)) as tx:
            current = self._member(tx, room_id, did)
            if current is not None and current["state"] in ("joined", "banned"):
                raise Conflict(f"{did} is {current['state']} in this room")
            self._set_member(tx, room_id, did, role="member", state="invited", grant_id=None)
            event = append_event(
                tx, self.k.clock.now(), room_id, "member", ctx.actor.id, subject=did, body="invited"
            )
        self.announce(event)
        return self._member_info(room_id, did)

    def join(self, ctx: Context, room_id: str) -> Room:
        """Join a public room, or one you are invited to. Banned identities cannot."""
        did = self.identity(ctx)
        room = self.room_row(room_id)
        with self.k.db.read() as conn:
            current = self._member(conn, room_id, did)
        state = current["state"] if current is not None else None
        if state == "joined":
            return self.room(ctx, room_id)
        if state == "banned":
            raise Forbidden(f"{did} is banned from room {room_id}")
        if state != "invited" and room["visibility"] != "public":
            raise NotFound(f"no room {room_id} you are invited to")
        self._admit(room_id, did, "member", invited=room["visibility"] != "public")
        return self.room(ctx, room_id)

    def leave(self, ctx: Context, room_id: str) -> None:
        """Leave a room; its owner cannot (the room would have no admin)."""
        did = self.identity(ctx)
        room = self.room_row(room_id)
        if room["owner"] == did:
            raise BadRequest("the owner cannot leave the room")
        self._remove(ctx, room_id, did, "left", action="read")

    def kick(self, ctx: Context, room_id: str, did: str) -> None:
        """Remove a member (moderators); they may be invited again."""
        self._remove(ctx, room_id, did, "kicked", action="share")

    def ban(self, ctx: Context, room_id: str, did: str) -> None:
        """Remove a member, or anyone, for good: a banned identity cannot join or be invited."""
        self._remove(ctx, room_id, did, "banned", action="share")

    def mute(self, ctx: Context, room_id: str, did: str, *, muted: bool = True) -> Member:
        """Take (or give back) a member's right to write: their grant becomes `read` only."""
        current = self._moderatable(ctx, room_id, did)
        if current["state"] != "joined":
            raise Conflict(f"{did} is not a joined member")
        actions = MUTED_ACTIONS if muted else ROLE_ACTIONS[current["role"]]
        word = "muted" if muted else "unmuted"
        self._regrant(ctx, room_id, current, actions, word, muted=muted, role=current["role"])
        return self._member_info(room_id, did)

    def set_role(self, ctx: Context, room_id: str, did: str, role: str) -> Member:
        """Make a member a moderator or a member again (the owner: `admin` on the room)."""
        self.identity(ctx)
        self.k.check(ctx, "admin", room_resource(room_id))
        current = self._joined_member(room_id, did)
        if current["role"] == "owner":
            raise BadRequest("the owner's role does not change")
        actions = MUTED_ACTIONS if current["muted"] else ROLE_ACTIONS[role]
        self._regrant(ctx, room_id, current, actions, role, muted=current["muted"], role=role)
        return self._member_info(room_id, did)

    # Data-subject requests ---------------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """The person's rooms, the events they sent, and the rooms' sealed keys."""
        return subject.export_subject(self, did)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Leave every room (its key changes) and tombstone everything they sent."""
        return subject.erase_subject(self, ctx, did)

    # Membership mechanics --------------------------------------------------------------

    def _admit(self, room_id: str, did: str, role: str, *, invited: bool) -> None:
        """Grant membership (the node grants, by the room's rules) and record the join.

        The member row decides again inside the transaction, after the room row is locked
        (every membership change bumps its counter first): a racing join, a ban or a
        withdrawn invitation meanwhile leaves no second grant behind. A muted member who
        comes back is still muted. With `invited`, only an invited identity joins (or the
        peer of a direct room being made).
        """
        with self.k.db.read() as conn:
            before = self._member(conn, room_id, did)
        muted = before is not None and bool(before["muted"])
        grant = self._grant(room_id, did, MUTED_ACTIONS if muted else ROLE_ACTIONS[role])
        try:
            ctx = Context.system()
            with self.k.change(ctx, "write", room_resource(room_id)) as tx:
                event = append_event(
                    tx, self.k.clock.now(), room_id, "member", did, subject=did, body="joined"
                )
                current = self._member(tx, room_id, did)
                state = current["state"] if current is not None else None
                if state == "joined":
                    raise _AlreadyJoined
                if state == "banned":
                    raise Forbidden(f"{did} is banned from room {room_id}")
                if invited and state not in ("invited", None):
                    raise NotFound(f"no room {room_id} you are invited to")
                if current is not None and bool(current["muted"]) != muted:
                    raise Conflict("the membership changed meanwhile: join again")
                self._set_member(tx, room_id, did, role=role, state="joined", grant_id=grant)
                self._new_epoch(tx, room_id)
        except _AlreadyJoined:
            self._revoke(grant)
            return
        except BaseException:
            self._revoke(grant)
            raise
        self.announce(event)

    def _remove(self, ctx: Context, room_id: str, did: str, state: str, *, action: str) -> None:
        if action == "share":
            current = self._moderatable(ctx, room_id, did, allow_absent=state == "banned")
        else:
            self.k.check(ctx, action, room_resource(room_id))
            current = self._joined_member(room_id, did)
        was_joined = current is not None and current["state"] == "joined"
        with self.k.change(ctx, action, room_resource(room_id)) as tx:
            self._set_member(tx, room_id, did, role="member", state=state, grant_id=None)
            event = append_event(
                tx, self.k.clock.now(), room_id, "member", ctx.actor.id, subject=did, body=state
            )
            if was_joined:
                self._new_epoch(tx, room_id)
        # After the commit (the leaver's own grant authorized the change); from here on the
        # membership state alone already refuses their writes.
        if current is not None and current["grant_id"] is not None:
            self._revoke(current["grant_id"])
        self.announce(event)

    def _regrant(
        self,
        ctx: Context,
        room_id: str,
        current: RowMapping,
        actions: list[str],
        word: str,
        **values: Any,
    ) -> None:
        did = current["did"]
        if current["grant_id"] is not None:
            self._revoke(current["grant_id"])
        grant = self._grant(room_id, did, actions)
        m = tables.members
        with self.k.change(ctx, "share", room_resource(room_id)) as tx:
            tx.execute(
                update(m)
                .where(m.c.room_id == room_id, m.c.did == did)
                .values(grant_id=grant, updated_at=self.k.clock.now(), **values)
            )
            event = append_event(
                tx, self.k.clock.now(), room_id, "member", ctx.actor.id, subject=did, body=word
            )
        self.announce(event)

    def _moderatable(
        self, ctx: Context, room_id: str, did: str, *, allow_absent: bool = False
    ) -> Any:
        """The member a moderator acts on: never the owner; a moderator only by the owner.

        With `allow_absent` (a ban), also someone who is not in the room: never joined
        (None), or gone (left, kicked) and free to come back unless banned.
        """
        actor = self.identity(ctx)
        room = self.room_row(room_id)
        self.k.check(ctx, "share", room_resource(room_id))
        if did == room["owner"] or did == actor:
            raise BadRequest("moderation acts on other members, never on the owner")
        with self.k.db.read() as conn:
            current = self._member(conn, room_id, did)
        if current is None and allow_absent:
            self._require_known(did)
            return None
        if allow_absent and current is not None and current["state"] in ("left", "kicked"):
            return current
        if current is None or current["state"] not in ("joined", "invited"):
            raise NotFound(f"{did} is not a member of room {room_id}")
        if current["role"] == "moderator" and actor != room["owner"]:
            raise Forbidden("only the owner moderates a moderator")
        return current

    def _grant(self, room_id: str, did: str, actions: list[str]) -> str:
        request = GrantRequest(
            grantee=did, resource=room_resource(room_id), actions=actions, purpose="qchat room"
        )
        return self.qonsent.grant(Context.system(), request).id

    def _revoke(self, grant_id: str) -> None:
        with contextlib.suppress(NotFound):  # already revoked
            self.qonsent.revoke(Context.system(), grant_id)

    def _new_epoch(self, tx: Connection, room_id: str) -> None:
        r = tables.rooms
        tx.execute(
            update(r)
            .where(r.c.id == room_id, r.c.e2e.is_(True))
            .values(epoch=r.c.epoch + 1, key_ready=False)
        )

    # Rows ------------------------------------------------------------------------------

    def room_row(self, room_id: str) -> RowMapping:
        if not is_ulid(room_id):
            raise NotFound(f"no room {room_id[:40]!r}")
        with self.k.db.read() as conn:
            row = conn.execute(select(tables.rooms).where(tables.rooms.c.id == room_id))
            found = row.mappings().first()
        if found is None:
            raise NotFound(f"no room {room_id}")
        return found

    def joined(self, room_id: str, *, conn: Connection | None = None) -> list[str]:
        m = tables.members
        query = select(m.c.did).where(m.c.room_id == room_id, m.c.state == "joined")
        if conn is not None:
            return sorted(conn.execute(query).scalars())
        with self.k.db.read() as read:
            return sorted(read.execute(query).scalars())

    def require_reader(self, ctx: Context, room_id: str) -> str:
        """The caller, if it may read the room: `read` on it and a joined member.

        Both, so a grant that outlives a membership (revoked just after the removal
        commits, or left behind by a race) never reads on its own.
        """
        did = self.identity(ctx)
        self.room_row(room_id)
        resource = room_resource(room_id)
        self.k.check(ctx, "read", resource)
        with self.k.db.read() as conn:
            member = self._member(conn, room_id, did)
        if member is None or member["state"] != "joined":
            self.k.guard.record(ctx, "read", resource, "deny")
            raise Forbidden(f"{did} is not a member of room {room_id}")
        return did

    def require_joined(self, tx: Connection, room_id: str, did: str) -> None:
        member = self._member(tx, room_id, did)
        if member is None or member["state"] != "joined":
            raise Forbidden(f"{did} is not a member of room {room_id}")

    def _joined_member(self, room_id: str, did: str) -> RowMapping:
        with self.k.db.read() as conn:
            current = self._member(conn, room_id, did)
        if current is None or current["state"] != "joined":
            raise NotFound(f"{did} is not a member of room {room_id}")
        return current

    def _member(self, conn: Connection, room_id: str, did: str) -> RowMapping | None:
        m = tables.members
        query = select(m).where(m.c.room_id == room_id, m.c.did == did)
        return conn.execute(query).mappings().first()

    def _member_info(self, room_id: str, did: str) -> Member:
        with self.k.db.read() as conn:
            row = self._member(conn, room_id, did)
        assert row is not None
        return Member(**row)

    def _set_member(self, tx: Connection, room_id: str, did: str, **values: Any) -> None:
        """Insert or update a member row; `muted` stays as it was unless given (a muted
        member who leaves and comes back is still muted)."""
        m = tables.members
        row = {"room_id": room_id, "did": did, "muted": False, "last_read_seq": 0, **values}
        row["updated_at"] = self.k.clock.now()
        if not insert_ignore(tx, m, row):
            kept = {"room_id", "did", "last_read_seq"} | ({"muted"} - values.keys())
            changes = {k: v for k, v in row.items() if k not in kept}
            tx.execute(update(m).where(m.c.room_id == room_id, m.c.did == did).values(**changes))

    def _room(self, conn: Connection, row: RowMapping, member: RowMapping | None) -> Room:
        fields = {c.name: row[c.name] for c in tables.rooms.columns}
        if member is None:
            return Room(**fields)
        last_read = int(member["last_read_seq"])
        unread = self.timeline.unread(conn, row["id"], member["did"], last_read)
        return Room(
            **fields,
            role=member["role"],
            state=member["state"],
            muted=member["muted"],
            last_read_seq=last_read,
            unread=unread if member["state"] == "joined" else 0,
        )

    def _require_known(self, did: str) -> None:
        try:
            identity = self.squid.identity(did)
        except AnarqError:
            raise UnknownIdentity(f"no identity {did[:200]!r} on this node") from None
        if identity.revoked_at is not None:
            raise UnknownIdentity(f"{did} has been revoked")
