"""Latency of `QonsentService.check(actor, action, resource)` over a table of many grants.

    python -m benchmarks.qonsent_check [--grants 100000] [--lookups 5000] [--cluster]

Loads `--grants` rows straight into `qonsent_grants` (SQLAlchemy executemany in batches,
for setup speed) plus one owner row per resource, then times `--lookups` random checks
one after another on one thread: hits through an exact grant, a folder pattern
(`qdrive:folder:<id>:*`), ownership and public grants, and misses (dead grants: expired,
revoked or used up; unrelated actors). Next to it, in the same run and interleaved in
chunks of 250, the same two lookups (same WHERE clauses, but only the columns the decision
needs) and the same decision through the bare DB-API connection (no SQLAlchemy, no pool):
the floor the service's overhead is measured against; and between the two, the same
lookups through `Database.read()` and SQLAlchemy Core with both statements built once
(expanding bind parameters) and only the needed columns. Grants made through the service
carry a signed consent receipt in the row; loaded grants carry one of the same size.

Issue goal: p99 < 1 ms at 100,000 grants on the embedded backend.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select

from anarq.kernel.guard import OPERATOR, Context
from anarq.kernel.ids import new_id
from anarq.kernel.node import Node
from anarq.qonsent import tables
from anarq.qonsent.models import PUBLIC, GrantRequest
from anarq.qonsent.service import QonsentService, covering_patterns
from benchmarks._nodes import database_megabytes, latency_summary, open_node

BATCH = 10_000
CHUNK = 250
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
ACTION_SETS = ["read"] * 5 + ["read,write"] * 2 + ["read,share", "read,write,delete", "admin"]
LOOKUP_MIX = (  # kind, share of lookups
    ("grant_hit", 0.35),
    ("pattern_hit", 0.10),
    ("owner_hit", 0.15),
    ("public_hit", 0.10),
    ("dead_grant", 0.10),
    ("unrelated_actor", 0.20),
)


# Data -------------------------------------------------------------------------------------


class Dataset:
    """Identities, resources with owners, and grants; what the lookups are drawn from."""

    def __init__(self, grants: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = datetime.now(UTC)
        rng = self.rng
        self.identities = [
            "did:key:z6Mk" + "".join(rng.choices(BASE58, k=44))
            for _ in range(max(grants // 20, 10))
        ]
        self.folders = [_token(rng, 12) for _ in range(max(grants // 50, 2))]
        self.files_in: dict[str, list[str]] = defaultdict(list)
        self.owner: dict[str, str] = {}
        for _ in range(max(grants // 2, 10)):
            if rng.random() < 0.8:
                folder = rng.choice(self.folders)
                resource = f"qdrive:folder:{folder}:file:{_token(rng, 20)}"
                self.files_in[folder].append(resource)
            else:
                resource = f"qsocial:post:{_token(rng, 20)}"
            self.owner[resource] = rng.choice(self.identities)
        self.resources = list(self.owner)
        self.grants = [self._grant() for _ in range(grants)]

    def _grant(self) -> dict[str, Any]:
        rng, now = self.rng, self.now
        draw = rng.random()
        grantee = rng.choice(self.identities)
        if draw < 0.80:
            resource, kind = rng.choice(self.resources), "exact"
        elif draw < 0.88:
            resource, kind = f"qdrive:folder:{rng.choice(self.folders)}:*", "pattern"
        elif draw < 0.8805:
            resource, kind = rng.choice(["qsocial:post:*", "qdrive:*"]), "pattern"
        elif draw < 0.998:
            resource, kind, grantee = rng.choice(self.resources), "exact", PUBLIC
        else:
            resource, kind, grantee = (
                f"qdrive:folder:{rng.choice(self.folders)}:*",
                "pattern",
                PUBLIC,
            )
        starts_at = now - timedelta(days=rng.uniform(1, 365))
        state = rng.random()
        expires_at = revoked_at = max_uses = None
        uses = 0
        if state < 0.07:
            expires_at, status = now - timedelta(hours=rng.uniform(1, 500)), "expired"
        elif state < 0.12:
            revoked_at, status = now - timedelta(hours=rng.uniform(1, 500)), "revoked"
        elif state < 0.135:
            max_uses, uses, status = 5, 5, "used_up"
        else:
            status = "live"
            if rng.random() < 0.4:
                expires_at = now + timedelta(days=rng.uniform(1, 365))
            if rng.random() < 0.03:
                max_uses, uses = 10, rng.randrange(0, 9)
        owner = self.owner.get(resource)
        return {
            "id": new_id(),
            "grantor": owner or rng.choice(self.identities),
            "grantee": grantee,
            "resource": resource,
            "actions": rng.choice(ACTION_SETS),
            "purpose": "benchmark: sharing with a collaborator",
            "starts_at": starts_at,
            "expires_at": expires_at,
            "max_uses": max_uses,
            "uses": uses,
            "conditions": {},
            "created_at": starts_at,
            "revoked_at": revoked_at,
            # Not columns: what the lookups are drawn from.
            "_kind": kind,
            "_status": status,
        }

    def owner_rows(self) -> Iterator[dict[str, Any]]:
        for resource, owner in self.owner.items():
            yield {"resource": resource, "owner": owner, "created_at": self.now}

    def lookups(self, count: int) -> list[tuple[str, str, str, str]]:
        """(kind, actor, action, resource), shuffled."""
        rng = self.rng
        live = [g for g in self.grants if g["_status"] == "live"]
        pools = {
            "grant_hit": [g for g in live if g["_kind"] == "exact" and g["grantee"] != PUBLIC],
            "pattern_hit": [
                g
                for g in live
                if g["_kind"] == "pattern" and g["resource"].startswith("qdrive:folder:")
            ],
            "public_hit": [g for g in live if g["grantee"] == PUBLIC and g["_kind"] == "exact"],
            "dead_grant": [
                g for g in self.grants if g["_status"] != "live" and g["grantee"] != PUBLIC
            ],
        }
        out: list[tuple[str, str, str, str]] = []
        for kind, share in LOOKUP_MIX:
            for _ in range(round(count * share)):
                if kind == "owner_hit":
                    resource = rng.choice(self.resources)
                    out.append(
                        (kind, self.owner[resource], rng.choice(["read", "admin"]), resource)
                    )
                elif kind == "unrelated_actor":
                    resource = rng.choice(self.resources)
                    out.append((kind, rng.choice(self.identities), "write", resource))
                elif kind == "pattern_hit":
                    grant = rng.choice(pools[kind])
                    folder = grant["resource"].split(":")[2]
                    files = self.files_in.get(folder) or [f"qdrive:folder:{folder}:file:new"]
                    out.append((kind, grant["grantee"], _action_of(grant), rng.choice(files)))
                elif kind == "public_hit":
                    grant = rng.choice(pools[kind])
                    actor = rng.choice(self.identities)
                    out.append((kind, actor, _action_of(grant), grant["resource"]))
                else:
                    grant = rng.choice(pools[kind])
                    out.append((kind, grant["grantee"], _action_of(grant), grant["resource"]))
        rng.shuffle(out)
        return out


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=length))


def _action_of(grant: dict[str, Any]) -> str:
    held = grant["actions"].split(",")
    return "read" if held == ["admin"] else held[-1]


def sample_receipt(node: Node) -> str | None:
    """The signed consent receipt of one grant made through the service, that grant removed.

    Grants made through `grant()` carry their receipt in the row, and `check` reads whole
    rows: every loaded grant carries a receipt of the same size (same text; never verified).
    """
    if "receipt" not in tables.grants.c:
        return None
    service: QonsentService = node.service("qonsent")
    request = GrantRequest(
        grantee="did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        resource="qdrive:folder:sample:file:sample",
        actions=["read"],
        purpose="benchmark: sharing with a collaborator",
    )
    grant = service.grant(Context(actor=OPERATOR), request)
    g = tables.grants
    with node.kernel.db.write() as tx:
        receipt: str = tx.execute(select(g.c.receipt).where(g.c.id == grant.id)).scalar_one()
        tx.execute(delete(g).where(g.c.id == grant.id))
    return receipt


def load(node: Node, data: Dataset) -> dict[str, Any]:
    columns = [c.name for c in tables.grants.columns]
    receipt = sample_receipt(node)
    if receipt is not None:
        for grant in data.grants:
            grant["receipt"] = receipt
    started = time.perf_counter()
    with node.kernel.db.write() as tx:
        owners = list(data.owner_rows())
        for start in range(0, len(owners), BATCH):
            tx.execute(insert(tables.owners), owners[start : start + BATCH])
    for start in range(0, len(data.grants), BATCH):
        rows = [{c: g.get(c) for c in columns} for g in data.grants[start : start + BATCH]]
        with node.kernel.db.write() as tx:
            tx.execute(insert(tables.grants), rows)
    seconds = time.perf_counter() - started
    with node.kernel.db.read() as conn:
        count = conn.execute(select(func.count()).select_from(tables.grants)).scalar_one()
    assert count == len(data.grants), (count, len(data.grants))
    return {
        "load_seconds": round(seconds, 2),
        "grants_loaded": count,
        "owners": len(owners),
        "receipt_bytes_per_grant": len(receipt) if receipt is not None else 0,
    }


# Timing -----------------------------------------------------------------------------------


def time_service(
    service: QonsentService, lookups: list[tuple[str, str, str, str]]
) -> tuple[list[float], list[bool]]:
    durations: list[float] = []
    allowed: list[bool] = []
    clock = time.perf_counter
    for _kind, actor, action, resource in lookups:
        started = clock()
        decision = service.check(actor, action, resource)
        durations.append(clock() - started)
        allowed.append(decision.allowed)
    return durations, allowed


_G = tables.grants
_OWNER = select(tables.owners.c.owner).where(tables.owners.c.resource == bindparam("resource"))
_GRANTS = (
    select(_G.c.actions, _G.c.max_uses, _G.c.uses)
    .where(
        _G.c.grantee.in_(bindparam("grantees", expanding=True)),
        _G.c.resource.in_(bindparam("patterns", expanding=True)),
        _G.c.revoked_at.is_(None),
        _G.c.starts_at <= bindparam("now"),
        or_(_G.c.expires_at.is_(None), _G.c.expires_at > bindparam("now")),
    )
    .order_by(_G.c.created_at)
)


def time_prebuilt(
    node: Node, lookups: list[tuple[str, str, str, str]]
) -> tuple[list[float], list[bool]]:
    """The same lookups through `Database.read()` and SQLAlchemy Core, but with the two
    statements built once (expanding bind parameters) and only the columns needed."""
    db, clock_now = node.kernel.db, node.kernel.clock.now
    durations: list[float] = []
    allowed: list[bool] = []
    clock = time.perf_counter
    for _kind, actor, action, resource in lookups:
        started = clock()
        now = clock_now()
        with db.read() as conn:
            ok = conn.execute(_OWNER, {"resource": resource}).scalar_one_or_none() == actor
            if not ok:
                rows = conn.execute(
                    _GRANTS,
                    {
                        "grantees": [actor, PUBLIC],
                        "patterns": covering_patterns(resource),
                        "now": now,
                    },
                ).all()
                for actions, max_uses, uses in rows:
                    held = actions.split(",")
                    if (action in held or "admin" in held) and (
                        max_uses is None or uses < max_uses
                    ):
                        ok = True
                        break
        durations.append(clock() - started)
        allowed.append(ok)
    return durations, allowed


def time_raw_driver(
    node: Node, lookups: list[tuple[str, str, str, str]]
) -> tuple[list[float], list[bool]]:
    """The same two queries and decision on the bare DB-API connection, held open."""
    sqlite = node.kernel.db.dialect == "sqlite"
    mark = "?" if sqlite else "%s"
    owner_sql = f"SELECT owner FROM qonsent_owners WHERE resource = {mark}"
    raw = node.kernel.db.engine.raw_connection()
    try:
        if not sqlite:
            raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        cursor = raw.cursor()
        durations: list[float] = []
        allowed: list[bool] = []
        clock = time.perf_counter
        for _kind, actor, action, resource in lookups:
            started = clock()
            patterns = covering_patterns(resource)
            grants_sql = (
                "SELECT actions, max_uses, uses FROM qonsent_grants"
                f" WHERE grantee IN ({mark}, {mark})"
                f" AND resource IN ({', '.join([mark] * len(patterns))})"
                f" AND revoked_at IS NULL AND starts_at <= {mark}"
                f" AND (expires_at IS NULL OR expires_at > {mark}) ORDER BY created_at"
            )
            now: Any = datetime.now(UTC)
            if sqlite:
                now = now.replace(tzinfo=None).isoformat(" ", "microseconds")
                cursor.execute("BEGIN")
            cursor.execute(owner_sql, (resource,))
            row = cursor.fetchone()
            ok = row is not None and row[0] == actor
            if not ok:
                cursor.execute(grants_sql, (actor, PUBLIC, *patterns, now, now))
                for actions, max_uses, uses in cursor.fetchall():
                    held = actions.split(",")
                    if (action in held or "admin" in held) and (
                        max_uses is None or uses < max_uses
                    ):
                        ok = True
                        break
            if sqlite:
                cursor.execute("COMMIT")
            durations.append(clock() - started)
            allowed.append(ok)
        cursor.close()
    finally:
        raw.close()
    return durations, allowed


def figures(
    lookups: list[tuple[str, str, str, str]], durations: list[float], allowed: list[bool]
) -> dict[str, Any]:
    total = sum(durations)
    result: dict[str, Any] = {
        **latency_summary(durations),
        "checks_per_second": round(len(durations) / total, 1),
        "allowed": sum(allowed),
        "by_kind": {},
    }
    for kind, _share in LOOKUP_MIX:
        picked = [i for i, lookup in enumerate(lookups) if lookup[0] == kind]
        summary = latency_summary([durations[i] for i in picked])
        result["by_kind"][kind] = {
            "count": len(picked),
            "allowed": sum(allowed[i] for i in picked),
            "p50_us": summary["p50_us"],
            "p99_us": summary["p99_us"],
        }
    return result


def run_backend(backend: str, grants: int, lookups: int, seed: int) -> dict[str, Any]:
    data = Dataset(grants, seed)
    checks = data.lookups(lookups)
    warmup = data.lookups(max(lookups // 10, 100))
    with open_node(backend) as node:
        numbers: dict[str, Any] = load(node, data)
        numbers["database_mb"] = database_megabytes(node)
        service: QonsentService = node.service("qonsent")
        time_service(service, warmup)
        time_prebuilt(node, warmup)
        time_raw_driver(node, warmup)
        Timer = Callable[[list[tuple[str, str, str, str]]], tuple[list[float], list[bool]]]
        timers: dict[str, Timer] = {
            "service": lambda chunk: time_service(service, chunk),
            "prebuilt_statements": lambda chunk: time_prebuilt(node, chunk),
            "raw_driver": lambda chunk: time_raw_driver(node, chunk),
        }
        durations: dict[str, list[float]] = {name: [] for name in timers}
        allowed: dict[str, list[bool]] = {name: [] for name in timers}
        # Interleaved in chunks, so that noise from other work on the machine falls on
        # all alike and the ratios stay meaningful.
        for start in range(0, len(checks), CHUNK):
            chunk = checks[start : start + CHUNK]
            for name, timer in timers.items():
                seconds, verdicts = timer(chunk)
                durations[name] += seconds
                allowed[name] += verdicts
    for name in timers:
        numbers[name] = figures(checks, durations[name], allowed[name])
    numbers["decisions_agree"] = (
        allowed["service"] == allowed["raw_driver"] == allowed["prebuilt_statements"]
    )
    for name in ("prebuilt_statements", "raw_driver"):
        for key in ("p50_us", "p99_us"):
            numbers[f"service_over_{name}_{key.removesuffix('_us')}"] = round(
                numbers["service"][key] / numbers[name][key], 2
            )
    numbers["goal_p99_under_1ms"] = numbers["service"]["p99_us"] < 1000
    return numbers


def run(grants: int, lookups: int, cluster: bool, seed: int = 7) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "qonsent_check",
        "grants": grants,
        "lookups": lookups,
        "lookup_mix": dict(LOOKUP_MIX),
        "seed": seed,
        "cpus": os.cpu_count(),
        "backends": {},
    }
    for backend in ["embedded", "cluster"] if cluster else ["embedded"]:
        results["backends"][backend] = run_backend(backend, grants, lookups, seed)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="Also run on PostgreSQL + NATS (must be reachable on loopback).",
    )
    args = parser.parse_args()
    print(json.dumps(run(args.grants, args.lookups, args.cluster, args.seed), indent=2))


if __name__ == "__main__":
    main()
