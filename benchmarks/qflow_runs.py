"""Qflow: executions per second of a 3-step event-triggered workflow, and how long an
event waits before its run starts.

    python -m benchmarks.qflow_runs [--events 2000] [--cluster]

A migrated node on each backend runs as it serves: its event bus loop (the outbox relay
and delivery; NATS JetStream on the cluster backend) and the Qflow engine task. One
identity has a workflow triggered by `bench.order.placed` events it takes part in, with
three steps: point a key of theirs at a CID (Qindex), redact the event's note (Qmask),
point a second key at the same CID. The run of each event is created by Qflow's event
handler and executed by the engine, every step recorded.

- Burst: `--events` events committed as fast as one thread can, 50 to a transaction:
  executions/s from the first commit to the last run's end (goal ≥ 200).
- Paced: `--paced` events at `--rate` a second, each its own transaction: the p50/p95 of
  trigger-to-start latency (the event's time to its run's start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.qflow import tables
from anarq.qflow.models import WorkflowIn
from anarq.qflow.service import QflowService
from anarq.qlock import SigningKey
from anarq.squid.didkey import did_from_ed25519
from anarq.squid.models import Registration
from benchmarks._nodes import latency_summary, open_node

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
PER_TX = 50


def _definition() -> dict[str, Any]:
    return {
        "name": "orders",
        "trigger": {"type": "event", "event": "bench.order.placed"},
        "steps": [
            {
                "id": "seen",
                "action": "qindex.point",
                "with": {"key": "orders/{{ trigger.data.n }}/seen", "cid": CID},
            },
            {"id": "clean", "action": "qmask.redact", "with": {"text": "{{ trigger.data.note }}"}},
            {
                "id": "done",
                "action": "qindex.point",
                "with": {"key": "orders/{{ trigger.data.n }}/done", "cid": CID},
            },
        ],
    }


def _publish(node: Node, actor: str, first: int, events: int, per_tx: int = PER_TX) -> None:
    bus = node.kernel.bus
    for start in range(first, first + events, per_tx):
        with node.kernel.db.write() as tx:
            for n in range(start, min(first + events, start + per_tx)):
                bus.publish(
                    tx,
                    "bench.order.placed",
                    {"n": n, "note": f"call me on +44 20 7946 0{n % 1000:03d} about order {n}"},
                    actor=actor,
                )


def _paced(node: Node, actor: str, first: int, events: int, rate: float) -> None:
    """One event every 1/rate seconds, each in its own transaction, as activity comes."""
    start = time.perf_counter()
    for k in range(events):
        time.sleep(max(0.0, start + k / rate - time.perf_counter()))
        _publish(node, actor, first + k, 1, 1)


def _finished(node: Node) -> int:
    r = tables.runs
    with node.kernel.db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).where(r.c.status.in_(("succeeded", "failed")))
            ).scalar_one()
        )


async def _until_finished(node: Node, count: int) -> None:
    deadline = time.perf_counter() + 600
    while time.perf_counter() < deadline:
        if await asyncio.to_thread(_finished, node) >= count:
            return
        await asyncio.sleep(0.05)  # the runs are in the database: poll it


async def _serve(node: Node, actor: str, events: int, paced: int, rate: float) -> dict[str, Any]:
    flows: QflowService = node.service("qflow")
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(node.kernel.bus.run(stop)),
        asyncio.create_task(flows.run_engine(stop)),
    ]
    await asyncio.sleep(0.5)  # both loops up, as on a serving node
    started = time.perf_counter()
    await asyncio.to_thread(_publish, node, actor, 0, events)
    await _until_finished(node, events)
    burst_s = time.perf_counter() - started
    paced_from = node.kernel.clock.now()
    await asyncio.to_thread(_paced, node, actor, events, paced, rate)
    await _until_finished(node, events + paced)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"burst_s": burst_s, "paced_from": paced_from}


def run_backend(backend: str, events: int, paced: int, rate: float) -> dict[str, Any]:
    with open_node(backend) as node:
        key = SigningKey.generate(hybrid=False)
        owner = did_from_ed25519(key.verify_key.ed25519_bytes())
        ctx = Context(actor=Actor(id=owner, kind="identity"))
        node.service("squid").register(ctx, Registration(name="shop"))
        flows: QflowService = node.service("qflow")
        flows.create(ctx, WorkflowIn(definition=_definition()))
        timing = asyncio.run(_serve(node, owner, events, paced, rate))
        r = tables.runs
        with node.kernel.db.read() as conn:
            rows = conn.execute(select(r.c.status, r.c.trigger, r.c.started_at)).all()
        statuses = [row.status for row in rows]
        assert statuses.count("succeeded") == events + paced, {
            s: statuses.count(s) for s in set(statuses)
        }
        waits = []
        for row in rows:
            at = datetime.fromisoformat(json.loads(row.trigger)["time"].replace("Z", "+00:00"))
            if at >= timing["paced_from"] and row.started_at is not None:
                waits.append((row.started_at - at).total_seconds())
        return {
            "burst_events": events,
            "executions_per_s": round(events / timing["burst_s"], 1),
            "steps_per_s": round(3 * events / timing["burst_s"], 1),
            "paced_events": paced,
            "paced_rate_per_s": rate,
            "trigger_to_start": latency_summary(waits, "ms"),
        }


def run(events: int, paced: int, rate: float, cluster: bool) -> dict[str, Any]:
    backends = ["embedded", "cluster"] if cluster else ["embedded"]
    return {
        "benchmark": "qflow_runs",
        "backends": {b: run_backend(b, events, paced, rate) for b in backends},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="The burst, for throughput.")
    parser.add_argument("--paced", type=int, default=200, help="Events at --rate, for latency.")
    parser.add_argument("--rate", type=float, default=10.0, help="Paced events a second.")
    parser.add_argument("--cluster", action="store_true", help="Also on PostgreSQL + NATS.")
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.paced, args.rate, args.cluster), indent=2))


if __name__ == "__main__":
    main()
