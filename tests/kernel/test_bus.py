"""The event bus on both transports: outbox atomicity, once-in-effect delivery, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection

from anarq.kernel.bus import Event, Subscription, pattern_matches
from anarq.kernel.node import Node
from anarq.kernel.tables import dead_letters


class Recorder:
    """A handler that remembers what it saw and can be told to fail a number of times."""

    def __init__(self, failures: int = 0) -> None:
        self.seen: list[str] = []
        self.failures = failures

    def __call__(self, tx: Connection, event: Event) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("handler is down")
        self.seen.append(event.id)


async def drain(
    node: Node, until: Callable[[], bool] = lambda: False, *, rounds: int = 300
) -> None:
    """Work the bus until `until()` holds (or `rounds` run out), letting backoff timers fire."""
    for _ in range(rounds):
        await node.kernel.bus.run_pending()
        if until():
            return
        await asyncio.sleep(0.05)


def publish(node: Node, type: str = "test.thing.happened", **data: object) -> Event:
    with node.kernel.db.write() as tx:
        return node.kernel.bus.publish(tx, type, data, actor="tester")


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("node.profile.updated", "node.profile.updated", True),
        ("node.*.updated", "node.profile.updated", True),
        ("node.>", "node.profile.updated", True),
        (">", "node.profile.updated", True),
        ("node.>", "qdrive.file.stored", False),
        ("node.*", "node.profile.updated", False),
        ("node.profile.updated.more", "node.profile.updated", False),
    ],
)
def test_patterns_match_like_nats_subjects(pattern: str, event_type: str, expected: bool) -> None:
    assert pattern_matches(pattern, event_type) is expected


async def test_committed_event_reaches_its_handler_once(node: Node) -> None:
    recorder = Recorder()
    node.kernel.bus.subscribe(Subscription("test.recorder", "test.>", recorder))
    event = publish(node, n=1)
    await drain(node, lambda: bool(recorder.seen))
    await drain(node, rounds=3)
    assert recorder.seen == [event.id]


async def test_rolled_back_change_publishes_nothing(node: Node) -> None:
    recorder = Recorder()
    node.kernel.bus.subscribe(Subscription("test.recorder", "test.>", recorder))
    with pytest.raises(ValueError), node.kernel.db.write() as tx:
        node.kernel.bus.publish(tx, "test.thing.happened", {})
        raise ValueError("abort")
    await drain(node, rounds=3)
    assert recorder.seen == []


async def test_non_matching_handler_is_not_called(node: Node) -> None:
    recorder = Recorder()
    node.kernel.bus.subscribe(Subscription("test.recorder", "other.>", recorder))
    publish(node)
    await drain(node, rounds=3)
    assert recorder.seen == []


async def test_failing_handler_is_retried_until_it_succeeds(node: Node) -> None:
    recorder = Recorder(failures=2)
    node.kernel.bus.subscribe(Subscription("test.recorder", "test.>", recorder))
    event = publish(node)
    await drain(node, lambda: bool(recorder.seen))
    assert recorder.seen == [event.id]


async def test_handler_that_always_fails_ends_in_dead_letters(node: Node) -> None:
    node.kernel.bus.max_attempts = 3
    recorder = Recorder(failures=1000)
    node.kernel.bus.subscribe(Subscription("test.recorder", "test.>", recorder))
    event = publish(node)

    def buried() -> bool:
        with node.kernel.db.read() as conn:
            return conn.execute(select(dead_letters)).first() is not None

    await drain(node, buried)
    await drain(node, rounds=3)
    with node.kernel.db.read() as conn:
        rows = conn.execute(select(dead_letters)).mappings().all()
    assert [(row["event_id"], row["subscription"], row["attempts"]) for row in rows] == [
        (event.id, "test.recorder", 3)
    ]
    assert "handler is down" in rows[0]["error"]
    assert recorder.failures == 1000 - 3


async def test_redelivered_event_has_effect_once(node: Node) -> None:
    recorder = Recorder()
    subscription = Subscription("test.recorder", "test.>", recorder)
    node.kernel.bus.subscribe(subscription)
    event = publish(node)
    await drain(node, lambda: bool(recorder.seen))
    assert node.kernel.bus.deliver(subscription, event) is False
    assert recorder.seen == [event.id]


async def test_handler_effects_roll_back_with_its_failure(node: Node) -> None:
    """A handler that writes and then fails leaves no write behind and is retried."""
    from anarq.node.tables import activity

    calls = {"n": 0}
    activity_handler = node.service("node").record_activity

    def flaky(tx: Connection, event: Event) -> None:
        calls["n"] += 1
        activity_handler(tx, event)
        if calls["n"] == 1:
            raise RuntimeError("fail after writing")

    node.kernel.bus.subscribe(Subscription("test.flaky", "test.>", flaky))
    publish(node)
    await drain(node, lambda: calls["n"] >= 2)
    await drain(node, rounds=3)
    with node.kernel.db.read() as conn:
        rows = conn.execute(select(activity.c.event_type, activity.c.count)).all()
    # node.record_activity counted it once; the flaky copy counted it once more, after its retry.
    assert dict(rows) == {"test.thing.happened": 2}
    assert calls["n"] == 2


async def test_many_events_all_arrive_in_order_of_publication(node: Node) -> None:
    recorder = Recorder()
    node.kernel.bus.subscribe(Subscription("test.recorder", "test.>", recorder))
    events = [publish(node, n=i) for i in range(50)]
    await drain(node, lambda: len(recorder.seen) >= 50)
    assert recorder.seen == [event.id for event in events]


async def test_prune_forgets_only_what_is_done_and_old(node: Node) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from anarq.kernel import tables

    recorder = Recorder()
    node.kernel.bus.subscribe(Subscription("test.recorder", "test.>", recorder))
    first = publish(node, n=1)
    await drain(node, lambda: first.id in recorder.seen)

    def count(table: object) -> int:
        with node.kernel.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    outbox_before, consumed_before = count(tables.outbox), count(tables.consumed)
    assert outbox_before >= 1 and consumed_before >= 1
    # Nothing is old enough yet.
    assert node.kernel.bus.prune(timedelta(hours=1)) == {"outbox": 0, "consumed": 0}
    # With a cut-off in the future, everything already handled goes.
    pruned = node.kernel.bus.prune(timedelta(seconds=-1))
    assert pruned["outbox"] == outbox_before and pruned["consumed"] == consumed_before
    assert count(tables.outbox) == 0 and count(tables.consumed) == 0
    second = publish(node, n=2)
    await drain(node, lambda: second.id in recorder.seen)
    assert recorder.seen.count(second.id) == 1
