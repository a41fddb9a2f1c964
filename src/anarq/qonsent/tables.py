"""Qonsent's tables: grants (who may do what to which resources, why, until when) and owners."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200
RESOURCE_MAX = 300
PURPOSE_MAX = 500

grants = Table(
    "qonsent_grants",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("grantor", String(DID_MAX), nullable=False),
    # An identity's DID, a DAO's DID, or "public".
    Column("grantee", String(DID_MAX), nullable=False),
    # Exact (`qdrive:file:bafy…`) or a pattern ending in `*` (`qdrive:file:*`).
    Column("resource", String(RESOURCE_MAX), nullable=False),
    Column("actions", String(100), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("uses", Integer, nullable=False, default=0),
    Column("conditions", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    # The signed consent receipt issued with the grant (JSON).
    Column("receipt", Text, nullable=True),
)
# `check` looks grants up by exactly these two columns (the resource as given and its
# wildcard ancestors), so a check costs a handful of index probes at any number of grants.
Index("ix_qonsent_grants_lookup", grants.c.grantee, grants.c.resource)
Index("ix_qonsent_grants_grantor", grants.c.grantor)

owners = Table(
    "qonsent_owners",
    metadata,
    Column("resource", String(RESOURCE_MAX), primary_key=True),
    Column("owner", String(DID_MAX), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
Index("ix_qonsent_owners_owner", owners.c.owner)

# Capability links revoked before their expiry: a chain through any of them is dead.
revoked_capabilities = Table(
    "qonsent_revoked_capabilities",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("revoked_by", String(DID_MAX), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=False),
)
