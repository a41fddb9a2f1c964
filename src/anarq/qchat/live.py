"""Live fan-out: committed room events and ephemeral signals to every connected client.

The timeline in the database is the truth; what travels here is a hint that carries the
event, so a client that misses one (a lost hint, another worker) finds the gap by its
sequence number and reads it from the database. Typing and presence travel only here.

On one process, `announce` calls the local listeners (the WebSocket hub). With a NATS
bus URL, `run_bridge` also publishes each announcement on core NATS subject
`anarq.<cluster>.live.qchat` and hands what other workers announce to the local
listeners: every worker serving the room's clients gets every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

log = logging.getLogger("anarq.qchat.live")

Listener = Callable[[dict[str, Any]], None]


class Live:
    def __init__(self) -> None:
        self.worker = secrets.token_hex(8)
        self.listeners: list[Listener] = []
        self._remote: Callable[[bytes], None] | None = None

    def listen(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def announce(self, payload: dict[str, Any]) -> None:
        """Hand `payload` to every local listener and, when bridged, to every other worker.

        Safe from any thread; listeners must not block.
        """
        for listener in list(self.listeners):
            try:
                listener(payload)
            except Exception:
                log.exception("a live listener failed")
        remote = self._remote
        if remote is not None:
            remote(json.dumps({"worker": self.worker, "payload": payload}, default=str).encode())

    def _from_remote(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if message.get("worker") == self.worker:
            return
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener(message["payload"])

    async def run_bridge(self, stop: asyncio.Event, bus_url: str, cluster: str) -> None:
        """Bridge announcements across workers over core NATS while the node serves."""
        if not bus_url.startswith("nats://"):
            await stop.wait()
            return
        import nats

        subject = f"anarq.{cluster}.live.qchat"
        loop = asyncio.get_running_loop()
        nc = await nats.connect(bus_url, name="anarq-qchat-live", max_reconnect_attempts=-1)

        async def on_message(message: Any) -> None:
            self._from_remote(message.data)

        def publish(data: bytes) -> None:
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(nc.publish(subject, data)))

        await nc.subscribe(subject, cb=on_message)
        self._remote = publish
        try:
            await stop.wait()
        finally:
            self._remote = None
            with contextlib.suppress(Exception):
                await nc.drain()
