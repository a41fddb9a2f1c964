"""Shared by the in-process benchmarks: a migrated node on either backend, and percentiles.

`embedded` is SQLite + local blobs + the in-process bus, in a temporary folder.
`cluster` is a scratch PostgreSQL database (created here, dropped after) + NATS, as in
`tests/conftest.py`; blobs stay local. The bus is never started: nothing these
benchmarks time publishes an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from anarq.kernel.db import Database
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NATS_URL = "nats://127.0.0.1:4222"


def _admin(statement: str) -> None:
    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@contextlib.contextmanager
def open_node(backend: str, **overrides: Any) -> Iterator[Node]:
    """A fresh node, schema migrated, on `embedded` or `cluster`; removed afterwards.

    `overrides` are further settings (`semantic_search=True`)."""
    assert backend in ("embedded", "cluster"), backend
    database = ""
    with tempfile.TemporaryDirectory(prefix="anarq-bench-") as folder:
        data_dir = Path(folder) / "data"
        if backend == "embedded":
            settings = Settings(data_dir=data_dir, **overrides)
        else:
            tag = secrets.token_hex(4)
            database = f"anarq_bench_{os.getpid()}_{tag}"
            _admin(f'CREATE DATABASE "{database}"')
            settings = Settings(
                data_dir=data_dir,
                database_url=POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}",
                bus_url=NATS_URL,
                cluster=f"bench{tag}",
                secret_key=f"benchmark-secret-{tag}",
                **overrides,
            )
        try:
            migrator = Database(settings.effective_database_url, pool_size=1)
            migrator.upgrade()
            migrator.close()
            node = Node.open(settings)
            try:
                yield node
            finally:
                asyncio.run(node.kernel.bus.stop())
                node.close()
        finally:
            if database:
                _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def database_megabytes(node: Node) -> float:
    """Size of the node's database: SQLite file and WAL, or the PostgreSQL database."""
    db = node.kernel.db
    if db.dialect == "sqlite":
        path = Path(db.url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        size = sum(f.stat().st_size for f in files if f.exists())
    else:
        with db.read() as conn:
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    return round(size / 2**20, 1)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(seconds: Sequence[float], unit: str = "us") -> dict[str, float]:
    """p50/p95/p99/max (and mean) of per-call durations given in seconds."""
    scale = {"us": 1e6, "ms": 1e3}[unit]
    ordered = sorted(seconds)
    summary = {
        f"p50_{unit}": percentile(ordered, 0.50) * scale,
        f"p95_{unit}": percentile(ordered, 0.95) * scale,
        f"p99_{unit}": percentile(ordered, 0.99) * scale,
        f"max_{unit}": ordered[-1] * scale,
        f"mean_{unit}": sum(ordered) / len(ordered) * scale,
    }
    digits = {"us": 1, "ms": 3}[unit]
    return {key: round(value, digits) for key, value in summary.items()}
