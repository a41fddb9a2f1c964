"""Qlock's tables: named leases (distributed locks) with fencing tokens."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from anarq.kernel.db import UtcDateTime, metadata

NAME_MAX = 200
HOLDER_MAX = 128
DID_MAX = 200

# One row per lock name, created by its first acquisition and never deleted: the row
# carries the name's fencing counter, so a lock released and acquired again gets a
# higher token than any it ever handed out. Released or expired, the row describes the
# last lease; the lock is held exactly while `expires_at` is in the future.
leases = Table(
    "qlock_leases",
    metadata,
    Column("name", String(NAME_MAX), primary_key=True),
    # The actor (a DID, `operator`, `system`) of the last acquisition.
    Column("owner", String(DID_MAX), nullable=False),
    # The owner's own name for the process or task holding it (e.g. `worker-3`).
    Column("holder", String(HOLDER_MAX), nullable=False),
    # The fencing token of the last acquisition: 1, 2, 3… per name, never reused.
    Column("token", BigInteger, nullable=False),
    Column("acquired_at", UtcDateTime(), nullable=False),
    # NULL once released.
    Column("expires_at", UtcDateTime(), nullable=True),
)
