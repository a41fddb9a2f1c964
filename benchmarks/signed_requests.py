"""Signed-request overhead: the same read, unauthenticated vs signed (RFC 9421), one run.

    python -m benchmarks.signed_requests [--requests 4000] [--connections 16] [--cluster]

A real `anarq up` node (pinned to core 0) serves `GET /node/profile`. The client
(pinned to core 1, Python asyncio + httpx) sends the same number of requests both ways
with the same concurrency; signed requests are signed *before* the clock starts, so
the figure is the server's cost: signature check, Content-Digest, and the single-use
nonce written to the database. Two registered identities sign: a classical one (Ed25519)
and a hybrid one (Ed25519 + ML-DSA-65, both checked). The ratios to unsigned are the
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from anarq.qlock import SigningKey
from anarq.sdk.signing import RequestSigner
from benchmarks.http_overhead import cluster_env, drop_database, free_port, start_node

PATH = "/node/profile"


async def fire(url: str, requests: list[httpx.Request], connections: int) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[httpx.Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                request = queue.get_nowait()
                started = time.perf_counter()
                response = await client.send(request)
                latencies.append(time.perf_counter() - started)
                failures += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests_per_second": round(len(requests) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "failures": float(failures),
    }


def build(url: str, count: int, signer: RequestSigner | None) -> list[httpx.Request]:
    requests = []
    for _ in range(count):
        request = httpx.Request("GET", f"{url}{PATH}")
        if signer is not None:
            signer.sign(request)
        requests.append(request)
    return requests


def run_backend(backend: str, count: int, connections: int) -> dict[str, Any]:
    env, database = cluster_env() if backend == "cluster" else ({}, "")
    classical = RequestSigner.for_key(SigningKey.generate(hybrid=False))
    hybrid = RequestSigner.for_key(SigningKey.generate(hybrid=True))
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        node = start_node(port, env, Path(data_dir))
        url = f"http://127.0.0.1:{port}"
        try:
            for name, signer in (("classical", classical), ("hybrid", hybrid)):
                public = base64.b64encode(signer.key.verify_key.to_bytes()).decode()
                register = httpx.Request(
                    "POST", f"{url}/squid/identities", json={"name": name, "public_key": public}
                )
                signer.sign(register)
                assert httpx.Client().send(register).status_code == 201
                warm = asyncio.run(fire(url, build(url, 200, signer), connections))
                assert warm["failures"] == 0, "signed requests must succeed"
            assert asyncio.run(fire(url, build(url, 50, None), connections))["failures"] == 0
            plain = asyncio.run(fire(url, build(url, count, None), connections))
            signing_started = time.perf_counter()
            prepared = build(url, count, classical)
            signing_seconds = time.perf_counter() - signing_started
            signed = asyncio.run(fire(url, prepared, connections))
            hybrid_started = time.perf_counter()
            prepared = build(url, count, hybrid)
            hybrid_signing_seconds = time.perf_counter() - hybrid_started
            signed_hybrid = asyncio.run(fire(url, prepared, connections))
        finally:
            node.terminate()
            node.wait()
    if database:
        drop_database(database)
    return {
        "unsigned": plain,
        "signed_ed25519": signed,
        "signed_hybrid": signed_hybrid,
        "ratio_signed_to_unsigned": round(
            signed["requests_per_second"] / plain["requests_per_second"], 3
        ),
        "ratio_hybrid_to_unsigned": round(
            signed_hybrid["requests_per_second"] / plain["requests_per_second"], 3
        ),
        "client_signing_per_second": round(count / signing_seconds, 1),
        "client_hybrid_signing_per_second": round(count / hybrid_signing_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    backends = ["embedded", "cluster"] if args.cluster else ["embedded"]
    results = {
        "benchmark": "signed_requests",
        "route": f"GET {PATH}",
        "requests": args.requests,
        "connections": args.connections,
        "cpus": os.cpu_count(),
        "backends": {b: run_backend(b, args.requests, args.connections) for b in backends},
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
