"""Cluster mode: two `anarq up` workers on one PostgreSQL, NATS JetStream and S3 are one node."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import NATS_URL, PostgresDatabases, free_port
from tests.support.process import NodeProcess

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def eventually(probe: Any, *, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture
def cluster_env(postgres: PostgresDatabases, seaweed: Any, nats_available: bool) -> Any:
    database = postgres.empty()
    cluster = f"w{secrets.token_hex(4)}"
    env = {
        "ANARQ_DATABASE_URL": postgres.url_for(database),
        "ANARQ_BUS_URL": NATS_URL,
        "ANARQ_BLOBS_URL": seaweed.url_for(seaweed.make_bucket(f"anarq-{cluster}")),
        "ANARQ_CLUSTER": cluster,
        "ANARQ_SECRET_KEY": f"test-secret-{cluster}",
    }
    yield env
    import asyncio

    from anarq.kernel.bus.nats import NatsTransport

    asyncio.run(NatsTransport(NATS_URL, cluster=cluster).delete_stream())
    postgres.drop(database)


def test_two_workers_share_writes_blobs_and_events(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    first = NodeProcess(
        free_port(), {**cluster_env, "ANARQ_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log"
    )
    second = NodeProcess(
        free_port(), {**cluster_env, "ANARQ_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log"
    )
    try:
        token = (tmp_path / "a" / "operator.token").read_text().strip()
        operator = {"Authorization": f"Bearer {token}"}
        a = httpx.Client(base_url=first.url, timeout=10)
        b = httpx.Client(base_url=second.url, timeout=10)

        # A write on one worker is read on the other: one database.
        changed = a.patch("/node/profile", json={"name": "Shared node"}, headers=operator)
        assert changed.status_code == 200, changed.text
        assert b.get("/node/profile").json()["name"] == "Shared node"

        # A blob stored through one worker is served by the other: one object store.
        image = os.urandom(4096)
        stored = a.put(
            "/node/avatar", content=image, headers={**operator, "Content-Type": "image/png"}
        )
        assert stored.status_code == 200, stored.text
        assert b.get("/node/avatar").content == image

        # Both workers are registered, and each sees the other.
        workers = b.get("/node/workers", headers=operator).json()
        assert {w["url"] for w in workers} == {first.url, second.url}

        # Events published on A are consumed once across both workers: one bus.
        def counts() -> dict[str, int]:
            rows = b.get("/node/activity", headers=operator).json()
            return {row["event_type"]: row["count"] for row in rows}

        expected = {"node.worker.started": 2, "node.profile.updated": 1, "node.avatar.updated": 1}
        assert eventually(lambda: counts() == expected), counts()
        time.sleep(1.5)  # give a duplicate delivery time to show up, if there were one
        assert counts() == expected
        a.close()
        b.close()
    finally:
        first.stop()
        second.stop()
