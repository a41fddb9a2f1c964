"""HTTP and WebSocket routes of Qchat, mounted at `/qchat`."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Depends, Path, Query, Response, WebSocket
from fastapi.websockets import WebSocketDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from anarq.gateway.auth import AUTH_RESOURCE, MAX_CREDENTIAL_CHARS, caller
from anarq.kernel.errors import AnarqError
from anarq.kernel.guard import ANONYMOUS, Context
from anarq.qchat.models import (
    CreateRoom,
    EditRequest,
    Event,
    EventPage,
    InviteRequest,
    KeyUpload,
    Member,
    ModerateRequest,
    PostRequest,
    ReactionRequest,
    ReadMark,
    RoleRequest,
    Room,
    RoomKey,
)
from anarq.qchat.service import ChatService
from anarq.qchat.tables import DID_MAX
from anarq.qchat.timeline import PAGE_MAX
from anarq.qchat.ws import Hub

router = APIRouter()

ROOM_ID = Path(..., min_length=1, max_length=40, description="A room id.")
SEQ = Path(..., ge=1, le=2**62, description="A message's sequence number in the room.")
AUTH_WAIT_SECONDS = 10


async def service(request: HTTPConnection) -> ChatService:
    svc: ChatService = request.app.state.node.service("qchat")
    return svc


@router.post("/rooms", status_code=201, response_model=Room, summary="Create a room")
def create_room(
    body: CreateRoom, ctx: Context = Depends(caller), svc: ChatService = Depends(service)
) -> Room:
    return svc.create(ctx, body)


@router.get("/rooms", response_model=list[Room], summary="Your rooms, or the public ones")
def list_rooms(
    public: bool = Query(False),
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> list[Room]:
    return svc.rooms(ctx, public=public)


@router.get("/rooms/{room_id}", response_model=Room, summary="One room, with your unread count")
def get_room(
    room_id: str = ROOM_ID, ctx: Context = Depends(caller), svc: ChatService = Depends(service)
) -> Room:
    return svc.room(ctx, room_id)


@router.get("/rooms/{room_id}/members", response_model=list[Member], summary="Who is in it")
def members(
    room_id: str = ROOM_ID, ctx: Context = Depends(caller), svc: ChatService = Depends(service)
) -> list[Member]:
    return svc.members(ctx, room_id)


@router.post("/rooms/{room_id}/invites", status_code=201, response_model=Member)
def invite(
    body: InviteRequest,
    room_id: str = ROOM_ID,
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> Member:
    """Invite an identity (moderators)."""
    return svc.invite(ctx, room_id, body.did)


@router.post("/rooms/{room_id}/join", response_model=Room, summary="Join (public or invited)")
def join(
    room_id: str = ROOM_ID, ctx: Context = Depends(caller), svc: ChatService = Depends(service)
) -> Room:
    return svc.join(ctx, room_id)


@router.post("/rooms/{room_id}/leave", status_code=204, summary="Leave the room")
def leave(
    room_id: str = ROOM_ID, ctx: Context = Depends(caller), svc: ChatService = Depends(service)
) -> Response:
    svc.leave(ctx, room_id)
    return Response(status_code=204)


@router.put("/rooms/{room_id}/members/{did}/role", response_model=Member, summary="Set a role")
def set_role(
    body: RoleRequest,
    room_id: str = ROOM_ID,
    did: str = Path(..., min_length=8, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> Member:
    return svc.set_role(ctx, room_id, did, body.role)


@router.post("/rooms/{room_id}/messages", status_code=201, response_model=Event)
def post(
    body: PostRequest,
    room_id: str = ROOM_ID,
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> Event:
    """Send a message (ciphertext in an end-to-end room)."""
    return svc.timeline.post(ctx, room_id, body)


@router.put("/rooms/{room_id}/messages/{seq}", response_model=Event, summary="Edit yours")
def edit(
    body: EditRequest,
    room_id: str = ROOM_ID,
    seq: int = SEQ,
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> Event:
    return svc.timeline.edit(ctx, room_id, seq, body.body)


@router.delete("/rooms/{room_id}/messages/{seq}", response_model=Event, summary="Delete")
def delete(
    room_id: str = ROOM_ID,
    seq: int = SEQ,
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> Event:
    return svc.timeline.delete(ctx, room_id, seq)


@router.post("/rooms/{room_id}/messages/{seq}/reactions", status_code=201, response_model=Event)
def react(
    body: ReactionRequest,
    room_id: str = ROOM_ID,
    seq: int = SEQ,
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> Event:
    """Add (or with `remove`, take back) a reaction."""
    return svc.timeline.react(ctx, room_id, seq, body.reaction, body.remove)


@router.get("/rooms/{room_id}/events", response_model=EventPage, summary="History, paged")
def history(
    room_id: str = ROOM_ID,
    after: int | None = Query(None, ge=0, le=2**62),
    before: int | None = Query(None, ge=1, le=2**62),
    limit: int = Query(50, ge=1, le=PAGE_MAX),
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> EventPage:
    return svc.timeline.page(ctx, room_id, after=after, before=before, limit=limit)


@router.post("/rooms/{room_id}/read", response_model=ReadMark, summary="Move your read mark")
def mark_read(
    body: ReadMark,
    room_id: str = ROOM_ID,
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> ReadMark:
    return ReadMark(seq=svc.timeline.mark_read(ctx, room_id, body.seq))


@router.get("/rooms/{room_id}/keys", response_model=list[RoomKey], summary="Sealed group keys")
def keys(
    room_id: str = ROOM_ID, ctx: Context = Depends(caller), svc: ChatService = Depends(service)
) -> list[RoomKey]:
    return svc.timeline.keys(ctx, room_id)


@router.post("/rooms/{room_id}/keys", status_code=201, response_model=RoomKey)
def upload_key(
    body: KeyUpload,
    room_id: str = ROOM_ID,
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> RoomKey:
    """The new epoch's group key, sealed to exactly the joined members."""
    return svc.timeline.upload_key(ctx, room_id, body)


# Last among the POSTs under a room: its `{verb}` would shadow the literal paths.
@router.post("/rooms/{room_id}/{verb}", status_code=204, summary="Kick, ban, mute or unmute")
def moderate(
    body: ModerateRequest,
    room_id: str = ROOM_ID,
    verb: str = Path(..., pattern="^(kick|ban|mute|unmute)$"),
    ctx: Context = Depends(caller),
    svc: ChatService = Depends(service),
) -> Response:
    if verb == "kick":
        svc.kick(ctx, room_id, body.did)
    elif verb == "ban":
        svc.ban(ctx, room_id, body.did)
    else:
        svc.mute(ctx, room_id, body.did, muted=verb == "mute")
    return Response(status_code=204)


@router.websocket("/ws")
async def websocket(socket: WebSocket) -> None:
    """Live chat. Authenticate with `Authorization: Bearer <session>` on the handshake or a
    first frame `{"type": "auth", "token": …}`; see docs/qchat.md for the protocol."""
    await socket.accept()
    signed_in = await _authenticate(socket)
    if signed_in is None:
        await socket.send_json({"type": "error", "code": "unauthenticated", "detail": "sign in"})
        await socket.close(code=4401)
        return
    state = socket.app.state
    if getattr(state, "qchat_hub", None) is None:
        state.qchat_hub = Hub(state.node.service("qchat"))
    ctx, token = signed_in
    with contextlib.suppress(WebSocketDisconnect):
        await state.qchat_hub.serve(socket, ctx, token)


async def _authenticate(socket: WebSocket) -> tuple[Context, str] | None:
    """The session's context and token, or None. The address passes the gateway's door
    (rate limit, lockout) first, and a refused token counts as a failed sign-in."""
    door = socket.app.state.door
    address = socket.client.host if socket.client else "unknown"
    if door is not None:
        try:
            door.admit_address(address)
        except AnarqError:
            return None
    header = socket.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    if token is None:
        try:
            first = await asyncio.wait_for(socket.receive_json(), AUTH_WAIT_SECONDS)
        except (TimeoutError, ValueError, KeyError, WebSocketDisconnect):
            return None
        if isinstance(first, dict) and first.get("type") == "auth":
            token = first.get("token")
    if isinstance(token, str) and token and len(token) <= MAX_CREDENTIAL_CHARS:
        for authenticator in socket.app.state.authenticators:
            actor = await run_in_threadpool(authenticator.authenticate_bearer, token)
            if actor is not None and actor.kind == "identity":
                if door is not None:
                    try:
                        door.admit_identity(actor.id)
                    except AnarqError:
                        return None
                    door.authentication_succeeded(address)
                return Context(actor=actor), token
    refused = Context(actor=ANONYMOUS)
    guard = socket.app.state.node.kernel.guard
    await run_in_threadpool(guard.record, refused, "execute", AUTH_RESOURCE, "deny")
    if door is not None:
        await run_in_threadpool(door.authentication_failed, address, "no valid session")
    return None
