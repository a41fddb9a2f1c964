"""Qmail: messages sent and delivered on one node, and the delivery latency.

    python -m benchmarks.qmail_send [--messages 500] [--senders 4] [--cluster]

A real `anarq up` node and signed SDK clients: each sender (a hybrid identity) signs,
seals (to the recipient and itself) and sends messages of a 2 KiB body to one recipient;
the node checks, stores the envelope, writes the mailbox entries and a signed delivery
receipt, and publishes the event, all before it answers. Latency is per message, from
the start of sealing on the client to the node's answer (the message is then in the
recipient's mailbox). Recipient keys are fetched once per sender, as a client caches them.
Figures: messages/s over the whole run, p50/p95 delivery latency in ms.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anarq.kernel.clock import rfc3339
from anarq.qlock import RecipientKey, SigningKey
from anarq.qmail.envelope import compose, seal_message
from anarq.sdk import Client
from anarq.sdk.signing import RequestSigner
from benchmarks.http_overhead import cluster_env, drop_database, free_port, start_node

BODY = "lorem ipsum dolor sit amet " * 76  # about 2 KiB


def register(url: str, hybrid: bool) -> Client:
    signer = RequestSigner.for_key(SigningKey.generate(hybrid=hybrid))
    client = Client(url, signer=signer, timeout_seconds=60)
    public = base64.b64encode(signer.key.verify_key.to_bytes()).decode()
    client.request("POST", "/squid/identities", json={"name": "bench", "public_key": public})
    return client


def recipient_key(client: Client, did: str) -> RecipientKey:
    found = client.request("GET", f"/qmail/keys/{did}")
    return RecipientKey.from_bytes(base64.b64decode(found["recipient_key"]))


def send_many(client: Client, recipient: str, count: int) -> list[float]:
    """Send `count` messages; the latency of each, in seconds."""
    assert client.signer is not None
    readers = [recipient_key(client, client.signer.did), recipient_key(client, recipient)]
    latencies = []
    for n in range(count):
        started = time.perf_counter()
        message = compose(
            sender=client.signer.did,
            to=[recipient],
            subject=f"benchmark {n}",
            body=BODY,
            sent_at=rfc3339(datetime.now(UTC)),
        )
        sealed = seal_message(client.signer.key, message, readers)
        envelope = base64.urlsafe_b64encode(sealed).decode()
        client.request("POST", "/qmail/messages", json={"to": [recipient], "envelope": envelope})
        latencies.append(time.perf_counter() - started)
    return latencies


def run_backend(backend: str, messages: int, senders: int, work: Path) -> dict[str, Any]:
    env, database = cluster_env() if backend == "cluster" else ({}, "")
    data_dir = work / f"node-{backend}"
    port = free_port()
    node = start_node(port, env, data_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        recipient = register(url, hybrid=True)
        assert recipient.signer is not None
        clients = [register(url, hybrid=True) for _ in range(senders)]
        share = [messages // senders + (1 if i < messages % senders else 0) for i in range(senders)]
        started = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            runs = list(
                pool.map(
                    lambda pair: send_many(pair[0], recipient.signer.did, pair[1]),  # type: ignore[union-attr]
                    zip(clients, share, strict=True),
                )
            )
        elapsed = time.perf_counter() - started
        delivered, before = 0, None
        while True:
            params: dict[str, Any] = {"folder": "requests", "limit": 200}
            if before:
                params["before"] = before
            page = recipient.request("GET", "/qmail/messages", params=params)
            delivered += len(page["messages"])
            before = page["next"]
            if before is None:
                break
        for client in [recipient, *clients]:
            client.close()
    finally:
        node.terminate()
        node.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    if database:
        drop_database(database)
    latencies = sorted(ms * 1000 for run in runs for ms in run)
    return {
        "messages": messages,
        "delivered": delivered,
        "messages_per_second": round(messages / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies), 1),
        "latency_p95_ms": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    backends = ["embedded", "cluster"] if args.cluster else ["embedded"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        results = {
            "benchmark": "qmail_send",
            "senders": args.senders,
            "body_bytes": len(BODY.encode()),
            "cpus": os.cpu_count(),
            "backends": {
                b: run_backend(b, args.messages, args.senders, Path(work)) for b in backends
            },
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
