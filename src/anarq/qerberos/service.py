"""Qerberos: the audit log every module writes to, as a verifiable RFC 9162 Merkle tree.

Writes are cheap and concurrent: an audit entry is one row inserted in the same
transaction as the change it records. A single integrator (the node's background
task, one worker at a time) then gives pending entries consecutive leaf indexes,
appends them to the tree in batches and signs the new tree head with the node key,
as Trillian's sequencer does. Inclusion and consistency proofs are served from
the stored complete subtrees in O(log n) reads.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.clock import rfc3339
from anarq.kernel.db import defer_insert
from anarq.kernel.errors import BadRequest, NotFound, RateLimited, Unauthenticated
from anarq.kernel.guard import Context, Verdict
from anarq.kernel.ids import new_id
from anarq.kernel.subject import ExportItem
from anarq.node.service import NodeService
from anarq.qerberos import merkle, tables
from anarq.qerberos.door import (
    DENIAL_WINDOW_SECONDS,
    DENIALS_FOR_ANOMALY,
    FailureTracker,
    TokenBuckets,
)
from anarq.qerberos.models import Alert, ConsistencyProof, Entry, InclusionProof, Risk, TreeHead
from anarq.qerberos.store import DatabaseNodeStore
from anarq.qlock import encode_signature, sign

log = logging.getLogger("anarq.qerberos")

INTEGRATE_BATCH = 10_000
INTEGRATE_EVERY_SECONDS = 1.0
EXPORT_PAGE_MAX = 10_000
FIELD_MAX = 300
# Fixed advisory lock id: one integrator at a time across the workers of a node.
INTEGRATOR_LOCK_KEY = 0x51455242
TREE_HEAD_CONTEXT = "anarq-tree-head/v1"
# Built once: values passed as parameters keep SQLAlchemy's compiled-statement cache warm.
_INSERT_ENTRY = insert(tables.entries)


def canonical_leaf(fields: dict[str, Any]) -> str:
    """The exact text hashed into the tree: JSON, sorted keys, no spaces, UTF-8."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tree_head_bytes(signer: str, size: int, root: bytes, time: datetime) -> bytes:
    """What a tree head signature covers; documented in docs/formats.md."""
    return "\n".join(
        [TREE_HEAD_CONTEXT, signer, str(size), base64.b64encode(root).decode(), rfc3339(time)]
    ).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class QerberosService:
    erase_order = 90

    def __init__(self, kernel: Kernel, node: NodeService) -> None:
        self.k = kernel
        self.node = node
        self.desk = SecurityDesk(kernel)

    # Recording ---------------------------------------------------------------------

    def record(
        self, ctx: Context, action: str, resource: str, verdict: Verdict, tx: Connection | None
    ) -> None:
        """Append an audit entry; with `tx`, it commits or rolls back with the change."""
        if tx is None:
            with self.k.db.write() as own:
                self._insert(own, ctx, action, resource, verdict)
        else:
            self._insert(tx, ctx, action, resource, verdict)

    def _insert(
        self, tx: Connection, ctx: Context, action: str, resource: str, verdict: Verdict
    ) -> None:
        time = self.k.clock.now()
        fields = {
            "time": rfc3339(time),
            "actor": ctx.actor.id[:FIELD_MAX],
            "action": action,
            "resource": resource[:FIELD_MAX],
            "verdict": verdict,
            "request_id": ctx.request_id[:64],
        }
        defer_insert(
            tx,
            _INSERT_ENTRY,
            {
                "time": time,
                "actor": fields["actor"],
                "action": action,
                "resource": fields["resource"],
                "verdict": verdict,
                "request_id": fields["request_id"],
                "leaf": canonical_leaf(fields),
            },
        )

    # Data-subject requests -----------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """The audit entries the person caused, as JSON lines (streamed in batches)."""
        yield ExportItem("audit-entries.jsonl", self._entries_of(did))

    def _entries_of(self, did: str) -> Iterator[bytes]:
        e = tables.entries
        after = 0
        while True:
            with self.k.db.read() as conn:
                rows = (
                    conn.execute(
                        select(e.c.seq, e.c.leaf_index, e.c.leaf)
                        .where(e.c.actor == did, e.c.seq > after)
                        .order_by(e.c.seq)
                        .limit(5000)
                    )
                    .mappings()
                    .all()
                )
            if not rows:
                return
            yield b"".join(
                json.dumps(
                    {"seq": r["seq"], "leaf_index": r["leaf_index"], "entry": r["leaf"]}
                ).encode()
                + b"\n"
                for r in rows
            )
            after = rows[-1]["seq"]

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Nothing: the log is append-only and proves every decision, this erasure too."""
        return {}

    # Integrating -------------------------------------------------------------------

    def integrate(self, max_entries: int = INTEGRATE_BATCH) -> TreeHead | None:
        """Put pending entries into the tree and sign the new head; None if none pended."""
        e = tables.entries
        self.node.identity.signing_key()  # may create the key: never inside the write below
        with self.k.db.write() as tx:
            if tx.dialect.name == "postgresql":
                tx.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": INTEGRATOR_LOCK_KEY})
            size = self._size(tx)
            pending = tx.execute(
                select(e.c.seq, e.c.leaf)
                .where(e.c.leaf_index.is_(None))
                .order_by(e.c.seq)
                .limit(max_entries)
            ).all()
            if not pending:
                return None
            tx.execute(
                update(e)
                .where(e.c.seq == bindparam("b_seq"))
                .values(leaf_index=bindparam("b_index")),
                [{"b_seq": row.seq, "b_index": size + i} for i, row in enumerate(pending)],
            )
            store = DatabaseNodeStore(tx, size)
            new_size = merkle.append(
                store, [merkle.leaf_hash(row.leaf.encode()) for row in pending]
            )
            root = merkle.root(store, new_size)
            store.flush()
            head = self._sign_head(new_size, root)
            tx.execute(
                insert(tables.tree_heads).values(
                    size=head.size,
                    root=root,
                    time=head.time,
                    signer=head.signer,
                    signature=head.signature,
                )
            )
        return head

    def _sign_head(self, size: int, root: bytes) -> TreeHead:
        time = self.k.clock.now()
        signer = self.node.identity.did
        signature = sign(
            self.node.identity.signing_key(), tree_head_bytes(signer, size, root, time)
        )
        return TreeHead(
            size=size,
            root=_b64(root),
            time=time,
            signer=signer,
            signature=encode_signature(signature),
            signer_key=_b64(self.node.identity.verify_key().to_bytes()),
        )

    def _size(self, conn: Connection) -> int:
        latest = conn.execute(select(func.max(tables.tree_heads.c.size))).scalar_one_or_none()
        return int(latest or 0)

    async def run_integrator(self, stop: asyncio.Event) -> None:
        """Background task: integrate whatever is pending, about once a second."""
        while not stop.is_set():
            try:
                while await asyncio.to_thread(self.integrate) is not None:
                    pass
            except Exception:
                log.exception("audit integration failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), INTEGRATE_EVERY_SECONDS)
            except TimeoutError:
                continue

    # Reading -----------------------------------------------------------------------

    def tree_head(self, size: int | None = None) -> TreeHead:
        """The latest signed tree head, or the one at `size`."""
        h = tables.tree_heads
        query = select(h).order_by(h.c.size.desc()).limit(1)
        if size is not None:
            query = select(h).where(h.c.size == size)
        with self.k.db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound("no signed tree head yet" if size is None else f"no tree head at {size}")
        return self._head(row)

    def entry(self, ctx: Context, seq: int) -> Entry:
        """One audit entry: for the operator, and for the actor it records."""
        with self.k.db.read() as conn:
            row = (
                conn.execute(select(tables.entries).where(tables.entries.c.seq == seq))
                .mappings()
                .first()
            )
        if row is None or not self._may_read(ctx, row):
            raise NotFound(f"no audit entry {seq}")  # never confirm entries one may not see
        return Entry(**row)

    def entries(self, ctx: Context, *, after: int = -1, limit: int = 100) -> list[Entry]:
        """Integrated entries in tree order from leaf index `after + 1`. Operator only."""
        self.k.check(ctx, "read", "qerberos:log:*")
        if not 1 <= limit <= EXPORT_PAGE_MAX:
            raise BadRequest(f"limit must be 1 to {EXPORT_PAGE_MAX}")
        e = tables.entries
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(e).where(e.c.leaf_index > after).order_by(e.c.leaf_index).limit(limit)
            ).mappings()
            return [Entry(**row) for row in rows]

    def my_entries(self, ctx: Context, *, limit: int = 100) -> list[Entry]:
        """The caller's own audit trail, newest first."""
        if not ctx.actor.authenticated:
            raise Unauthenticated("reading an audit trail needs an authenticated caller")
        e = tables.entries
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(e)
                .where(e.c.actor == ctx.actor.id)
                .order_by(e.c.seq.desc())
                .limit(min(max(limit, 1), EXPORT_PAGE_MAX))
            ).mappings()
            return [Entry(**row) for row in rows]

    def find(self, resource: str, *, actor: str) -> Entry | None:
        """The first entry `actor` caused on `resource` (e.g. a receipt named by its digest)."""
        e = tables.entries
        with self.k.db.read() as conn:
            row = (
                conn.execute(
                    select(e)
                    .where(e.c.actor == actor[:FIELD_MAX], e.c.resource == resource[:FIELD_MAX])
                    .order_by(e.c.seq)
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return Entry(**row) if row is not None else None

    def inclusion(self, ctx: Context, seq: int) -> InclusionProof:
        """Proof that entry `seq` is in the latest signed tree head."""
        entry = self.entry(ctx, seq)
        if entry.leaf_index is None:
            self.integrate()
            entry = self.entry(ctx, seq)
        assert entry.leaf_index is not None
        head = self.tree_head()
        with self.k.db.read() as conn:
            store = DatabaseNodeStore(conn, head.size)
            proof = merkle.inclusion_proof(store, entry.leaf_index, head.size)
        return InclusionProof(
            leaf_index=entry.leaf_index,
            tree_size=head.size,
            leaf_hash=_b64(merkle.leaf_hash(entry.leaf.encode())),
            proof=[_b64(step) for step in proof],
            tree_head=head,
        )

    def consistency(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Proof that the tree at `new_size` extends the tree at `old_size`."""
        with self.k.db.read() as conn:
            latest = self._size(conn)
            if not 0 < old_size <= new_size <= latest:
                raise BadRequest(f"need 0 < old_size <= new_size <= {latest}")
            store = DatabaseNodeStore(conn, latest)
            proof = merkle.consistency_proof(store, old_size, new_size)
        return ConsistencyProof(
            old_size=old_size, new_size=new_size, proof=[_b64(step) for step in proof]
        )

    def export(self, ctx: Context) -> dict[str, Any]:
        """Everything an offline verifier needs: entries, signed heads, the signer's key."""
        self.k.check(ctx, "read", "qerberos:log:*")
        with self.k.db.read() as conn:
            heads = [
                self._head(row).model_dump(mode="json")
                for row in conn.execute(
                    select(tables.tree_heads).order_by(tables.tree_heads.c.size)
                ).mappings()
            ]
            leaves = [
                row.leaf
                for row in conn.execute(
                    select(tables.entries.c.leaf)
                    .where(tables.entries.c.leaf_index.is_not(None))
                    .order_by(tables.entries.c.leaf_index)
                )
            ]
        return {
            "format": "anarq-audit-export/v1",
            "signer": self.node.identity.did,
            "signer_public_key": _b64(self.node.identity.verify_key().to_bytes()),
            "leaves": leaves,
            "tree_heads": heads,
        }

    def _head(self, row: RowMapping) -> TreeHead:
        return TreeHead(
            size=row["size"],
            root=_b64(bytes(row["root"])),
            time=row["time"],
            signer=row["signer"],
            signature=row["signature"],
            signer_key=_b64(self.node.identity.verify_key().to_bytes()),
        )

    def _may_read(self, ctx: Context, row: RowMapping) -> bool:
        return ctx.actor.kind in ("operator", "node") or (
            ctx.actor.authenticated and row["actor"] == ctx.actor.id
        )


class SecurityDesk:
    """Rate limits, lockouts, alerts and risk: Qerberos's guard at the door."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel
        settings = kernel.settings
        self.ip_limits = TokenBuckets(settings.rate_limit_ip_per_minute)
        self.identity_limits = TokenBuckets(settings.rate_limit_identity_per_minute)
        self.failures = FailureTracker(settings.lockout_failures, settings.lockout_minutes * 60.0)
        self.denials = FailureTracker(DENIALS_FOR_ANOMALY, DENIAL_WINDOW_SECONDS)

    # At the door -------------------------------------------------------------------

    def admit_address(self, address: str) -> None:
        """Refuse an address that is locked out or over its rate; before authentication."""
        locked = self.failures.locked_for(f"ip:{address}")
        if locked:
            raise RateLimited(
                "locked out after repeated failed authentication",
                retry_after_seconds=round(locked, 3),
            )
        self.ip_limits.take(address, "address")

    def admit_identity(self, did: str) -> None:
        self.identity_limits.take(did, "identity")

    def authentication_failed(self, address: str, reason: str) -> None:
        if self.failures.fail(f"ip:{address}"):
            self.raise_alert(
                "auth.lockout",
                f"ip:{address}",
                "high",
                f"{self.k.settings.lockout_failures} failed authentications; "
                f"locked out for {self.k.settings.lockout_minutes} min; last: "
                f"{reason[:200]}",
            )

    def authentication_succeeded(self, address: str) -> None:
        self.failures.succeed(f"ip:{address}")

    def note_denial(self, actor: str) -> None:
        """Many refusals for one identity in a short time is an anomaly worth an alert."""
        if self.denials.fail(actor):
            self.raise_alert(
                "access.denial_burst",
                actor,
                "medium",
                f"{DENIALS_FOR_ANOMALY} refused actions within "
                f"{int(DENIAL_WINDOW_SECONDS // 60)} minutes",
            )

    # Alerts ------------------------------------------------------------------------

    def raise_alert(self, kind: str, subject: str, severity: str, details: str) -> None:
        """Open an alert, or count one more occurrence of the same open alert."""
        a = tables.alerts
        now = self.k.clock.now()
        with self.k.db.write() as tx:
            existing = tx.execute(
                select(a.c.id).where(
                    a.c.kind == kind, a.c.subject == subject, a.c.status != "resolved"
                )
            ).scalar_one_or_none()
            if existing is not None:
                tx.execute(
                    update(a)
                    .where(a.c.id == existing)
                    .values(count=a.c.count + 1, updated_at=now, details=details)
                )
                return
            alert_id = new_id()
            tx.execute(
                insert(a).values(
                    id=alert_id,
                    kind=kind,
                    subject=subject,
                    severity=severity,
                    status="active",
                    count=1,
                    details=details,
                    created_at=now,
                    updated_at=now,
                )
            )
            self.k.bus.publish(
                tx,
                "qerberos.alert.raised",
                {"alert_id": alert_id, "kind": kind, "severity": severity},
                actor="system",
                subject=f"qerberos:alert:{alert_id}",
            )
        log.warning("security alert %s on %s: %s", kind, subject, details)

    def alerts(self, ctx: Context, status: str | None = None) -> list[Alert]:
        self.k.check(ctx, "read", "qerberos:security:*")
        a = tables.alerts
        query = select(a).order_by(a.c.updated_at.desc()).limit(EXPORT_PAGE_MAX)
        if status is not None:
            query = query.where(a.c.status == status)
        with self.k.db.read() as conn:
            return [Alert(**row) for row in conn.execute(query).mappings()]

    def set_alert_status(self, ctx: Context, alert_id: str, status: str) -> Alert:
        a = tables.alerts
        with self.k.change(ctx, "admin", f"qerberos:alert:{alert_id}") as tx:
            changed = tx.execute(
                update(a)
                .where(a.c.id == alert_id)
                .values(status=status, updated_at=self.k.clock.now())
                .returning(a.c.id)
            ).first()
            if changed is None:
                raise NotFound(f"no alert {alert_id}")
        with self.k.db.read() as conn:
            return Alert(**conn.execute(select(a).where(a.c.id == alert_id)).mappings().one())

    # Risk ----------------------------------------------------------------------------

    def risk(self, ctx: Context, subject: str) -> Risk:
        """An explainable score from the last day's refusals and the open alerts."""
        if ctx.actor.kind not in ("operator", "node") and ctx.actor.id != subject:
            self.k.check(ctx, "read", "qerberos:security:*")
        since = self.k.clock.now() - RISK_WINDOW
        e, a = tables.entries, tables.alerts
        with self.k.db.read() as conn:
            denials = int(
                conn.execute(
                    select(func.count())
                    .select_from(e)
                    .where(e.c.actor == subject, e.c.verdict == "deny", e.c.time >= since)
                ).scalar_one()
            )
            open_alerts = conn.execute(
                select(a.c.kind, a.c.severity).where(
                    a.c.subject == subject, a.c.status != "resolved"
                )
            ).all()
        reasons: list[str] = []
        score = 0
        if denials:
            score += min(RISK_DENIAL_CAP, denials * RISK_PER_DENIAL)
            reasons.append(f"{denials} refused action(s) in the last 24 h")
        for kind, severity in open_alerts:
            score += RISK_PER_ALERT.get(severity, RISK_PER_ALERT["medium"])
            reasons.append(f"open {severity} alert: {kind}")
        return Risk(subject=subject, score=min(1000, score), reasons=reasons or ["nothing unusual"])


RISK_WINDOW = timedelta(hours=24)
RISK_PER_DENIAL = 10
RISK_DENIAL_CAP = 400
RISK_PER_ALERT = {"low": 100, "medium": 200, "high": 400}
