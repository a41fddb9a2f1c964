"""Distributed locks: named leases with an owner, a TTL and a fencing token.

The workers of a node already share one database, so the database is the lock server:
a lock is a row of `qlock_leases`, held while its `expires_at` is in the future.

Acquiring is one statement, an upsert that takes the row only if the lease is free:

    INSERT INTO qlock_leases … VALUES (…, token = 1, …)
    ON CONFLICT (name) DO UPDATE SET …, token = qlock_leases.token + 1
    WHERE qlock_leases.expires_at IS NULL OR qlock_leases.expires_at <= :now
    RETURNING token

PostgreSQL runs it atomically: a concurrent acquirer waits on the row (or on the key, for
a name not seen before), then evaluates the WHERE against the row as committed, so it
either takes a free lease or nothing. On SQLite every write transaction is exclusive
(BEGIN IMMEDIATE). On both, two acquirers never hold one lock at once, and each
acquisition gets a higher token than the last: the row, and with it the counter,
outlives every lease.

Time is the node's clock; workers keep theirs in sync (NTP). No lease survives a pause
longer than its TTL — a holder that stalls may still *believe* it holds the lock, which
is why every lease carries a fencing token: the resource it guards must refuse a token
lower than the highest it has seen.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.clock import rfc3339
from anarq.kernel.errors import BadRequest, Conflict, NotFound
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.qlock import tables
from anarq.qlock.models import (
    HOLDER_PATTERN,
    NAME_PATTERN,
    TOKEN_MAX,
    TTL_MAX_MS,
    TTL_MIN_MS,
    WAIT_MAX_MS,
    Lease,
)
from anarq.qlock.tables import HOLDER_MAX, NAME_MAX

# Waiters poll with exponential backoff between these bounds (plus jitter, so waiters
# woken by one release do not all ask at once), and never sleep past the holder's expiry.
POLL_FIRST_MS: Final = 5
POLL_MAX_MS: Final = 250

_NAME_RE: Final = re.compile(NAME_PATTERN)
_HOLDER_RE: Final = re.compile(HOLDER_PATTERN)


class LockBusy(Conflict):
    code = "qlock.lock_busy"
    title = "Lock is held by someone else"

    def __init__(self, name: str, expires_at: datetime) -> None:
        moment = rfc3339(expires_at)
        super().__init__(f"lock {name} is held until {moment}", lock=name, expires_at=moment)
        self.expires_at = expires_at


class LeaseLost(Conflict):
    code = "qlock.lease_lost"
    title = "Lease is not held with this token"


class LockFree(NotFound):
    code = "qlock.lock_free"
    title = "Lock is not held"


def resource_of(name: str) -> str:
    """The guard's resource for a lock: `qlock:lock:<name>`."""
    return f"qlock:lock:{name}"


class LockService:
    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    # Taking -----------------------------------------------------------------------------

    def acquire(
        self, ctx: Context, name: str, ttl_ms: int, wait_ms: int = 0, *, holder: str | None = None
    ) -> Lease:
        """Take lock `name` for `ttl_ms`, waiting up to `wait_ms` while another holds it.

        An expired lease is taken over. Not re-entrant: a live lease refuses everyone,
        its own holder included (who extends instead). Raises `LockBusy`, carrying the
        holder's expiry, if the lock is still held when the wait ends.
        """
        holder = _checked_request(name, ttl_ms, wait_ms, holder)
        poll = _Poll(wait_ms)
        while True:
            try:
                return self._take(ctx, name, holder, ttl_ms)
            except LockBusy as busy:
                held_until: datetime | None = busy.expires_at
            while held_until is not None:
                pause = poll.pause_seconds(held_until, self.k.clock.now())
                if pause is None:
                    raise LockBusy(name, held_until)
                time.sleep(pause)
                held_until = self._held_until(name)

    async def acquire_async(
        self, ctx: Context, name: str, ttl_ms: int, wait_ms: int = 0, *, holder: str | None = None
    ) -> Lease:
        """`acquire` for the event loop: waits without holding a thread."""
        holder = _checked_request(name, ttl_ms, wait_ms, holder)
        poll = _Poll(wait_ms)
        while True:
            try:
                return await asyncio.to_thread(self._take, ctx, name, holder, ttl_ms)
            except LockBusy as busy:
                held_until: datetime | None = busy.expires_at
            while held_until is not None:
                pause = poll.pause_seconds(held_until, self.k.clock.now())
                if pause is None:
                    raise LockBusy(name, held_until)
                await asyncio.sleep(pause)
                held_until = await asyncio.to_thread(self._held_until, name)

    def _take(self, ctx: Context, name: str, holder: str, ttl_ms: int) -> Lease:
        """One attempt: the atomic upsert of the module docstring, or `LockBusy`."""
        leases = tables.leases
        now = self.k.clock.now()
        row = {
            "name": name,
            "owner": ctx.actor.id,
            "holder": holder,
            "token": 1,
            "acquired_at": now,
            "expires_at": now + timedelta(milliseconds=ttl_ms),
        }
        with self.k.change(ctx, "execute", resource_of(name)) as tx:
            dialect_insert = sqlite_insert if tx.dialect.name == "sqlite" else postgresql_insert
            insert = dialect_insert(leases).values(**row)
            statement = insert.on_conflict_do_update(
                index_elements=[leases.c.name],
                set_={
                    "owner": insert.excluded.owner,
                    "holder": insert.excluded.holder,
                    "token": leases.c.token + 1,
                    "acquired_at": insert.excluded.acquired_at,
                    "expires_at": insert.excluded.expires_at,
                },
                where=or_(leases.c.expires_at.is_(None), leases.c.expires_at <= now),
            ).returning(leases.c.token)
            token = tx.execute(statement).scalar_one_or_none()
            if token is None:
                # Freed between our upsert and this read (PostgreSQL only): busy "until now",
                # so a waiter asks again at once.
                raise LockBusy(name, self._held_until(name, conn=tx) or now)
            assert 1 <= token <= TOKEN_MAX, f"fencing token {token} out of range"
            self.k.bus.publish(
                tx,
                "qlock.lock.acquired",
                {"name": name, "token": token},
                actor=ctx.actor.id,
                subject=resource_of(name),
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        return Lease(**{**row, "token": token})

    # Keeping and giving back ----------------------------------------------------------------

    def extend(self, ctx: Context, name: str, token: int, ttl_ms: int) -> Lease:
        """Move the lease's expiry to `ttl_ms` from now; the token stays the same.

        Only its owner, with the current token, before it expires: a lease that has
        expired is lost even if nobody has taken it yet (acquire it again instead).
        """
        _check_name(name)
        _check_token(token)
        _check_ttl(ttl_ms)
        leases = tables.leases
        now = self.k.clock.now()
        with self.k.change(ctx, "execute", resource_of(name)) as tx:
            row = (
                tx.execute(
                    update(leases)
                    .where(
                        leases.c.name == name,
                        leases.c.token == token,
                        leases.c.owner == ctx.actor.id,
                        leases.c.expires_at > now,
                    )
                    .values(expires_at=now + timedelta(milliseconds=ttl_ms))
                    .returning(*leases.c)
                )
                .mappings()
                .first()
            )
            if row is None:
                raise LeaseLost(f"{ctx.actor.id} does not hold lock {name} with token {token}")
        return _lease(row)

    def release(self, ctx: Context, name: str, token: int) -> None:
        """Free the lock now. Only its owner, with the current token.

        Releasing again, or after the lease expired while nobody took it, is harmless;
        a token someone else's acquisition has replaced raises `LeaseLost`.
        """
        _check_name(name)
        _check_token(token)
        leases = tables.leases
        mine = (leases.c.name == name, leases.c.token == token, leases.c.owner == ctx.actor.id)
        with self.k.change(ctx, "execute", resource_of(name)) as tx:
            released = tx.execute(
                update(leases)
                .where(*mine, leases.c.expires_at.is_not(None))
                .values(expires_at=None)
                .returning(leases.c.token)
            ).first()
            if released is not None:
                self.k.bus.publish(
                    tx,
                    "qlock.lock.released",
                    {"name": name, "token": token},
                    actor=ctx.actor.id,
                    subject=resource_of(name),
                    correlation_id=ctx.correlation_id or ctx.request_id,
                )
            elif tx.execute(select(leases.c.token).where(*mine)).first() is None:
                raise LeaseLost(f"{ctx.actor.id} does not hold lock {name} with token {token}")

    # Looking ------------------------------------------------------------------------------

    def current(self, name: str) -> Lease | None:
        """The live lease on `name`, or None if the lock is free. For in-process callers."""
        _check_name(name)
        leases = tables.leases
        with self.k.db.read() as conn:
            row = (
                conn.execute(
                    select(leases).where(
                        leases.c.name == name, leases.c.expires_at > self.k.clock.now()
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _lease(row)

    def show(self, ctx: Context, name: str) -> Lease:
        """The live lease on `name` for a caller allowed to `read` it; `LockFree` if none."""
        _check_name(name)
        self.k.check(ctx, "read", resource_of(name))
        lease = self.current(name)
        if lease is None:
            raise LockFree(f"lock {name} is not held")
        return lease

    def _held_until(self, name: str, *, conn: Connection | None = None) -> datetime | None:
        """When the live lease on `name` expires; None if the lock is free."""
        leases = tables.leases
        query = select(leases.c.expires_at).where(
            leases.c.name == name, leases.c.expires_at > self.k.clock.now()
        )
        if conn is not None:
            return conn.execute(query).scalar_one_or_none()
        with self.k.db.read() as read:
            return read.execute(query).scalar_one_or_none()


class _Poll:
    """Pauses of a waiting acquirer: doubling from `POLL_FIRST_MS`, capped, until the deadline."""

    def __init__(self, wait_ms: int) -> None:
        self.deadline = time.monotonic() + wait_ms / 1000
        self.next_ms = POLL_FIRST_MS

    def pause_seconds(self, held_until: datetime, now: datetime) -> float | None:
        """How long to sleep before looking again; None once the wait is over."""
        remaining_ms = (self.deadline - time.monotonic()) * 1000
        if remaining_ms <= 0:
            return None
        until_expiry_ms = max((held_until - now).total_seconds() * 1000, 1.0)
        jittered_ms = self.next_ms * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not secrecy)
        self.next_ms = min(self.next_ms * 2, POLL_MAX_MS)
        return min(jittered_ms, until_expiry_ms, remaining_ms) / 1000


def _lease(row: RowMapping) -> Lease:
    assert row["expires_at"] is not None, "a released lease is not a lease"
    return Lease(
        name=row["name"],
        owner=row["owner"],
        holder=row["holder"],
        token=row["token"],
        acquired_at=row["acquired_at"],
        expires_at=row["expires_at"],
    )


def _checked_request(name: str, ttl_ms: int, wait_ms: int, holder: str | None) -> str:
    """Refuse a bad acquire before any work; the holder id to use."""
    _check_name(name)
    _check_ttl(ttl_ms)
    if not _is_int(wait_ms) or not 0 <= wait_ms <= WAIT_MAX_MS:
        raise BadRequest(f"wait_ms must be an integer from 0 to {WAIT_MAX_MS}")
    if holder is None:
        return new_id()
    if not isinstance(holder, str) or not 1 <= len(holder) <= HOLDER_MAX:
        raise BadRequest(f"holder must be 1 to {HOLDER_MAX} characters")
    if not _HOLDER_RE.fullmatch(holder):
        raise BadRequest("holder must be letters, digits and . _ : @ -, starting alphanumeric")
    return holder


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX:
        raise BadRequest(f"a lock name is 1 to {NAME_MAX} characters")
    if not _NAME_RE.fullmatch(name):
        raise BadRequest(
            "a lock name is segments of letters, digits, . _ - joined by ':', "
            "each starting alphanumeric"
        )


def _check_ttl(ttl_ms: int) -> None:
    if not _is_int(ttl_ms) or not TTL_MIN_MS <= ttl_ms <= TTL_MAX_MS:
        raise BadRequest(f"ttl_ms must be an integer from {TTL_MIN_MS} to {TTL_MAX_MS}")


def _check_token(token: int) -> None:
    if not _is_int(token) or not 1 <= token <= TOKEN_MAX:
        raise BadRequest(f"a fencing token is an integer from 1 to {TOKEN_MAX}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
