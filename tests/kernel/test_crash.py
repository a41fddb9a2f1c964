"""Kill -9 during writes: every acknowledged write survives, no blob is half-written."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from anarq.kernel.blobs import digest_of, open_blob_store, read_bytes
from anarq.kernel.settings import Settings
from tests.conftest import free_port
from tests.support.process import NodeProcess

pytestmark = pytest.mark.slow
WRITERS = 4
WRITE_SECONDS = 2.0


def hammer(
    url: str, token: str, stop: threading.Event, acked: list[tuple[str, str]], worker: int
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 2:
                    text = f"w{worker}-{n}"
                    response = client.patch("/node/profile", json={"description": text})
                    if response.status_code == 200:
                        acked.append(("profile", str(response.json()["revision"])))
                else:
                    data = os.urandom(64 * 1024 + n)
                    response = client.put(
                        "/node/avatar", content=data, headers={"Content-Type": "image/png"}
                    )
                    if response.status_code == 200:
                        acked.append(("avatar", response.json()["avatar_cid"]))
            except httpx.TransportError:
                return  # the node was killed under us


def node_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    """The environment of `anarq up` on the same backends as `settings`."""
    env = {"ANARQ_DATA_DIR": str(data_dir)}
    if settings.backend_kind == "cluster":
        env.update(
            {
                "ANARQ_DATABASE_URL": settings.database_url,
                "ANARQ_BLOBS_URL": settings.blobs_url,
                "ANARQ_BUS_URL": settings.bus_url,
                "ANARQ_CLUSTER": settings.cluster,
                "ANARQ_SECRET_KEY": settings.secret_key.get_secret_value()
                if settings.secret_key
                else "",
            }
        )
    return env


def test_acknowledged_writes_survive_kill_9(settings: Settings, tmp_path: Path) -> None:
    env = node_env(settings, tmp_path / "data")
    node = NodeProcess(free_port(), env, tmp_path / "first.log")
    token = (tmp_path / "data" / "operator.token").read_text().strip()
    stop = threading.Event()
    acked: list[tuple[str, str]] = []
    threads = [
        threading.Thread(target=hammer, args=(node.url, token, stop, acked, i))
        for i in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(WRITE_SECONDS)
    node.kill()  # mid-write: the writers are still going
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acked) > 10, "the writers got some writes acknowledged before the kill"

    restarted = NodeProcess(free_port(), env, tmp_path / "second.log")
    try:
        with httpx.Client(base_url=restarted.url, timeout=10) as client:
            profile = client.get("/node/profile").json()
        revisions = [int(value) for kind, value in acked if kind == "profile"]
        avatars = [value for kind, value in acked if kind == "avatar"]
        # Every acknowledged change is counted in the revision, which only grows.
        assert profile["revision"] >= len(revisions) + len(avatars)
        assert profile["revision"] >= max(revisions)
        store = open_blob_store(
            settings.effective_blobs_url, spool_dir=str(tmp_path / "check-spool")
        )
        stored = set(store.iter_cids())
        for cid in avatars:
            assert cid in stored, f"acknowledged avatar {cid} is missing"
        for cid in stored:
            content = read_bytes(store, cid)  # raises BlobCorrupted on a torn blob
            assert hashlib.sha256(content).digest() == digest_of(cid)
    finally:
        restarted.stop()


def test_ctrl_c_stops_cleanly_and_the_worker_says_goodbye(tmp_path: Path) -> None:
    env = {"ANARQ_DATA_DIR": str(tmp_path / "data")}
    node = NodeProcess(free_port(), env, tmp_path / "node.log")
    token = (tmp_path / "data" / "operator.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    [worker] = httpx.get(f"{node.url}/node/workers", headers=headers).json()
    assert node.stop() == 0, node.log()
    again = NodeProcess(free_port(), env, tmp_path / "again.log")
    try:
        rows = httpx.get(f"{again.url}/node/workers?include_stopped=true", headers=headers).json()
        stopped = {row["id"]: row["stopped_at"] for row in rows}
        assert stopped[worker["id"]] is not None
    finally:
        again.stop()
