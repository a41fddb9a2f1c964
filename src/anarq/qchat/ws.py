"""The WebSocket at `/qchat/ws`: resume from a sequence number, then live, in order.

One `Hub` per process holds the connected clients by room. Each connection has one
queue and one sender task, so everything it sends goes out in order. An event whose
seq is the next one for that room goes straight out; an older one is a duplicate and is
dropped; a newer one reveals a gap (a lost hint, a slow worker), filled from the
database before going on. Subscribing is the same gap-filling from the client's own seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from typing import Any

from fastapi import WebSocket
from fastapi.websockets import WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from anarq.kernel.errors import AnarqError
from anarq.kernel.guard import Context
from anarq.qchat.models import Event
from anarq.qchat.service import ChatService

QUEUE_MAX = 1024  # a client this far behind is dropped; it resumes from its last seq
CATCH_UP_BATCH = 200
ROOMS_PER_CONNECTION_MAX = 500
EPHEMERAL = ("typing", "presence")
# How stale the proof of a live session may get before the next frame out re-checks it:
# a session that ends (logout, expiry, a revoked identity) stops receiving within this.
SESSION_RECHECK_SECONDS = 30.0
CLOSE_UNAUTHENTICATED = 4401


class Connection:
    def __init__(self, socket: WebSocket, ctx: Context, token: str) -> None:
        self.socket = socket
        self.ctx = ctx
        self.token = token
        self.checked_at = time.monotonic()
        self.did = ctx.actor.id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)
        self.sent: dict[str, int] = {}
        self.overflowed = False

    def offer(self, item: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


class Hub:
    def __init__(self, chat: ChatService) -> None:
        self.chat = chat
        self.rooms: dict[str, set[Connection]] = defaultdict(set)
        self.loop: asyncio.AbstractEventLoop | None = None
        chat.live.listen(self._on_live)

    def _on_live(self, payload: dict[str, Any]) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._dispatch, payload)

    def _dispatch(self, payload: dict[str, Any]) -> None:
        for connection in list(self.rooms.get(payload["room"], ())):
            connection.offer(payload)

    async def serve(self, socket: WebSocket, ctx: Context, token: str) -> None:
        """Run one connection, signed in with the session `token`, until the client goes."""
        self.loop = asyncio.get_running_loop()
        connection = Connection(socket, ctx, token)
        await socket.send_json({"type": "ready", "did": connection.did})
        sender = asyncio.create_task(self._send_loop(connection))
        try:
            while True:
                await self._handle(connection, await self._receive(socket))
        finally:
            sender.cancel()
            for room_id in list(connection.sent):
                self._leave(connection, room_id, presence=True)

    @staticmethod
    async def _receive(socket: WebSocket) -> Any:
        """The next frame as JSON; None for one that is not JSON text (answered as bad)."""
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    async def _handle(self, connection: Connection, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "subscribe" and isinstance(message.get("rooms"), dict):
            rooms = message["rooms"]
            if len(connection.sent) + len(rooms) > ROOMS_PER_CONNECTION_MAX:
                await self._error(connection, "qchat.too_many_rooms", "too many rooms")
                return
            for room_id, after in rooms.items():
                await self._subscribe(connection, str(room_id), after)
        elif kind == "unsubscribe" and isinstance(message.get("room"), str):
            self._leave(connection, message["room"], presence=True)
        elif kind == "typing" and _room_in(message.get("room"), connection.sent):
            self._ephemeral(connection, "typing", message["room"])
        elif kind == "ping":
            connection.offer({"type": "pong"})
        else:
            await self._error(connection, "qchat.bad_frame", "unknown or malformed frame")

    async def _subscribe(self, connection: Connection, room_id: str, after: Any) -> None:
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            await self._error(connection, "qchat.bad_frame", "a room's last seq is an integer")
            return
        try:
            last_seq = await run_in_threadpool(self._may_read, connection.ctx, room_id)
        except AnarqError as exc:
            await self._error(connection, exc.code, exc.detail, room=room_id)
            return
        # Never ahead of the room: a claimed seq past its end would skip (unseen) the event
        # that removes this member, and with it the end of the subscription.
        connection.sent[room_id] = min(after, last_seq)
        self.rooms[room_id].add(connection)
        connection.offer({"type": "catch_up", "room": room_id})
        self._ephemeral(connection, "presence", room_id, status="online")

    def _may_read(self, ctx: Context, room_id: str) -> int:
        """The room's last seq, if the caller may read it (a joined member with `read`)."""
        self.chat.require_reader(ctx, room_id)
        return int(self.chat.room_row(room_id)["last_seq"])

    def _leave(self, connection: Connection, room_id: str, *, presence: bool) -> None:
        self.rooms.get(room_id, set()).discard(connection)
        if connection.sent.pop(room_id, None) is not None and presence:
            self._ephemeral(connection, "presence", room_id, status="offline")

    def _ephemeral(self, connection: Connection, kind: str, room_id: str, **fields: Any) -> None:
        self.chat.live.announce({"type": kind, "room": room_id, "did": connection.did, **fields})

    async def _error(self, connection: Connection, code: str, detail: str, **fields: Any) -> None:
        connection.offer({"type": "error", "code": code, "detail": detail, **fields})

    # Sending ---------------------------------------------------------------------------

    async def _send_loop(self, connection: Connection) -> None:
        socket = connection.socket
        while True:
            item = await connection.queue.get()
            if not await self._signed_in(connection):
                with contextlib.suppress(Exception):
                    await socket.close(code=CLOSE_UNAUTHENTICATED, reason="the session has ended")
                return
            if connection.overflowed:
                with contextlib.suppress(Exception):
                    await socket.close(code=1013, reason="too far behind: resume from your seq")
                return
            kind, room_id = item.get("type"), item.get("room")
            if kind == "catch_up" or kind == "event":
                if room_id in connection.sent:
                    await self._send_events(connection, room_id, item.get("event"))
            elif kind in EPHEMERAL and item.get("did") == connection.did:
                continue
            else:
                await socket.send_json(item)

    async def _signed_in(self, connection: Connection) -> bool:
        """Whether the connection's session still stands (checked again when stale)."""
        if time.monotonic() - connection.checked_at < SESSION_RECHECK_SECONDS:
            return True
        for authenticator in connection.socket.app.state.authenticators:
            actor = await run_in_threadpool(authenticator.authenticate_bearer, connection.token)
            if actor is not None and actor.kind == "identity" and actor.id == connection.did:
                connection.checked_at = time.monotonic()
                return True
        return False

    async def _send_events(
        self, connection: Connection, room_id: str, event: dict[str, Any] | None
    ) -> None:
        last = connection.sent[room_id]
        if event is not None and event["seq"] <= last:
            return
        if event is not None and event["seq"] == last + 1:
            await self._send_one(connection, room_id, event)
            return
        while room_id in connection.sent:
            rows = await run_in_threadpool(
                self.chat.timeline.events_after, room_id, connection.sent[room_id], CATCH_UP_BATCH
            )
            for row in rows:
                if room_id not in connection.sent:
                    return
                await self._send_one(connection, room_id, row)
            if len(rows) < CATCH_UP_BATCH:
                break
        if event is None and room_id in connection.sent:
            await connection.socket.send_json(
                {"type": "caught_up", "room": room_id, "seq": connection.sent[room_id]}
            )

    async def _send_one(self, connection: Connection, room_id: str, row: dict[str, Any]) -> None:
        await connection.socket.send_json(
            {"type": "event", "room": room_id, "event": Event(**row).model_dump(mode="json")}
        )
        connection.sent[room_id] = row["seq"]
        if (
            row["kind"] == "member"
            and row["subject"] == connection.did
            and row["body"] in ("left", "kicked", "banned")
        ):
            self._leave(connection, room_id, presence=False)


def _room_in(room: Any, rooms: dict[str, int]) -> bool:
    return isinstance(room, str) and room in rooms
