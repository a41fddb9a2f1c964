"""Reputation's one table: the sub-identities whose roots lend them part of their score."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200

links = Table(
    "reputation_links",
    metadata,
    Column("sub", String(DID_MAX), primary_key=True),
    Column("root", String(DID_MAX), nullable=False),
    Column("share_bps", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
Index("ix_reputation_links_root", links.c.root)

TABLES = (links,)
