"""Qerberos audit log: appends/s, integrations/s, and proof generation time on a big tree.

    python -m benchmarks.audit_log [--appends 50000] [--entries 1000000] [--proofs 300]
                                   [--cluster]

(a) Appends: `--appends` entries recorded through `QerberosService.record(ctx, action,
    resource, verdict, tx)` in write transactions of 1,000 entries each (as a change and
    its audit record share one). Interleaved with it, transaction by transaction, two
    yardsticks write as many identical rows: one prebuilt parameterized INSERT per entry,
    and one executemany per transaction. Then `integrate()` in batches of 10,000 (leaf
    indexes, Merkle tree nodes, a signed tree head per batch) over all of them. Timed
    separately and combined.
(b) Proofs: the log is topped up to `--entries` leaves by inserting entry rows directly
    (executemany of 20,000, for setup speed; the leaf text is built as `record` builds
    it), each batch integrated through the service in batches of 10,000 before the next.
    Then `--proofs` random inclusion proofs (`inclusion(ctx, seq)`: entry, latest head,
    audit path) and consistency proofs (`consistency(old, latest)`) are timed through the
    service, and the Merkle part alone (the same proof over the stored subtrees, on one
    read connection) next to it. Every inclusion proof is checked against the signed
    root, untimed.

Issue goal: at least 10,000 appends/s batched.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select

from anarq.kernel.clock import rfc3339
from anarq.kernel.guard import Actor, Context, Verdict
from anarq.kernel.ids import new_id
from anarq.kernel.node import Node
from anarq.qerberos import merkle, tables
from anarq.qerberos.service import FIELD_MAX, QerberosService, canonical_leaf
from anarq.qerberos.store import DatabaseNodeStore
from benchmarks._nodes import database_megabytes, latency_summary, open_node

RECORD_TX = 1_000
INTEGRATE_BATCH = 10_000
BULK_BATCH = 20_000
ACTIONS = ("read", "write", "delete", "share", "admin", "execute")


def _actor(rng: random.Random) -> str:
    return f"did:key:z6Mk{rng.getrandbits(200):050x}"[:56]


def _resource(rng: random.Random) -> str:
    return f"qdrive:file:{rng.getrandbits(120):030x}"


# (a) appends and integration -------------------------------------------------------------


def _entry_row(
    node: Node, ctx: Context, action: str, resource: str, verdict: str
) -> dict[str, Any]:
    """The row `QerberosService.record` inserts, built the same way."""
    moment = node.kernel.clock.now()
    fields = {
        "time": rfc3339(moment),
        "actor": ctx.actor.id[:FIELD_MAX],
        "action": action,
        "resource": resource[:FIELD_MAX],
        "verdict": verdict,
        "request_id": ctx.request_id[:64],
    }
    return {**fields, "time": moment, "leaf": canonical_leaf(fields)}


def time_appends(node: Node, count: int, seed: int) -> dict[str, Any]:
    """`count` entries through `record`, and as many through each yardstick, interleaved.

    Yardsticks, same rows and transactions: `parameterized` executes one prebuilt INSERT
    per entry with the row as parameters; `executemany` buffers the transaction's 1,000
    rows and inserts them with one executemany at its end.
    """
    service: QerberosService = node.service("qerberos")
    rng = random.Random(seed)
    actors = [Actor(id=_actor(rng), kind="identity") for _ in range(1_000)]
    statement = insert(tables.entries)
    seconds = dict.fromkeys(("record", "parameterized", "executemany"), 0.0)
    for start in range(0, count, RECORD_TX):
        size = min(RECORD_TX, count - start)
        for variant in seconds:
            started = time.perf_counter()
            with node.kernel.db.write() as tx:
                rows = []
                for _ in range(size):
                    ctx = Context(actor=rng.choice(actors))
                    verdict: Verdict = "allow" if rng.random() < 0.95 else "deny"
                    action, resource = rng.choice(ACTIONS), _resource(rng)
                    if variant == "record":
                        service.record(ctx, action, resource, verdict, tx)
                    elif variant == "parameterized":
                        tx.execute(statement, _entry_row(node, ctx, action, resource, verdict))
                    else:
                        rows.append(_entry_row(node, ctx, action, resource, verdict))
                if rows:
                    tx.execute(statement, rows)
            seconds[variant] += time.perf_counter() - started
    total = count * len(seconds)
    service.node.identity.signing_key()  # the node key is made once, outside the timing
    integrations = 0
    started = time.perf_counter()
    while service.integrate(INTEGRATE_BATCH) is not None:
        integrations += 1
    integrate_seconds = time.perf_counter() - started
    assert service.tree_head().size == total
    record_rate = count / seconds["record"]
    integrate_rate = total / integrate_seconds
    return {
        "entries": count,
        "record_tx_entries": RECORD_TX,
        "integrate_batch": INTEGRATE_BATCH,
        "record_seconds": round(seconds["record"], 2),
        "appends_per_second": round(record_rate),
        "yardstick_parameterized_per_second": round(count / seconds["parameterized"]),
        "yardstick_executemany_per_second": round(count / seconds["executemany"]),
        "record_over_parameterized": round(seconds["parameterized"] / seconds["record"], 3),
        "record_over_executemany": round(seconds["executemany"] / seconds["record"], 3),
        "integrated_leaves": total,
        "integrate_seconds": round(integrate_seconds, 2),
        "integrations": integrations,
        "integrations_per_second": round(integrations / integrate_seconds, 2),
        "leaves_integrated_per_second": round(integrate_rate),
        # Appending then integrating one entry: the sustained rate of the whole log.
        "combined_entries_per_second": round(1 / (1 / record_rate + 1 / integrate_rate)),
        "goal_10k_appends_per_second": record_rate >= 10_000,
    }


# (b) a big tree and its proofs -------------------------------------------------------------


def top_up(node: Node, target: int, seed: int) -> dict[str, Any]:
    """Insert entry rows directly until `target` exist, integrating them via the service.

    Each bulk batch is integrated before the next is inserted, so the backlog stays small
    as under the background integrator (which runs every second).
    """
    service: QerberosService = node.service("qerberos")
    rng = random.Random(seed + 1)
    actors = [_actor(rng) for _ in range(1_000)]
    with node.kernel.db.read() as conn:
        present = conn.execute(select(func.count()).select_from(tables.entries)).scalar_one()
    missing = max(target - present, 0)
    insert_seconds = integrate_seconds = 0.0
    for start in range(0, missing, BULK_BATCH):
        started = time.perf_counter()
        moment = datetime.now(UTC)
        stamp = rfc3339(moment)
        rows = []
        for _ in range(min(BULK_BATCH, missing - start)):
            fields = {
                "time": stamp,
                "actor": rng.choice(actors),
                "action": rng.choice(ACTIONS),
                "resource": _resource(rng),
                "verdict": "allow",
                "request_id": new_id(),
            }
            rows.append({**fields, "time": moment, "leaf": canonical_leaf(fields)})
        with node.kernel.db.write() as tx:
            tx.execute(insert(tables.entries), rows)
        insert_seconds += time.perf_counter() - started
        started = time.perf_counter()
        while service.integrate(INTEGRATE_BATCH) is not None:
            pass
        integrate_seconds += time.perf_counter() - started
    size = service.tree_head().size
    assert size == target, (size, target)
    return {
        "bulk_inserted": missing,
        "bulk_batch": BULK_BATCH,
        "bulk_insert_seconds": round(insert_seconds, 1),
        "integrate_seconds": round(integrate_seconds, 1),
        "leaves_integrated_per_second": round(missing / integrate_seconds) if missing else None,
    }


def time_proofs(node: Node, proofs: int, seed: int) -> dict[str, Any]:
    service: QerberosService = node.service("qerberos")
    ctx = Context.system()
    rng = random.Random(seed + 2)
    head = service.tree_head()
    size, root = head.size, base64.b64decode(head.root)
    e = tables.entries
    with node.kernel.db.read() as conn:
        low, high = conn.execute(select(func.min(e.c.seq), func.max(e.c.seq))).one()
    seqs = [rng.randint(low, high) for _ in range(proofs)]
    old_sizes = [rng.randint(1, size - 1) for _ in range(proofs)]
    for seq, old in zip(seqs[:20], old_sizes[:20], strict=True):  # warm-up
        service.inclusion(ctx, seq)
        service.consistency(old, size)

    clock = time.perf_counter
    inclusion: list[float] = []
    inclusion_proofs = []
    for seq in seqs:
        started = clock()
        proof = service.inclusion(ctx, seq)
        inclusion.append(clock() - started)
        inclusion_proofs.append(proof)
    consistency: list[float] = []
    for old in old_sizes:
        started = clock()
        service.consistency(old, size)
        consistency.append(clock() - started)

    # The Merkle part alone: the same proofs over the stored subtrees, one read connection.
    merkle_inclusion: list[float] = []
    merkle_consistency: list[float] = []
    with node.kernel.db.read() as conn:
        store = DatabaseNodeStore(conn, size)
        for proof in inclusion_proofs:
            started = clock()
            merkle.inclusion_proof(store, proof.leaf_index, size)
            merkle_inclusion.append(clock() - started)
        for old in old_sizes:
            started = clock()
            merkle.consistency_proof(store, old, size)
            merkle_consistency.append(clock() - started)

    # Untimed: every inclusion proof holds against the signed root.
    for proof in inclusion_proofs:
        path = [base64.b64decode(step) for step in proof.proof]
        leaf = base64.b64decode(proof.leaf_hash)
        assert merkle.verify_inclusion(leaf, proof.leaf_index, size, path, root)
    hashes = [len(p.proof) for p in inclusion_proofs]
    return {
        "tree_size": size,
        "proofs": proofs,
        "inclusion_hashes_mean": round(sum(hashes) / len(hashes), 1),
        "service_inclusion": _ms(inclusion),
        "service_consistency": _ms(consistency),
        "merkle_only_inclusion": _ms(merkle_inclusion),
        "merkle_only_consistency": _ms(merkle_consistency),
        "all_inclusion_proofs_verify": True,
    }


def _ms(durations: list[float]) -> dict[str, float]:
    summary = latency_summary(durations, "ms")
    return {
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "max_ms": summary["max_ms"],
        "per_second": round(len(durations) / sum(durations), 1),
    }


def run_backend(backend: str, appends: int, entries: int, proofs: int, seed: int) -> dict[str, Any]:
    with open_node(backend) as node:
        numbers: dict[str, Any] = {"appends": time_appends(node, appends, seed)}
        numbers["tree_build"] = top_up(node, max(entries, appends), seed)
        numbers["tree_build"]["database_mb"] = database_megabytes(node)
        numbers["proofs"] = time_proofs(node, proofs, seed)
    return numbers


def run(appends: int, entries: int, proofs: int, cluster: bool, seed: int = 7) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "audit_log",
        "appends": appends,
        "entries": entries,
        "proofs": proofs,
        "seed": seed,
        "cpus": os.cpu_count(),
        "backends": {},
    }
    for backend in ["embedded", "cluster"] if cluster else ["embedded"]:
        started = time.perf_counter()
        results["backends"][backend] = run_backend(backend, appends, entries, proofs, seed)
        results["backends"][backend]["wall_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=50_000, help="entries for part (a)")
    parser.add_argument("--entries", type=int, default=1_000_000, help="tree size for proofs")
    parser.add_argument("--proofs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="Also run on PostgreSQL + NATS (must be reachable on loopback).",
    )
    args = parser.parse_args()
    print(
        json.dumps(run(args.appends, args.entries, args.proofs, args.cluster, args.seed), indent=2)
    )


if __name__ == "__main__":
    main()
