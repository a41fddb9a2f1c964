"""Qchat fan-out: many WebSocket clients in many rooms, messages at a fixed rate; the same
load against Matrix Synapse in the same run.

    python -m benchmarks.qchat_fanout [--clients 1000] [--rooms 50] [--rate 100]
                                      [--seconds 30] [--drain-seconds 15]
                                      [--cluster] [--no-synapse]

AnarQ&Q: a real `anarq up` node (core 0, embedded; `--cluster` adds PostgreSQL + NATS).
The client process (core 1) registers `--clients` identities, signs each in for a session,
creates `--rooms` public plain rooms (message text in clear on the node, as `--plain`) and
joins client i to room i % rooms. It opens one WebSocket per client (`/qchat/ws`, the
session on the handshake), subscribes it to its room from the room's last seq, then sends
`--rate` messages/s for `--seconds` (open loop: signed `POST /qchat/rooms/{id}/messages`,
each from a random member of the room; room n % rooms for message n). Each body carries
the send time; fan-out latency runs from just before the POST to each other member's
receipt on its WebSocket. Every client checks that its room's seqs arrive contiguous.

Matrix Synapse (needs `pip install matrix-synapse` in the same venv; not a project
dependency): a homeserver generated for the run, SQLite, loopback only, core 0, rate
limits lifted and presence off, bcrypt at its cheapest (registration only). Users are
registered with the shared secret, the first of each room creates it (public_chat) and
the rest join. Synapse has no WebSocket: each client long-polls `/sync` (keeping its
`since` token; filter: messages only, no presence, ephemeral or account data), and
messages are sent with `PUT /rooms/{id}/send/m.room.message/{txnId}`. Same rooms, same
rate, same figures. Order is checked as "every member of a room saw the same order".

Figures per system: deliveries/s, p50/p95/p99/max fan-out latency (goal p99 < 100 ms),
lost, duplicated and out-of-order deliveries, the server's RSS before and after the
connections open and its peak (VmHWM), its CPU use while sending, and the client
process's. Ratios in the same run: throughput AnarQ&Q ÷ Synapse, latency Synapse ÷ AnarQ&Q.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from anarq.qlock import SigningKey, encode_signature, sign
from anarq.sdk.signing import RequestSigner
from benchmarks import _synapse
from benchmarks._fanout import (
    Load,
    Tally,
    bounded,
    measure,
    members_by_room,
    memory_mib,
)
from benchmarks.http_overhead import cluster_env, drop_database, free_port, start_node

SEND_CONNECTIONS = 64


async def signed(
    http: httpx.AsyncClient, signer: RequestSigner, method: str, path: str, **kwargs: Any
) -> Any:
    request = http.build_request(method, path, **kwargs)
    signer.sign(request)
    response = await http.send(request)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    return response.json() if response.content else None


async def sign_up(http: httpx.AsyncClient, index: int) -> tuple[RequestSigner, str]:
    """A new identity and a session token for it."""
    signer = RequestSigner.for_key(SigningKey.generate(hybrid=False))
    public = base64.b64encode(signer.key.verify_key.to_bytes()).decode()
    await signed(
        http, signer, "POST", "/squid/identities", json={"name": f"b{index}", "public_key": public}
    )
    challenge = (await http.get("/squid/sessions/challenge")).json()
    signature = encode_signature(sign(signer.key, challenge["sign"].encode()))
    opened = await http.post(
        "/squid/sessions",
        json={"did": signer.did, "challenge": challenge["challenge"], "signature": signature},
    )
    opened.raise_for_status()
    return signer, str(opened.json()["token"])


async def subscribe(url: str, token: str, room_id: str, after: int) -> tuple[ClientConnection, int]:
    """An open WebSocket subscribed to one room from `after`, caught up."""
    socket = await connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=120,
        ping_interval=None,
        max_queue=None,
    )
    assert json.loads(await socket.recv())["type"] == "ready"
    await socket.send(json.dumps({"type": "subscribe", "rooms": {room_id: after}}))
    while (frame := json.loads(await socket.recv()))["type"] != "caught_up":
        assert frame["type"] != "error", frame
    return socket, int(frame["seq"])


async def read_events(
    tally: Tally, socket: ClientConnection, client: int, room: int, last: int
) -> None:
    seq: int | None = last
    try:
        async for raw in socket:
            frame = json.loads(raw)
            if frame["type"] != "event":
                continue
            event = frame["event"]
            seq = tally.check_seq(seq, event["seq"])
            if event["kind"] == "message":
                tally.receive(client, room, event["body"])
    except ConnectionClosed:
        tally.disconnects += 1


async def load_anarq(url: str, pid: int, clients: int, rooms: int, load: Load) -> dict[str, Any]:
    layout = members_by_room(clients, rooms)
    tally = Tally(layout)
    limits = httpx.Limits(max_connections=SEND_CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        started = time.perf_counter()
        people = await bounded(clients, lambda i: sign_up(http, i))
        owners = [people[members[0]][0] for members in layout]
        room_ids = [
            (
                await signed(
                    http,
                    owners[r],
                    "POST",
                    "/qchat/rooms",
                    json={
                        "kind": "group",
                        "name": f"bench-{r}",
                        "visibility": "public",
                        "e2e": False,
                    },
                )
            )["id"]
            for r in range(rooms)
        ]
        joiners = [(c, r) for r, members in enumerate(layout) for c in members[1:]]
        await bounded(
            len(joiners),
            lambda j: signed(
                http,
                people[joiners[j][0]][0],
                "POST",
                f"/qchat/rooms/{room_ids[joiners[j][1]]}/join",
            ),
        )
        last_seqs = [
            (await signed(http, owners[r], "GET", f"/qchat/rooms/{room_ids[r]}"))["last_seq"]
            for r in range(rooms)
        ]
        setup_seconds = time.perf_counter() - started
        rss_idle = memory_mib(pid, "VmRSS")
        ws_url = url.replace("http://", "ws://") + "/qchat/ws"
        started = time.perf_counter()
        sockets = await bounded(
            clients,
            lambda c: subscribe(ws_url, people[c][1], room_ids[c % rooms], last_seqs[c % rooms]),
        )
        connect_seconds = time.perf_counter() - started
        rss_connected = memory_mib(pid, "VmRSS")
        readers = [
            asyncio.create_task(read_events(tally, socket, c, c % rooms, seq))
            for c, (socket, seq) in enumerate(sockets)
        ]

        async def post(room: int, sender: int, body: str) -> None:
            await signed(
                http,
                people[sender][0],
                "POST",
                f"/qchat/rooms/{room_ids[room]}/messages",
                json={"body": body},
            )

        figures = await measure(tally, post, pid, load)
        for socket, _ in sockets:
            await socket.close()
        await asyncio.gather(*readers, return_exceptions=True)
    figures.update(
        setup_seconds=round(setup_seconds, 1),
        connect_seconds=round(connect_seconds, 1),
        server_rss_mib_before_connections=rss_idle,
        server_rss_mib_connected=rss_connected,
        server_peak_rss_mib=memory_mib(pid, "VmHWM"),
    )
    return figures


def run_anarq(backend: str, clients: int, rooms: int, load: Load, work: Path) -> dict[str, Any]:
    env, database = cluster_env() if backend == "cluster" else ({}, "")
    env["ANARQ_RATE_LIMIT_IP_PER_MINUTE"] = "10000000"
    port = free_port()
    node = start_node(port, env, work / f"node-{backend}")
    try:
        return asyncio.run(load_anarq(f"http://127.0.0.1:{port}", node.pid, clients, rooms, load))
    finally:
        node.terminate()
        node.wait()
        if database:
            drop_database(database)


def ratios(anarq: dict[str, Any], synapse: dict[str, Any]) -> dict[str, float]:
    ours, theirs = anarq["fanout_latency"], synapse.get("fanout_latency")
    result = {
        "deliveries_per_second_anarq_over_synapse": round(
            anarq["deliveries_per_second"] / max(synapse["deliveries_per_second"], 1e-9), 2
        ),
        "peak_rss_synapse_over_anarq": round(
            synapse["server_peak_rss_mib"] / anarq["server_peak_rss_mib"], 2
        ),
    }
    if theirs:
        for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            result[f"{key.removesuffix('_ms')}_latency_synapse_over_anarq"] = round(
                theirs[key] / max(ours[key], 1e-9), 2
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s, all rooms")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=15.0,
        help="wait this long after the last send; deliveries still missing count as lost",
    )
    parser.add_argument("--cluster", action="store_true", help="Also run on PostgreSQL + NATS.")
    parser.add_argument("--no-synapse", action="store_true", help="AnarQ&Q only.")
    args = parser.parse_args()
    if not args.no_synapse and not _synapse.available():
        raise SystemExit(
            "Matrix Synapse is not importable: `pip install matrix-synapse` into this venv "
            "(it is not a project dependency), or pass --no-synapse"
        )
    load = Load(args.rate, args.seconds, args.drain_seconds)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    results: dict[str, Any] = {
        "benchmark": "qchat_fanout",
        "clients": args.clients,
        "rooms": args.rooms,
        "rate_messages_per_second": args.rate,
        "seconds": args.seconds,
        "drain_seconds": args.drain_seconds,
        "cpus": os.cpu_count(),
        "anarq": {},
    }
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        work = Path(folder)
        for backend in ["embedded", "cluster"] if args.cluster else ["embedded"]:
            results["anarq"][backend] = run_anarq(backend, args.clients, args.rooms, load, work)
        if not args.no_synapse:
            synapse = _synapse.run(args.clients, args.rooms, load, work / "synapse")
            results["synapse"] = synapse
            results["ratios"] = ratios(results["anarq"]["embedded"], synapse)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
