"""sQuid's tables: registered identities, their key history, and seen request nonces."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200
NAME_MAX = 80

identities = Table(
    "squid_identities",
    metadata,
    Column("did", String(DID_MAX), primary_key=True),
    Column("name", String(NAME_MAX), nullable=False),
    Column("type", String(12), nullable=False),
    Column("status", String(12), nullable=False),
    Column("parent_did", String(DID_MAX), nullable=True),
    Column("verification_level", Integer, nullable=False),
    Column("governance", String(12), nullable=False),
    Column("privacy", String(12), nullable=False),
    # Qlock public key bytes (base64): Ed25519, or Ed25519 + ML-DSA-65 for hybrid identities.
    Column("public_key", Text, nullable=False),
    Column("key_id", String(64), nullable=False),
    # An AID's link to its root, hidden: SHA-256(root DID, salt); the root reveals the salt.
    Column("link_commitment", String(64), nullable=True),
    # Pre-rotation: SHA-256 (hex) of the next public key, committed before it is used.
    Column("next_key_hash", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)
Index("ix_squid_identities_parent", identities.c.parent_did)

# One row per accepted request nonce until it could no longer be replayed.
nonces = Table(
    "squid_nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("did", String(DID_MAX), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_squid_nonces_expiry", nonces.c.expires_at)

# The identity's key history: every key it has had, and the statement that moved it on.
key_events = Table(
    "squid_key_events",
    metadata,
    Column("did", String(DID_MAX), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(12), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("next_key_hash", String(64), nullable=True),
    Column("request_id", String(64), nullable=False),
    Column("time", UtcDateTime(), nullable=False),
)

# How many anonymous sub-identities each root holds (the cap applies), never which.
aid_counts = Table(
    "squid_aid_counts",
    metadata,
    Column("root_did", String(DID_MAX), primary_key=True),
    Column("count", Integer, nullable=False),
)

# Browser sign-in sessions: short-lived bearer tokens, kept only as hashes.
sessions = Table(
    "squid_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("did", String(DID_MAX), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
)
