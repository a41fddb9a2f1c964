"""Qchat's request and response bodies. In an end-to-end room `body` is ciphertext."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from anarq.qchat.tables import BODY_MAX_CHARS, DID_MAX, ROOM_NAME_MAX

Role = Literal["owner", "moderator", "member"]
State = Literal["invited", "joined", "left", "kicked", "banned"]
EventKind = Literal["message", "edit", "delete", "reaction", "unreaction", "member", "key"]
REACTION_MAX_CHARS = 16
KEY_ENVELOPE_MAX_CHARS = 512 * 1024
# Parsed up to this; the service refuses a body over BODY_MAX_CHARS with 413, not 422.
BODY_PARSE_MAX_CHARS = 4 * BODY_MAX_CHARS  # a group key sealed to up to ~1,000 members

DID = Field(min_length=8, max_length=DID_MAX)


class KeyUpload(BaseModel):
    """A room's group key for one epoch, Qlock-sealed to exactly its joined members."""

    model_config = ConfigDict(extra="forbid")

    epoch: int = Field(ge=1)
    envelope: str = Field(min_length=1, max_length=KEY_ENVELOPE_MAX_CHARS)


class CreateRoom(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["direct", "group"] = "group"
    name: str = Field(default="", max_length=ROOM_NAME_MAX)
    visibility: Literal["public", "invite"] = "invite"
    e2e: bool = True
    peer: str | None = Field(default=None, min_length=8, max_length=DID_MAX)


class Room(BaseModel):
    id: str
    kind: str
    name: str
    visibility: str
    e2e: bool
    owner: str
    last_seq: int
    epoch: int
    key_ready: bool = Field(description="False until a member uploads the current epoch's key.")
    created_at: datetime
    role: Role | None = None
    state: State | None = None
    muted: bool = False
    last_read_seq: int = 0
    unread: int = 0


class Member(BaseModel):
    did: str
    role: Role
    state: State
    muted: bool
    last_read_seq: int


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    did: str = DID


class ModerateRequest(BaseModel):
    """Kick, ban or (un)mute a member; in an end-to-end room a removal starts a new epoch."""

    model_config = ConfigDict(extra="forbid")

    did: str = DID


class RoleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["moderator", "member"]


class PostRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=BODY_PARSE_MAX_CHARS)
    reply_to: int | None = Field(default=None, ge=1)


class EditRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=BODY_PARSE_MAX_CHARS)


class ReactionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reaction: str = Field(min_length=1, max_length=REACTION_MAX_CHARS)
    remove: bool = False


class ReadMark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=0)


class Event(BaseModel):
    room_id: str
    seq: int
    kind: EventKind
    sender: str
    body: str | None
    target_seq: int | None
    subject: str | None
    epoch: int | None
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None


class EventPage(BaseModel):
    events: list[Event] = Field(description="Ascending by seq.")
    more: bool = Field(description="Whether more events lie beyond this page.")


class RoomKey(BaseModel):
    epoch: int
    envelope: str
    created_by: str
    created_at: datetime
