"""NATS JetStream transport: the cluster-mode event bus.

One stream per node (`ANARQ_<CLUSTER>`) holds subjects `anarq.<cluster>.events.<type>`.
Every subscription is a durable pull consumer named after it, shared by all
workers of the node: JetStream hands each event to one of them. Publishing
sets `Nats-Msg-Id` to the event id, so two workers relaying the same outbox row
store it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import nats
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from anarq.kernel.bus.envelope import Event, Subscription
from anarq.kernel.errors import BackendUnavailable

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

    from anarq.kernel.bus import EventBus

log = logging.getLogger("anarq.bus.nats")

# nats-py raises its own TimeoutError from most waits but the builtin one from a pull whose
# deadline ran out between its two requests; both mean "nothing arrived in time".
FETCH_TIMEOUTS = (NatsTimeout, TimeoutError)

CONNECT_TIMEOUT_SECONDS = 3
FETCH_BATCH = 64
FETCH_WAIT_SECONDS = 1.0
# `run_pending` asks each consumer once without blocking for long.
PASS_WAIT_SECONDS = 0.05
ACK_WAIT_SECONDS = 60
STREAM_MAX_AGE_SECONDS = 7 * 24 * 3600
DEDUP_WINDOW_SECONDS = 10 * 60


class NatsTransport:
    kind = "nats"

    def __init__(self, url: str, *, cluster: str) -> None:
        self.url = url
        self.stream = f"ANARQ_{cluster.upper()}"
        self.prefix = f"anarq.{cluster}.events"
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._bus: EventBus | None = None
        self._pulls: dict[str, JetStreamContext.PullSubscription] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._closing = False

    # Lifecycle -------------------------------------------------------------------

    async def connect(self, *, ensure_stream: bool = True) -> None:
        if self._nc is not None:
            return
        self._closing = False
        try:
            # Reconnect forever once connected, but fail fast on the first connect:
            # the client would otherwise retry an unreachable server forever.
            self._nc = await asyncio.wait_for(
                nats.connect(
                    self.url,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    name="anarq",
                    error_cb=_log_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=_log_reconnected,
                ),
                timeout=CONNECT_TIMEOUT_SECONDS * 2,
            )
        except TimeoutError:
            raise BackendUnavailable(f"event bus unreachable at {self.url}: timed out") from None
        except (NatsError, OSError) as exc:
            raise BackendUnavailable(f"event bus unreachable at {self.url}: {exc}") from None
        self._js = self._nc.jetstream()
        if ensure_stream:
            await self._ensure_stream()

    async def start(self, bus: EventBus, *, consume: bool = True) -> None:
        self._bus = bus
        await self.connect()
        for subscription in bus.subscriptions.values():
            self._pulls[subscription.name] = await self._pull_for(subscription)
        if consume:
            self._stopping.clear()
            for name in self._pulls:
                self._tasks.append(asyncio.create_task(self._consume_forever(name)))

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._pulls.clear()
        if self._nc is not None:
            # close(), not drain(): pull subscriptions with a fetch in flight make
            # drain() wait out its whole timeout, and every ack is already sent.
            self._closing = True
            await self._nc.close()
            self._nc = None
            self._js = None

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("event bus disconnected; reconnecting")

    async def ping(self) -> None:
        if self._nc is None:
            await self.connect()
        assert self._nc is not None
        try:
            await self._nc.flush(timeout=2)
        except (NatsError, TimeoutError) as exc:
            raise BackendUnavailable(f"event bus unreachable at {self.url}: {exc}") from None

    async def delete_stream(self) -> None:
        """Remove this node's stream and consumers (tests and `anarq events reset`); the
        connection made for it is closed. A stream that is not there is not made first."""
        await self.connect(ensure_stream=False)
        assert self._js is not None
        try:
            with contextlib.suppress(NotFoundError):
                await self._js.delete_stream(self.stream)
        finally:
            await self.stop()

    # Relay -----------------------------------------------------------------------

    async def relay(self, rows: list[Mapping[str, Any]]) -> None:
        bus, js = self._require()
        acks = [
            js.publish(
                f"{self.prefix}.{row['envelope']['type']}",
                json.dumps(row["envelope"], separators=(",", ":")).encode(),
                stream=self.stream,
                headers={"Nats-Msg-Id": row["envelope"]["id"]},
            )
            for row in rows
        ]
        await asyncio.gather(*acks)

        def mark() -> None:
            with bus.db.write() as tx:
                bus.mark_dispatched(tx, [row["seq"] for row in rows])

        await asyncio.to_thread(mark)

    # Consuming -------------------------------------------------------------------

    async def work(self) -> int:
        """One non-blocking pass over every consumer (for `run_pending`)."""
        if self._tasks:
            return 0
        handled = 0
        for name in self._pulls:
            handled += await self._fetch_and_handle(name, wait_seconds=PASS_WAIT_SECONDS)
        return handled

    async def _consume_forever(self, name: str) -> None:
        while not self._stopping.is_set():
            try:
                await self._fetch_and_handle(name, wait_seconds=FETCH_WAIT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer %s failed; retrying", name)
                await asyncio.sleep(1)

    async def _fetch_and_handle(self, name: str, *, wait_seconds: float) -> int:
        """Wait up to `wait_seconds` for one event, then take what else is ready at once.

        A single-message pull returns the moment an event arrives; a batch pull
        would hold the first event until its whole wait expired.
        """
        pull = self._pulls[name]
        try:
            messages = await pull.fetch(1, timeout=wait_seconds)
        except FETCH_TIMEOUTS:
            return 0
        handled = 0
        while messages:
            for message in messages:
                await self._handle(name, message)
            handled += len(messages)
            try:
                messages = await pull.fetch(FETCH_BATCH, timeout=PASS_WAIT_SECONDS)
            except FETCH_TIMEOUTS:
                break
        return handled

    async def _handle(self, name: str, message: Msg) -> None:
        bus, _ = self._require()
        subscription = bus.subscriptions[name]
        envelope = json.loads(message.data)
        attempts = message.metadata.num_delivered
        try:
            await asyncio.to_thread(bus.deliver, subscription, Event.from_envelope(envelope))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("handler %s failed on %s: %s", name, envelope.get("id"), error)
            if attempts >= bus.max_attempts:

                def bury() -> None:
                    with bus.db.write() as tx:
                        bus.dead_letter(tx, name, envelope, attempts, error)

                await asyncio.to_thread(bury)
                await message.term()
            else:
                await message.nak(delay=bus.backoff(attempts).total_seconds())
            return
        await message.ack()

    # Setup -------------------------------------------------------------------------

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}.>"],
            max_age=STREAM_MAX_AGE_SECONDS,
            duplicate_window=DEDUP_WINDOW_SECONDS,
        )
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(config)

    async def _pull_for(self, subscription: Subscription) -> JetStreamContext.PullSubscription:
        _, js = self._require()
        durable = subscription.name.replace(".", "_")
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW,
            ack_wait=ACK_WAIT_SECONDS,
            filter_subject=f"{self.prefix}.{subscription.pattern}",
        )
        return await js.pull_subscribe(
            config.filter_subject or "", durable=durable, stream=self.stream, config=config
        )

    def _require(self) -> tuple[EventBus, JetStreamContext]:
        assert self._bus is not None and self._js is not None, "transport used before start()"
        return self._bus, self._js


async def _log_error(exc: Exception) -> None:
    # The client reports every failed (re)connect attempt; one line each, no traceback.
    log.debug("nats: %s", exc)


async def _log_reconnected() -> None:
    log.warning("event bus reconnected")
