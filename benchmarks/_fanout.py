"""Shared by the chat fan-out benchmarks: who sits in which room, the paced sender, and the
tally of deliveries (latency, losses, order) that both systems are measured with.

A message's body carries its id, its sender and its send time (`time.perf_counter_ns()` in this
process, taken just before the request goes out); a receipt is timed against it. Every
member of a room other than the sender is expected to receive every message sent to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._nodes import latency_summary

BODY_PREFIX = "fanout"
SETUP_CONCURRENCY = 16
SEED = 2026


def members_by_room(clients: int, rooms: int) -> list[list[int]]:
    """Client i sits in room i % rooms; the first member of each room creates it."""
    assert clients >= 2 * rooms, "every room needs at least two members"
    return [list(range(room, clients, rooms)) for room in range(rooms)]


def message_body(message_id: int, sender: int) -> str:
    return f"{BODY_PREFIX} {message_id} {sender} {time.perf_counter_ns()}"


def parse_body(body: Any) -> tuple[int, int, int] | None:
    """(message id, sender, send time in ns) of a benchmark message; None for anything else."""
    if not isinstance(body, str) or not body.startswith(BODY_PREFIX):
        return None
    _, message_id, sender, sent_ns = body.split()
    return int(message_id), int(sender), int(sent_ns)


@dataclass
class Tally:
    """What was sent to whom and what each client received, in order."""

    rooms: list[list[int]]
    sent: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (room, sender)
    send_seconds: list[float] = field(default_factory=list)
    send_errors: int = 0
    latencies_s: list[float] = field(default_factory=list)
    received: dict[tuple[int, int], list[int]] = field(
        default_factory=lambda: defaultdict(list)
    )  # (client, room) -> message ids in the order they arrived
    receipts: set[tuple[int, int]] = field(default_factory=set)  # (message id, client)
    arrived: int = 0  # receipts by others than the sender, sent or not
    awaited: int = 0  # once sending is over: the receipts `complete` waits for
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    duplicates: int = 0
    seq_gaps: int = 0
    seq_backwards: int = 0
    disconnects: int = 0
    truncated_syncs: int = 0
    first_send_ns: int = 0
    last_receipt_ns: int = 0

    def expected(self) -> int:
        return sum(len(self.rooms[room]) - 1 for room, _ in self.sent.values())

    def receive(self, client: int, room: int, body: Any) -> None:
        """Record one message arriving at `client`; its own messages count for order only."""
        parsed = parse_body(body)
        if parsed is None:
            return
        now = time.perf_counter_ns()
        message_id, sender, sent_ns = parsed
        self.received[(client, room)].append(message_id)
        if (message_id, client) in self.receipts:
            self.duplicates += 1
            return
        self.receipts.add((message_id, client))
        if sender == client:
            return
        self.arrived += 1
        if self.arrived >= self.awaited > 0:
            self.complete.set()
        self.latencies_s.append((now - sent_ns) / 1e9)
        self.last_receipt_ns = now

    def check_seq(self, last: int | None, seq: int) -> int:
        """Count a per-room seq that is not the next one; the seq to remember."""
        if last is not None and seq > last + 1:
            self.seq_gaps += 1
        elif last is not None and seq <= last:
            self.seq_backwards += 1
            return last
        return seq

    def disordered(self) -> int:
        """Clients whose order of a room's messages differs from the room's most common one."""
        by_room: dict[int, list[tuple[int, ...]]] = defaultdict(list)
        for (_, room), ids in self.received.items():
            by_room[room].append(tuple(ids))
        count = 0
        for orders in by_room.values():
            _, agreeing = Counter(orders).most_common(1)[0]
            count += len(orders) - agreeing
        return count

    def delivered(self) -> int:
        return sum(1 for m, client in self.receipts if m in self.sent and self.sent[m][1] != client)

    def summary(self, seconds: float) -> dict[str, Any]:
        expected, delivered = self.expected(), self.delivered()
        window_s = max(1e-9, (self.last_receipt_ns - self.first_send_ns) / 1e9)
        figures: dict[str, Any] = {
            "messages_sent": len(self.sent),
            "send_errors": self.send_errors,
            "messages_per_second_sent": round(len(self.sent) / seconds, 1),
            "deliveries_expected": expected,
            "deliveries": delivered,
            "lost": expected - delivered,
            "duplicates": self.duplicates,
            "clients_out_of_order": self.disordered(),
            "seq_gaps": self.seq_gaps,
            "seq_backwards": self.seq_backwards,
            "disconnects": self.disconnects,
            "truncated_syncs": self.truncated_syncs,
            "deliveries_per_second": round(delivered / window_s, 1),
        }
        if self.latencies_s:
            figures["fanout_latency"] = latency_summary(self.latencies_s, "ms")
        if self.send_seconds:
            figures["send_latency"] = latency_summary(self.send_seconds, "ms")
        return figures


Post = Callable[[int, int, str], Awaitable[None]]  # (room, sender, body)


async def send_paced(tally: Tally, post: Post, rate: float, seconds: float, seed: int) -> None:
    """Send `rate` messages/s for `seconds`, open loop: a slow answer does not delay the next.

    Message n goes to room n % rooms from one of its members chosen at random."""
    chooser = random.Random(seed)
    total = int(rate * seconds)
    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    tally.first_send_ns = time.perf_counter_ns()

    async def one(message_id: int, room: int, sender: int) -> None:
        body = message_body(message_id, sender)
        began = time.perf_counter()
        try:
            await post(room, sender, body)
        except Exception:
            tally.send_errors += 1
            return
        tally.send_seconds.append(time.perf_counter() - began)
        tally.sent[message_id] = (room, sender)

    for message_id in range(total):
        delay = started + message_id / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        room = message_id % len(tally.rooms)
        sender = chooser.choice(tally.rooms[room])
        tasks.append(asyncio.create_task(one(message_id, room, sender)))
    await asyncio.gather(*tasks)


async def drain(tally: Tally, seconds: float) -> None:
    """Wait until every expected delivery is in, or `seconds` have passed."""
    tally.awaited = tally.expected()
    if tally.arrived < tally.awaited:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.complete.wait(), seconds)


async def bounded(count: int, make: Callable[[int], Awaitable[Any]]) -> list[Any]:
    """`make(i)` for i in range(count), at most SETUP_CONCURRENCY at a time, in order."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(index: int) -> Any:
        async with gate:
            return await make(index)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int, field_name: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


@dataclass(frozen=True)
class Load:
    rate: float  # messages/s, all rooms together
    seconds: float  # of sending
    drain_seconds: float  # after sending, for the last deliveries; later ones count as lost


async def measure(tally: Tally, post: Post, pid: int, load: Load) -> dict[str, Any]:
    """Send at the load's rate, wait for the stragglers; the tally's figures and CPU."""
    server_cpu, client_cpu = cpu_seconds(pid), _own_cpu_seconds()
    started = time.perf_counter()
    await send_paced(tally, post, load.rate, load.seconds, SEED)
    sending = time.perf_counter() - started
    server_cpu, client_cpu = cpu_seconds(pid) - server_cpu, _own_cpu_seconds() - client_cpu
    await drain(tally, load.drain_seconds)
    figures = tally.summary(load.seconds)
    figures["server_cpu_percent_while_sending"] = round(100 * server_cpu / sending, 1)
    figures["client_cpu_percent_while_sending"] = round(100 * client_cpu / sending, 1)
    return figures


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
