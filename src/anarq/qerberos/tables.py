"""Qerberos's tables: audit entries, the Merkle tree's complete subtrees, signed tree heads."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata
from anarq.kernel.tables import SequenceKey

entries = Table(
    "qerberos_entries",
    metadata,
    Column("seq", SequenceKey, primary_key=True, autoincrement=True),
    # Assigned when the entry is integrated into the tree; order of integration, not of seq.
    Column("leaf_index", BigInteger, nullable=True, unique=True),
    Column("time", UtcDateTime(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(20), nullable=False),
    Column("resource", String(300), nullable=False),
    Column("verdict", String(10), nullable=False),
    Column("request_id", String(64), nullable=False),
    # The exact bytes hashed into the tree (canonical JSON of the fields above).
    Column("leaf", Text, nullable=False),
)
# Entries waiting for integration, in the order integration takes them: a partial index,
# so it stays as small as the backlog however long the log grows.
Index(
    "ix_qerberos_entries_pending",
    entries.c.seq,
    postgresql_where=entries.c.leaf_index.is_(None),
    sqlite_where=entries.c.leaf_index.is_(None),
)
Index("ix_qerberos_entries_actor", entries.c.actor, entries.c.seq)

tree_nodes = Table(
    "qerberos_tree_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

tree_heads = Table(
    "qerberos_tree_heads",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("time", UtcDateTime(), nullable=False),
    Column("signer", String(200), nullable=False),
    Column("signature", Text, nullable=False),
)

alerts = Table(
    "qerberos_alerts",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("kind", String(40), nullable=False),
    # An address (`ip:…`) or an identity's DID.
    Column("subject", String(300), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("status", String(14), nullable=False),
    Column("count", Integer, nullable=False),
    Column("details", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
Index("ix_qerberos_alerts_open", alerts.c.kind, alerts.c.subject, alerts.c.status)
