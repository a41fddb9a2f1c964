"""The kernel's own tables: the event outbox, pending deliveries, consumed ids, dead letters."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from anarq.kernel.db import UtcDateTime, metadata

JsonDocument = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants a BIGINT identity.
SequenceKey = BigInteger().with_variant(Integer(), "sqlite")

EVENT_TYPE_MAX = 120
SUBSCRIPTION_NAME_MAX = 120

outbox = Table(
    "kernel_outbox",
    metadata,
    Column("seq", SequenceKey, primary_key=True, autoincrement=True),
    Column("id", String(26), nullable=False, unique=True),
    Column("type", String(EVENT_TYPE_MAX), nullable=False),
    Column("envelope", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("dispatched_at", UtcDateTime(), nullable=True),
)
Index("ix_kernel_outbox_pending", outbox.c.dispatched_at, outbox.c.seq)

deliveries = Table(
    "kernel_deliveries",
    metadata,
    Column("seq", SequenceKey, primary_key=True, autoincrement=True),
    Column("subscription", String(SUBSCRIPTION_NAME_MAX), nullable=False),
    Column("event_id", String(26), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
)
Index("ix_kernel_deliveries_due", deliveries.c.next_attempt_at)

consumed = Table(
    "kernel_consumed",
    metadata,
    Column("subscription", String(SUBSCRIPTION_NAME_MAX), primary_key=True),
    Column("event_id", String(26), primary_key=True),
    Column("consumed_at", UtcDateTime(), nullable=False),
)

dead_letters = Table(
    "kernel_dead_letters",
    metadata,
    Column("seq", SequenceKey, primary_key=True, autoincrement=True),
    Column("subscription", String(SUBSCRIPTION_NAME_MAX), nullable=False),
    Column("event_id", String(26), nullable=False),
    Column("envelope", JsonDocument, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", UtcDateTime(), nullable=False),
)
