"""Event bus with a transactional outbox.

`publish(tx, …)` writes the event into `kernel_outbox` inside the caller's
transaction, so an event exists exactly when the change it announces does.
A relay moves outbox rows to the transport:

- `memory://` (embedded): one delivery row per matching subscription, kept in
  the database and worked off by the node's background loop.
- `nats://` (cluster): JetStream, one durable consumer per subscription, shared
  by every worker of the node, so each event is handled by one worker.

Delivery is at least once. Each handler runs in a write transaction that first
records `(subscription, event id)` as consumed: a repeat delivery finds the row
and does nothing, so effects happen exactly once. A failing handler is retried
with exponential backoff; after `bus_max_attempts` the event goes to the
dead-letter table with the last error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.engine import Connection

from anarq.kernel import tables
from anarq.kernel.bus.envelope import EVENT_TYPE_RE, Event, Handler, Subscription, pattern_matches
from anarq.kernel.clock import Clock
from anarq.kernel.db import Database, insert_ignore
from anarq.kernel.ids import new_id

__all__ = ["Event", "EventBus", "Handler", "Subscription", "pattern_matches"]

log = logging.getLogger("anarq.bus")

RELAY_BATCH = 256
DELIVERY_BATCH = 64
ERROR_TEXT_MAX = 2000
# A claimed delivery is not handed out again for this long; a worker that died
# holding it releases it by timing out.
DELIVERY_LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=30)


class Transport(Protocol):
    kind: str

    async def start(self, bus: EventBus, *, consume: bool = True) -> None: ...

    async def relay(self, rows: list[Mapping[str, Any]]) -> None: ...

    async def work(self) -> int: ...

    async def ping(self) -> None: ...

    async def stop(self) -> None: ...


class EventBus:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        transport: Transport,
        *,
        max_attempts: int = 8,
        retry_base_ms: int = 500,
        poll_ms: int = 500,
    ) -> None:
        self.db = db
        self.clock = clock
        self.transport = transport
        self.max_attempts = max_attempts
        self.retry_base = timedelta(milliseconds=retry_base_ms)
        self.poll_seconds = poll_ms / 1000
        self.subscriptions: dict[str, Subscription] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        db.on_commit(self._notify)

    # Publishing ----------------------------------------------------------------

    def publish(
        self,
        tx: Connection,
        type: str,
        data: Mapping[str, Any] | None = None,
        *,
        actor: str | None = None,
        subject: str | None = None,
        correlation_id: str | None = None,
    ) -> Event:
        """Record an event in the caller's transaction; it is dispatched after commit."""
        assert EVENT_TYPE_RE.match(type), f"event type {type!r} is not <module>.<thing>.<verb>"
        event = Event(
            id=new_id(),
            type=type,
            time=self.clock.now(),
            data=dict(data or {}),
            actor=actor,
            subject=subject,
            correlation_id=correlation_id,
        )
        tx.execute(
            insert(tables.outbox).values(
                id=event.id, type=event.type, envelope=event.envelope(), created_at=event.time
            )
        )
        return event

    def subscribe(self, subscription: Subscription) -> None:
        assert subscription.name not in self.subscriptions, f"{subscription.name} subscribed twice"
        self.subscriptions[subscription.name] = subscription

    # Consuming -------------------------------------------------------------------

    def deliver(self, subscription: Subscription, event: Event) -> bool:
        """Run one handler for one event, once in effect. False if it had already run,
        or its subscription does not want events of this type now."""
        if subscription.wants is not None and not subscription.wants(event.type):
            return False
        with self.db.write() as tx:
            first_time = insert_ignore(
                tx,
                tables.consumed,
                {
                    "subscription": subscription.name,
                    "event_id": event.id,
                    "consumed_at": self.clock.now(),
                },
            )
            if first_time:
                subscription.handle(tx, event)
        return first_time

    def prune(self, older_than: timedelta) -> dict[str, int]:
        """Forget what is done and old: dispatched outbox rows no delivery still needs,
        and consumed-event ids (the idempotency record) older than `older_than`.

        Keep `older_than` well past the longest redelivery (the backoff over
        `max_attempts`): an id forgotten too early could be consumed twice.
        """
        cutoff = self.clock.now() - older_than
        o, d, c = tables.outbox, tables.deliveries, tables.consumed
        with self.db.write() as tx:
            outbox = tx.execute(
                delete(o).where(
                    o.c.dispatched_at.is_not(None),
                    o.c.dispatched_at < cutoff,
                    ~exists().where(d.c.event_id == o.c.id),
                )
            ).rowcount
            consumed = tx.execute(delete(c).where(c.c.consumed_at < cutoff)).rowcount
        return {"outbox": outbox, "consumed": consumed}

    def backoff(self, attempts: int) -> timedelta:
        """Delay before attempt `attempts + 1`: doubling from the base, capped."""
        delay: timedelta = self.retry_base * (2 ** max(0, attempts - 1))
        return min(delay, MAX_BACKOFF)

    def dead_letter(
        self, tx: Connection, name: str, envelope: Mapping[str, Any], attempts: int, error: str
    ) -> None:
        tx.execute(
            insert(tables.dead_letters).values(
                subscription=name,
                event_id=envelope["id"],
                envelope=dict(envelope),
                attempts=attempts,
                error=error[:ERROR_TEXT_MAX],
                failed_at=self.clock.now(),
            )
        )
        log.error("event %s dead-lettered for %s after %d attempts", envelope["id"], name, attempts)

    # Relay -------------------------------------------------------------------------

    def pending(self, limit: int = RELAY_BATCH) -> list[Mapping[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(tables.outbox.c.seq, tables.outbox.c.envelope)
                .where(tables.outbox.c.dispatched_at.is_(None))
                .order_by(tables.outbox.c.seq)
                .limit(limit)
            ).mappings()
            return [dict(row) for row in rows]

    def mark_dispatched(self, tx: Connection, seqs: list[int]) -> None:
        tx.execute(
            update(tables.outbox)
            .where(tables.outbox.c.seq.in_(seqs), tables.outbox.c.dispatched_at.is_(None))
            .values(dispatched_at=self.clock.now())
        )

    async def relay_once(self) -> int:
        """Hand every undispatched outbox row to the transport; returns how many."""
        rows = await asyncio.to_thread(self.pending)
        if rows:
            await self.transport.relay(rows)
        return len(rows)

    async def start(self, *, consume: bool = True) -> None:
        """Connect the transport; with `consume`, background consumers start too."""
        if not self._started:
            await self.transport.start(self, consume=consume)
            self._started = True

    async def stop(self) -> None:
        if self._started:
            await self.transport.stop()
            self._started = False

    async def run_pending(self) -> int:
        """Relay and work until nothing is due now. For tests, the CLI and shutdown."""
        await self.start(consume=False)
        total = 0
        while True:
            relayed = await self.relay_once()
            worked = await self.transport.work()
            total += worked
            if not relayed and not worked:
                return total

    # Background loop ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Relay and consume until `stop` is set; wakes at once after each commit."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await self.start()
        try:
            while not stop.is_set():
                try:
                    busy = await self.relay_once() + await self.transport.work()
                except Exception:
                    log.exception("event bus loop failed; retrying")
                    busy = 0
                if busy:
                    continue
                self._wake.clear()
                waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
                await asyncio.wait(
                    waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in waiters:
                    waiter.cancel()
        finally:
            await self.stop()
            self._loop = None

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def ping(self) -> None:
        await self.transport.ping()

    def matching(self, event_type: str) -> Iterator[Subscription]:
        for subscription in self.subscriptions.values():
            if subscription.matches(event_type):
                yield subscription


class MemoryTransport:
    """Deliveries queued in the database and worked off by this process."""

    kind = "memory"

    def __init__(self) -> None:
        self._bus: EventBus | None = None

    @property
    def bus(self) -> EventBus:
        assert self._bus is not None, "transport used before start()"
        return self._bus

    async def start(self, bus: EventBus, *, consume: bool = True) -> None:
        self._bus = bus

    async def relay(self, rows: list[Mapping[str, Any]]) -> None:
        await asyncio.to_thread(self._enqueue, rows)

    def _enqueue(self, rows: list[Mapping[str, Any]]) -> None:
        bus = self.bus
        now = bus.clock.now()
        with bus.db.write() as tx:
            for row in rows:
                envelope = row["envelope"]
                for subscription in bus.matching(envelope["type"]):
                    tx.execute(
                        insert(tables.deliveries).values(
                            subscription=subscription.name,
                            event_id=envelope["id"],
                            attempts=0,
                            next_attempt_at=now,
                        )
                    )
            bus.mark_dispatched(tx, [row["seq"] for row in rows])

    async def work(self) -> int:
        return await asyncio.to_thread(self.work_due)

    def work_due(self) -> int:
        """Attempt every delivery that is due; returns how many were attempted."""
        claimed = self._claim()
        for delivery in claimed:
            self._attempt(delivery)
        return len(claimed)

    def _claim(self) -> list[dict[str, Any]]:
        bus = self.bus
        now = bus.clock.now()
        d, o = tables.deliveries, tables.outbox
        query = (
            select(d.c.seq, d.c.subscription, d.c.attempts, o.c.envelope)
            .join(o, o.c.id == d.c.event_id)
            .where(d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at, d.c.seq)
            .limit(DELIVERY_BATCH)
        )
        if bus.db.dialect == "postgresql":
            query = query.with_for_update(of=d, skip_locked=True)
        with bus.db.write() as tx:
            claimed = [dict(row) for row in tx.execute(query).mappings()]
            if claimed:
                tx.execute(
                    update(d)
                    .where(d.c.seq.in_([row["seq"] for row in claimed]))
                    .values(next_attempt_at=now + DELIVERY_LEASE)
                )
        return claimed

    def _attempt(self, delivery: Mapping[str, Any]) -> None:
        bus = self.bus
        d = tables.deliveries
        subscription = bus.subscriptions.get(delivery["subscription"])
        envelope = delivery["envelope"]
        error: str | None = None
        if subscription is None:
            error = f"no subscription named {delivery['subscription']} in this node"
        else:
            try:
                bus.deliver(subscription, Event.from_envelope(envelope))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("handler %s failed on %s: %s", subscription.name, envelope["id"], error)
        attempts = delivery["attempts"] + 1
        with bus.db.write() as tx:
            if error is None:
                tx.execute(delete(d).where(d.c.seq == delivery["seq"]))
            elif attempts >= bus.max_attempts:
                tx.execute(delete(d).where(d.c.seq == delivery["seq"]))
                bus.dead_letter(tx, delivery["subscription"], envelope, attempts, error)
            else:
                tx.execute(
                    update(d)
                    .where(d.c.seq == delivery["seq"])
                    .values(
                        attempts=attempts,
                        next_attempt_at=bus.clock.now() + bus.backoff(attempts),
                        last_error=error[:ERROR_TEXT_MAX],
                    )
                )

    async def ping(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def open_transport(url: str, *, cluster: str) -> Transport:
    if url.startswith(("nats://", "tls://")):
        from anarq.kernel.bus.nats import NatsTransport

        return NatsTransport(url, cluster=cluster)
    return MemoryTransport()
