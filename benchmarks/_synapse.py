"""The Matrix Synapse side of `qchat_fanout`: a throwaway homeserver and its /sync clients.

Needs `pip install matrix-synapse` in the same venv (not a project dependency). The
homeserver is generated for the run: SQLite, client API on loopback only, pinned to
core 0 like the node. Changed from the generated config, for a load test from one
address: every rate limit lifted, presence off, no trusted key servers, bcrypt at its
cheapest (only registration hashes a password), logging at WARNING.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from benchmarks._fanout import Load, Tally, bounded, measure, members_by_room, memory_mib
from benchmarks.http_overhead import free_port, pinned, wait_ready

SERVER_NAME = "bench.local"
API = "/_matrix/client/v3"
SEND_CONNECTIONS = 64
LONG_POLL_MS = 30_000
UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}
# What each client syncs: the rooms' messages, nothing else.
SYNC_FILTER = json.dumps(
    {
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
        "room": {
            "state": {"lazy_load_members": True},
            "timeline": {"limit": 100, "types": ["m.room.message"]},
            "ephemeral": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
        },
    },
    separators=(",", ":"),
)


def available() -> bool:
    return importlib.util.find_spec("synapse") is not None


def configure(folder: Path, port: int) -> tuple[Path, str]:
    """A generated homeserver config, adjusted for the load test; its path and shared secret."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "homeserver.yaml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "synapse.app.homeserver",
            "--server-name",
            SERVER_NAME,
            "--config-path",
            str(config),
            "--data-directory",
            str(folder),
            "--generate-config",
            "--report-stats=no",
        ],
        check=True,
        capture_output=True,
    )
    settings = yaml.safe_load(config.read_text())
    log_config = folder / "log.yaml"
    log_config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "handlers": {
                    "file": {
                        "class": "logging.FileHandler",
                        "filename": str(folder / "homeserver.log"),
                    }
                },
                "root": {"level": "WARNING", "handlers": ["file"]},
                "disable_existing_loggers": False,
            }
        )
    )
    secret = secrets.token_hex(16)
    settings.update(
        listeners=[
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        log_config=str(log_config),
        registration_shared_secret=secret,
        trusted_key_servers=[],
        suppress_key_server_warning=True,
        presence={"enabled": False},
        bcrypt_rounds=4,
        rc_message=UNLIMITED,
        rc_registration=UNLIMITED,
        rc_registration_token_validity=UNLIMITED,
        rc_login={"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED},
        rc_joins={"local": UNLIMITED, "remote": UNLIMITED},
        rc_joins_per_room=UNLIMITED,
        rc_invites={"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
        rc_room_creation=UNLIMITED,
        rc_presence={"per_user": UNLIMITED},
        rc_admin_redaction=UNLIMITED,
        rc_3pid_validation=UNLIMITED,
    )
    config.write_text(yaml.safe_dump(settings))
    return config, secret


def start(config: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        pinned([sys.executable, "-m", "synapse.app.homeserver", "--config-path", str(config)], 0),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/health", process)
    return process


async def register(http: httpx.AsyncClient, secret: str, index: int) -> str:
    """A new user, through the shared-secret admin API; its access token."""
    nonce = (await http.get("/_synapse/admin/v1/register")).json()["nonce"]
    username, password = f"bench{index}", secrets.token_hex(8)
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join(v.encode() for v in (nonce, username, password, "notadmin")))
    response = await http.post(
        "/_synapse/admin/v1/register",
        json={
            "nonce": nonce,
            "username": username,
            "password": password,
            "admin": False,
            "mac": mac.hexdigest(),
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def call(http: httpx.AsyncClient, token: str, method: str, path: str, **kwargs: Any) -> Any:
    response = await http.request(
        method, API + path, headers={"Authorization": f"Bearer {token}"}, **kwargs
    )
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
    return response.json()


async def sync_forever(
    url: str,
    token: str,
    tally: Tally,
    client: int,
    rooms_by_id: dict[str, int],
    synced: Callable[[], None],
) -> None:
    """Long-poll `/sync` with the client's own connection, recording each message; the
    client joins `synced` once its initial sync is done."""
    params = {"filter": SYNC_FILTER, "timeout": "0"}
    async with httpx.AsyncClient(base_url=url, timeout=LONG_POLL_MS / 1000 + 60) as http:
        while True:
            try:
                data = await call(http, token, "GET", "/sync", params=params)
            except (httpx.TransportError, RuntimeError):
                tally.disconnects += 1
                await asyncio.sleep(0.5)
                continue
            first = params["timeout"] == "0"
            params.update(since=data["next_batch"], timeout=str(LONG_POLL_MS))
            if first:
                synced()
                continue  # the initial sync: history before the test
            for room_id, joined in data.get("rooms", {}).get("join", {}).items():
                timeline = joined.get("timeline", {})
                if timeline.get("limited"):
                    tally.truncated_syncs += 1
                for event in timeline.get("events", []):
                    if event.get("type") == "m.room.message":
                        tally.receive(client, rooms_by_id[room_id], event["content"].get("body"))


async def load_rooms(
    url: str, pid: int, secret: str, clients: int, rooms: int, load: Load
) -> dict[str, Any]:
    layout = members_by_room(clients, rooms)
    tally = Tally(layout)
    limits = httpx.Limits(max_connections=SEND_CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        started = time.perf_counter()
        tokens = await bounded(clients, lambda i: register(http, secret, i))
        room_ids = [
            (
                await call(
                    http,
                    tokens[members[0]],
                    "POST",
                    "/createRoom",
                    json={"preset": "public_chat", "name": f"bench-{r}"},
                )
            )["room_id"]
            for r, members in enumerate(layout)
        ]
        joiners = [(c, r) for r, members in enumerate(layout) for c in members[1:]]
        await bounded(
            len(joiners),
            lambda j: call(
                http,
                tokens[joiners[j][0]],
                "POST",
                f"/join/{quote(room_ids[joiners[j][1]], safe='')}",
                json={},
            ),
        )
        setup_seconds = time.perf_counter() - started
        rss_idle = memory_mib(pid, "VmRSS")
        rooms_by_id = {room_id: r for r, room_id in enumerate(room_ids)}
        started = time.perf_counter()
        pending, all_synced = [clients], asyncio.Event()

        def synced() -> None:
            pending[0] -= 1
            if pending[0] == 0:
                all_synced.set()

        syncers = [
            asyncio.create_task(sync_forever(url, tokens[c], tally, c, rooms_by_id, synced))
            for c in range(clients)
        ]
        await all_synced.wait()
        connect_seconds = time.perf_counter() - started
        rss_connected = memory_mib(pid, "VmRSS")

        async def post(room: int, sender: int, body: str) -> None:
            room_id, txn = quote(room_ids[room], safe=""), secrets.token_hex(8)
            path = f"/rooms/{room_id}/send/m.room.message/{txn}"
            await call(http, tokens[sender], "PUT", path, json={"msgtype": "m.text", "body": body})

        figures = await measure(tally, post, pid, load)
        for task in syncers:
            task.cancel()
        await asyncio.gather(*syncers, return_exceptions=True)
    figures.update(
        setup_seconds=round(setup_seconds, 1),
        connect_seconds=round(connect_seconds, 1),
        server_rss_mib_before_connections=rss_idle,
        server_rss_mib_connected=rss_connected,
        server_peak_rss_mib=memory_mib(pid, "VmHWM"),
    )
    return figures


def run(clients: int, rooms: int, load: Load, folder: Path) -> dict[str, Any]:
    port = free_port()
    config, secret = configure(folder, port)
    process = start(config, port)
    try:
        return asyncio.run(
            load_rooms(f"http://127.0.0.1:{port}", process.pid, secret, clients, rooms, load)
        )
    finally:
        process.terminate()
        process.wait()
