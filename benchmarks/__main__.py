"""Run every benchmark with its defaults and print their JSON documents."""

from __future__ import annotations

import json

from benchmarks import (
    audit_log,
    http_overhead,
    qindex_search,
    qlock_ops,
    qmask_pii,
    qonsent_check,
)


def main() -> None:
    print(json.dumps(http_overhead.run(seconds=10, connections=32, cluster=True), indent=2))
    print(json.dumps(qonsent_check.run(grants=100_000, lookups=5_000, cluster=True), indent=2))
    print(
        json.dumps(
            audit_log.run(appends=50_000, entries=1_000_000, proofs=300, cluster=True), indent=2
        )
    )
    print(json.dumps(qlock_ops.run(seconds=0.5, rounds=5, payload_bytes=1024), indent=2))
    print(json.dumps(qmask_pii.run(samples=5000, seed=2026, rounds=3), indent=2))
    print(
        json.dumps(
            qindex_search.run(documents=100_000, queries=400, batch=500, cluster=True), indent=2
        )
    )


if __name__ == "__main__":
    main()
