"""The node module's tables: its public profile, its workers, event activity, operator tokens."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

NAME_MAX = 120
DESCRIPTION_MAX = 2000
CONTACT_MAX = 320

profile = Table(
    "node_profile",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(NAME_MAX), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("contact", String(CONTACT_MAX), nullable=False, default=""),
    Column("avatar_cid", String(100), nullable=True),
    Column("avatar_media_type", String(40), nullable=True),
    Column("revision", Integer, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

workers = Table(
    "node_workers",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("url", String(300), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(40), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("stopped_at", UtcDateTime(), nullable=True),
)

activity = Table(
    "node_activity",
    metadata,
    Column("event_type", String(120), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("last_event_id", String(26), nullable=False),
    Column("last_event_at", UtcDateTime(), nullable=False),
)

operator_tokens = Table(
    "node_operator_tokens",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("label", String(NAME_MAX), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)

# The node's own identity: one row, its private key sealed under the node secret.
keys = Table(
    "node_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("did", String(200), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("sealed_private_key", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
