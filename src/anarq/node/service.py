"""The node itself: what it is, who runs it, which workers serve it, what happens on it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import socket
import time
from datetime import timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from anarq import __version__
from anarq.kernel import Kernel
from anarq.kernel.blobs import put_bytes
from anarq.kernel.bus import Event
from anarq.kernel.db import insert_ignore
from anarq.kernel.errors import BadRequest, NotFound, UnsupportedMediaType
from anarq.kernel.guard import OPERATOR, Actor, Context
from anarq.kernel.ids import new_id
from anarq.node import tables
from anarq.node.identity import NodeIdentity
from anarq.node.models import (
    ActivityRow,
    IssuedToken,
    NodeInfo,
    OperatorToken,
    Profile,
    ProfileUpdate,
    Worker,
)

PROFILE_ROW = 1
AVATAR_MAX_BYTES = 2 * 1024 * 1024
AVATAR_MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
# A worker that has not reported for this long is considered gone.
WORKER_STALE = timedelta(seconds=45)
HEARTBEAT_SECONDS = 10
# `/node/info` is the most-read route of a node; other workers' profile changes show
# in it within this many seconds.
INFO_MAX_AGE_SECONDS = 1.0
TOKEN_PREFIX = "anq_op_"  # noqa: S105 (a prefix, not a secret)
TOKEN_LABEL_MAX = 120
RESOURCE_PROFILE = "node:profile:self"
RESOURCE_TOKENS = "node:operator_token:*"


HOUSEKEEPING_EVERY_SECONDS = 3600.0
log = logging.getLogger(__name__)


class NodeService:
    def __init__(self, kernel: Kernel, module_names: list[str]) -> None:
        self.k = kernel
        self.module_names = module_names
        self.worker_id = new_id()
        self.started_at = kernel.clock.now()
        self._info_cache: tuple[float, NodeInfo] | None = None
        self.identity = NodeIdentity(kernel)

    # Housekeeping --------------------------------------------------------------------

    async def run_housekeeping(self, stop: asyncio.Event) -> None:
        """Background task: prune the event bus's old records, hourly."""
        retention = timedelta(hours=self.k.settings.bus_retention_hours)
        while not stop.is_set():
            try:
                pruned = await asyncio.to_thread(self.k.bus.prune, retention)
                if any(pruned.values()):
                    log.info("pruned event records older than %s: %s", retention, pruned)
            except Exception:
                log.exception("pruning event records failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING_EVERY_SECONDS)
            except TimeoutError:
                continue

    # What the node is --------------------------------------------------------------

    def info(self) -> NodeInfo:
        """What this node is. The profile part may be up to `INFO_MAX_AGE_SECONDS` old."""
        return self.cached_info() or self._fresh_info()

    def cached_info(self) -> NodeInfo | None:
        """The info if a fresh enough copy is in memory (no I/O), else None."""
        cached = self._info_cache
        if cached is not None and time.monotonic() - cached[0] < INFO_MAX_AGE_SECONDS:
            return cached[1]
        return None

    def _fresh_info(self) -> NodeInfo:
        profile = self.profile()
        info = NodeInfo(
            did=self.identity.did,
            name=profile.name,
            version=__version__,
            backend=self.k.settings.backend_kind,
            public_url=self.k.settings.effective_public_url,
            modules=self.module_names,
            worker_id=self.worker_id,
            started_at=self.started_at,
        )
        self._info_cache = (time.monotonic(), info)
        return info

    def profile(self) -> Profile:
        with self.k.db.read() as conn:
            row = conn.execute(
                select(tables.profile).where(tables.profile.c.id == PROFILE_ROW)
            ).first()
        if row is None:
            return Profile(
                name=self.k.settings.node_name,
                description="",
                contact="",
                avatar_cid=None,
                revision=0,
                updated_at=self.started_at,
            )
        return Profile(
            name=row.name,
            description=row.description,
            contact=row.contact,
            avatar_cid=row.avatar_cid,
            revision=row.revision,
            updated_at=row.updated_at,
        )

    def update_profile(self, ctx: Context, changes: ProfileUpdate) -> Profile:
        """Change the node's public profile. Operator only; empty changes are refused."""
        fields = changes.model_dump(exclude_none=True)
        if not fields:
            raise BadRequest("nothing to change: give name, description or contact")
        with self.k.change(ctx, "write", RESOURCE_PROFILE) as tx:
            revision = self._write_profile(tx, fields)
            self.k.bus.publish(
                tx,
                "node.profile.updated",
                {"revision": revision, "fields": sorted(fields)},
                actor=ctx.actor.id,
                subject=RESOURCE_PROFILE,
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        return self.profile()

    def set_avatar(self, ctx: Context, data: bytes, media_type: str) -> Profile:
        """Store a new avatar image for the node. Operator only; small images only."""
        if media_type not in AVATAR_MEDIA_TYPES:
            raise UnsupportedMediaType(
                f"avatar must be one of {', '.join(AVATAR_MEDIA_TYPES)}, not {media_type!r}"
            )
        if not data:
            raise BadRequest("avatar is empty")
        if len(data) > AVATAR_MAX_BYTES:
            raise BadRequest(f"avatar is larger than {AVATAR_MAX_BYTES} bytes")
        with self.k.change(ctx, "write", RESOURCE_PROFILE) as tx:
            # The blob is durable before the row that names it commits.
            blob = put_bytes(self.k.blobs, data)
            revision = self._write_profile(
                tx, {"avatar_cid": blob.cid, "avatar_media_type": media_type}
            )
            self.k.bus.publish(
                tx,
                "node.avatar.updated",
                {"revision": revision, "cid": blob.cid, "size_bytes": blob.size_bytes},
                actor=ctx.actor.id,
                subject=RESOURCE_PROFILE,
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        return self.profile()

    def avatar(self) -> tuple[str, str]:
        """The avatar's CID and media type; `NotFound` when none is set."""
        with self.k.db.read() as conn:
            row = conn.execute(
                select(tables.profile.c.avatar_cid, tables.profile.c.avatar_media_type).where(
                    tables.profile.c.id == PROFILE_ROW
                )
            ).first()
        if row is None or row.avatar_cid is None:
            raise NotFound("this node has no avatar")
        return row.avatar_cid, row.avatar_media_type

    def _write_profile(self, tx: Connection, fields: dict[str, object]) -> int:
        self._info_cache = None
        now = self.k.clock.now()
        p = tables.profile
        insert_ignore(  # the first change creates the row from the defaults
            tx,
            p,
            {
                "id": PROFILE_ROW,
                "name": self.k.settings.node_name,
                "description": "",
                "contact": "",
                "revision": 0,
                "updated_at": now,
            },
        )
        tx.execute(
            update(p)
            .where(p.c.id == PROFILE_ROW)
            .values(**fields, revision=p.c.revision + 1, updated_at=now)
        )
        revision = tx.execute(select(p.c.revision).where(p.c.id == PROFILE_ROW)).scalar_one()
        return int(revision)

    # Workers ---------------------------------------------------------------------------

    def register_worker(self, url: str) -> None:
        """Announce this process as a worker of the node."""
        now = self.k.clock.now()
        with self.k.db.write() as tx:
            tx.execute(
                insert(tables.workers).values(
                    id=self.worker_id,
                    url=url,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    version=__version__,
                    started_at=self.started_at,
                    last_seen_at=now,
                )
            )
            self.k.bus.publish(
                tx,
                "node.worker.started",
                {"worker_id": self.worker_id, "url": url},
                actor="system",
                subject=f"node:worker:{self.worker_id}",
            )

    def heartbeat(self) -> None:
        with self.k.db.write() as tx:
            tx.execute(
                update(tables.workers)
                .where(tables.workers.c.id == self.worker_id)
                .values(last_seen_at=self.k.clock.now())
            )

    def unregister_worker(self) -> None:
        now = self.k.clock.now()
        with self.k.db.write() as tx:
            tx.execute(
                update(tables.workers)
                .where(tables.workers.c.id == self.worker_id)
                .values(stopped_at=now, last_seen_at=now)
            )
            self.k.bus.publish(
                tx,
                "node.worker.stopped",
                {"worker_id": self.worker_id},
                actor="system",
                subject=f"node:worker:{self.worker_id}",
            )

    def workers(self, ctx: Context, *, include_stopped: bool = False) -> list[Worker]:
        """Worker processes of this node, newest first. Operator only."""
        self.k.check(ctx, "read", "node:worker:*")
        now = self.k.clock.now()
        query = select(tables.workers).order_by(tables.workers.c.started_at.desc())
        if not include_stopped:
            query = query.where(tables.workers.c.stopped_at.is_(None))
        with self.k.db.read() as conn:
            rows = conn.execute(query.limit(500)).mappings().all()
        return [
            Worker(
                **row, alive=row["stopped_at"] is None and now - row["last_seen_at"] < WORKER_STALE
            )
            for row in rows
        ]

    # Activity -------------------------------------------------------------------------

    def record_activity(self, tx: Connection, event: Event) -> None:
        """Count every event the node dispatches, by type (an event handler)."""
        a = tables.activity
        updated = tx.execute(
            update(a)
            .where(a.c.event_type == event.type)
            .values(count=a.c.count + 1, last_event_id=event.id, last_event_at=event.time)
        )
        if updated.rowcount == 0:
            tx.execute(
                insert(a).values(
                    event_type=event.type, count=1, last_event_id=event.id, last_event_at=event.time
                )
            )

    def activity(self, ctx: Context) -> list[ActivityRow]:
        """How many events of each type the node has dispatched. Operator only."""
        self.k.check(ctx, "read", "node:activity:*")
        with self.k.db.read() as conn:
            rows = conn.execute(select(tables.activity).order_by(tables.activity.c.event_type))
            return [ActivityRow(**row) for row in rows.mappings()]

    # Operator tokens --------------------------------------------------------------------

    def issue_operator_token(self, ctx: Context, label: str) -> IssuedToken:
        """Create a bearer token for the node's operator. Shown once; only its hash is kept."""
        label = label.strip()
        if not label or len(label) > TOKEN_LABEL_MAX:
            raise BadRequest(f"label must be 1 to {TOKEN_LABEL_MAX} characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = new_id()
        with self.k.change(ctx, "admin", RESOURCE_TOKENS) as tx:
            tx.execute(
                insert(tables.operator_tokens).values(
                    id=token_id,
                    label=label,
                    token_sha256=_sha256(token),
                    created_at=self.k.clock.now(),
                )
            )
        return IssuedToken(id=token_id, label=label, token=token)

    def operator_tokens(self, ctx: Context) -> list[OperatorToken]:
        self.k.check(ctx, "admin", RESOURCE_TOKENS)
        t = tables.operator_tokens
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(t.c.id, t.c.label, t.c.created_at, t.c.revoked_at).order_by(t.c.created_at)
            )
            return [OperatorToken(**row) for row in rows.mappings()]

    def revoke_operator_token(self, ctx: Context, token_id: str) -> None:
        t = tables.operator_tokens
        with self.k.change(ctx, "admin", RESOURCE_TOKENS) as tx:
            result = tx.execute(
                update(t)
                .where(t.c.id == token_id, t.c.revoked_at.is_(None))
                .values(revoked_at=self.k.clock.now())
            )
            if result.rowcount == 0:
                raise NotFound(f"no active operator token {token_id}")

    def authenticate_bearer(self, token: str) -> Actor | None:
        """The operator if `token` is a live operator token, else None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        configured = self.k.settings.operator_token
        if configured is not None and hmac.compare_digest(
            token.encode(), configured.get_secret_value().encode()
        ):
            return OPERATOR
        t = tables.operator_tokens
        with self.k.db.read() as conn:
            live = conn.execute(
                select(func.count())
                .select_from(t)
                .where(t.c.token_sha256 == _sha256(token), t.c.revoked_at.is_(None))
            ).scalar_one()
        return OPERATOR if live else None


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
