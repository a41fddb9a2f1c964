"""Requests/s and p50/p99 latency of `/health`, `/node/info` (served from memory, refreshed each
second) and `/node/profile` (a database read every time) on a real node, next to a bare
Starlette app serving the same shapes, in one run. The ratio node/bare is the figure to watch.

    python -m benchmarks.http_overhead [--seconds 10] [--connections 32] [--cluster]

Needs `wrk` (apt-get install wrk). The server and wrk share the machine: each gets
one core (taskset), so numbers compare like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROUTES = ("/health", "/node/info", "/node/profile")
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became ready")


def pinned(command: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") else command


def start_node(port: int, env_extra: dict[str, str], data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANARQ_")}
    env.update(
        {
            # wrk is one address sending thousands of requests a second: do not throttle it.
            "ANARQ_RATE_LIMIT_IP_PER_MINUTE": "10000000",
            "ANARQ_RATE_LIMIT_IDENTITY_PER_MINUTE": "10000000",
            "ANARQ_DATA_DIR": str(data_dir),
            "ANARQ_PORT": str(port),
            "ANARQ_LOG_LEVEL": "warning",
            **env_extra,
        }
    )
    process = subprocess.Popen(
        pinned([sys.executable, "-m", "anarq", "up"], 0),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/ready", process)
    return process


def start_bare(port: int, app: str = "app") -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"benchmarks.bare_app:{app}",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(
        pinned(command, 0), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_ready(f"http://127.0.0.1:{port}/health", process)
    return process


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    command = pinned(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url], 1)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latencies = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_second": rps,
        "p50_ms": to_ms(latencies["50"]),
        "p99_ms": to_ms(latencies["99"]),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def cluster_env() -> tuple[dict[str, str], str]:
    from sqlalchemy import create_engine, text

    name = f"anarq_bench_{os.getpid()}"
    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    return {
        "ANARQ_DATABASE_URL": url,
        "ANARQ_BUS_URL": "nats://127.0.0.1:4222",
        "ANARQ_CLUSTER": "bench",
        "ANARQ_SECRET_KEY": "benchmark-node-secret",
    }, name


def drop_database(name: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def run(seconds: int, connections: int, cluster: bool) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    results: dict[str, Any] = {
        "benchmark": "http_overhead",
        "seconds": seconds,
        "connections": connections,
        "cpus": os.cpu_count(),
        "backends": {},
    }
    bare_port = free_port()
    bare = start_bare(bare_port)
    try:
        bare_numbers = {
            route: wrk(f"http://127.0.0.1:{bare_port}{route}", seconds, connections)
            for route in ROUTES
        }
    finally:
        bare.terminate()
        bare.wait()
    results["bare_starlette"] = bare_numbers
    fastapi_port = free_port()
    bare_fastapi = start_bare(fastapi_port, "fastapi_app")
    try:
        fastapi_health = wrk(f"http://127.0.0.1:{fastapi_port}/health", seconds, connections)
    finally:
        bare_fastapi.terminate()
        bare_fastapi.wait()
    results["bare_fastapi"] = {"/health": fastapi_health}
    backends = ["embedded", "cluster"] if cluster else ["embedded"]
    for backend in backends:
        env, database = cluster_env() if backend == "cluster" else ({}, "")
        with tempfile.TemporaryDirectory() as data_dir:
            port = free_port()
            node = start_node(port, env, Path(data_dir))
            try:
                numbers = {
                    route: wrk(f"http://127.0.0.1:{port}{route}", seconds, connections)
                    for route in ROUTES
                }
            finally:
                node.terminate()
                node.wait()
        if database:
            drop_database(database)
        for route, figures in numbers.items():
            figures["ratio_to_bare"] = round(
                figures["requests_per_second"] / bare_numbers[route]["requests_per_second"], 3
            )
        numbers["/health"]["ratio_to_bare_fastapi"] = round(
            numbers["/health"]["requests_per_second"] / fastapi_health["requests_per_second"], 3
        )
        results["backends"][backend] = numbers
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="Also run on PostgreSQL + NATS (must be reachable on loopback).",
    )
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.connections, args.cluster), indent=2))


if __name__ == "__main__":
    main()
