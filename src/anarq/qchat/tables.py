"""Qchat's tables: rooms (with their sequence counter), members, the room timeline and
the room's group keys, sealed to its members. In an end-to-end room no column holds
message content in clear: `body` is the client's ciphertext."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200
ROOM_NAME_MAX = 100
BODY_MAX_CHARS = 64 * 1024  # the stored body: plaintext or the ciphertext envelope's text

rooms = Table(
    "qchat_rooms",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("kind", String(10), nullable=False),  # direct | group
    Column("visibility", String(10), nullable=False),  # public | invite
    Column("name", String(ROOM_NAME_MAX), nullable=False),
    Column("e2e", Boolean, nullable=False),
    Column("owner", String(DID_MAX), nullable=False),
    # The counter: the highest sequence number handed out, bumped in the writer's transaction.
    Column("last_seq", BigInteger, nullable=False),
    # The current group-key epoch; `key_ready` is false until a member uploads its key.
    Column("epoch", Integer, nullable=False),
    Column("key_ready", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
Index("ix_qchat_rooms_visibility", rooms.c.visibility)

members = Table(
    "qchat_members",
    metadata,
    Column("room_id", String(26), primary_key=True),
    Column("did", String(DID_MAX), primary_key=True),
    Column("role", String(10), nullable=False),  # owner | moderator | member
    Column("state", String(10), nullable=False),  # invited joined left kicked banned
    Column("muted", Boolean, nullable=False),
    # The Qonsent grant that lets the member act in the room; revoked when they go.
    Column("grant_id", String(26), nullable=True),
    Column("last_read_seq", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
Index("ix_qchat_members_did", members.c.did, members.c.state)

# The room timeline: every message, edit, deletion, reaction and membership change, in
# sequence order. A deleted message keeps its row (a tombstone) with the body gone.
events = Table(
    "qchat_events",
    metadata,
    Column("room_id", String(26), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("kind", String(12), nullable=False),
    Column("sender", String(DID_MAX), nullable=False),
    Column("body", Text, nullable=True),
    # message: the seq replied to; edit, delete, reaction: the message seq it acts on.
    Column("target_seq", BigInteger, nullable=True),
    # member events: whom it is about.
    Column("subject", String(DID_MAX), nullable=True),
    Column("epoch", Integer, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("edited_at", UtcDateTime(), nullable=True),
    Column("deleted_at", UtcDateTime(), nullable=True),
)
Index("ix_qchat_events_target", events.c.room_id, events.c.target_seq)

# One sealed group key per room and epoch: Qlock multi-recipient `seal`, to exactly the
# members joined when it was made.
keys = Table(
    "qchat_keys",
    metadata,
    Column("room_id", String(26), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("envelope", Text, nullable=False),
    Column("created_by", String(DID_MAX), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

TABLES = (rooms, members, events, keys)
