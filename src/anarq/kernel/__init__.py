"""The kernel: settings, errors, database, blobs, event bus, clock, ids, the guard.

No business logic lives here. `Kernel` bundles the shared machinery one node
process uses; every module's service receives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from anarq.kernel.blobs import BlobStore, open_blob_store
from anarq.kernel.bus import EventBus, open_transport
from anarq.kernel.clock import Clock
from anarq.kernel.db import Database
from anarq.kernel.errors import AnarqError
from anarq.kernel.guard import Context, Guard
from anarq.kernel.settings import Settings


@dataclass
class Kernel:
    settings: Settings
    db: Database
    blobs: BlobStore
    bus: EventBus
    clock: Clock
    guard: Guard

    @classmethod
    def open(
        cls, settings: Settings, *, clock: Clock | None = None, guard: Guard | None = None
    ) -> Kernel:
        """Connect every backend the settings name. Nothing is reached over the network yet."""
        clock = clock or Clock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.effective_database_url, pool_size=settings.database_pool_size)
        blobs = open_blob_store(
            settings.effective_blobs_url, spool_dir=str(settings.data_dir / "spool")
        )
        bus = EventBus(
            db,
            clock,
            open_transport(settings.effective_bus_url, cluster=settings.cluster),
            max_attempts=settings.bus_max_attempts,
            retry_base_ms=settings.bus_retry_base_ms,
            poll_ms=settings.bus_poll_ms,
        )
        return cls(
            settings=settings,
            db=db,
            blobs=blobs,
            bus=bus,
            clock=clock,
            guard=guard or Guard(),
        )

    def check(self, ctx: Context, action: str, resource: str) -> None:
        """Authorize an action that changes nothing (a read); a refusal is recorded and raised."""
        try:
            self.guard.authorize(ctx, action, resource)
        except AnarqError:
            self.guard.record(ctx, action, resource, "deny")
            raise

    @contextmanager
    def change(self, ctx: Context, action: str, resource: str) -> Iterator[Connection]:
        """The only door to a state change: authorize, run in one transaction, record.

        A refusal is recorded as `deny` and raised. The `allow` record is written in
        the change's own transaction: a change that fails leaves no record of success.
        """
        self.check(ctx, action, resource)
        with self.db.write() as tx:
            yield tx
            self.guard.record(ctx, action, resource, "allow", tx)

    def close(self) -> None:
        self.blobs.close()
        self.db.close()
