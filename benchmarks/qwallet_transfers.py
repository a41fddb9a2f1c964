"""Qwallet: transfers per second through the ledger, in batches of 8,190.

    python -m benchmarks.qwallet_transfers [--accounts 10000] [--batches 12] [--cluster]

A migrated node on each backend; an asset without fees and `--accounts` accounts (no
overdraft), each funded by a mint. Then `--batches` batches of 8,190 transfers go through
`WalletService.apply` (the same path as `POST /qwallet/batches`, without HTTP): every
transfer is checked (ids, accounts, asset, flags, balances), the batch's transfers,
balances and audit record are written in one transaction, and it commits (SQLite: WAL,
synchronous=FULL; PostgreSQL: the ledger's advisory lock, COPY for the transfer rows).

Workloads: `uniform` (random distinct debit and credit accounts) and `hot` (90 % of the
transfers have one hot account on one side, the other 10 % uniform). Reported beside
them, in the same run: the `ceiling`, the same transfer rows bulk-inserted into a bare
SQLite table with the ledger's indexes (executemany, one transaction per batch, the same
pragmas), with no logic at all.
Figures: transfers/s over all batches, and p50/p99 batch commit latency in ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from anarq.kernel.guard import Context
from anarq.qwallet.ledger import AccountFlags, TransferIn
from anarq.qwallet.models import IssueRequest
from anarq.qwallet.service import WalletService
from anarq.qwallet.store import transfer_row
from benchmarks._nodes import latency_summary, open_node

BATCH = 8190
SYSTEM = Context.system()
FUNDING = 10**12


def _accounts(wallet: WalletService, count: int) -> list[int]:
    flags = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    with wallet.k.db.write() as tx:
        return [
            wallet._open(tx, f"did:key:zBench{i}", "BENCH", "main", flags) for i in range(count)
        ]


def _fund(wallet: WalletService, accounts: list[int], issuance: int) -> None:
    for start in range(0, len(accounts), BATCH):
        batch = [
            TransferIn(f"fund-{a}", issuance, a, FUNDING) for a in accounts[start : start + BATCH]
        ]
        results = wallet.apply(SYSTEM, batch)
        assert all(r == "ok" for r, _ in results), results[:3]


def _batches(
    accounts: list[int], batches: int, hot: bool, tag: str, rng: random.Random
) -> list[list[TransferIn]]:
    made = []
    serial = 0
    hot_account = accounts[0]
    for _ in range(batches):
        batch = []
        for _ in range(BATCH):
            debit, credit = rng.sample(accounts, 2)
            if hot and rng.random() < 0.9:
                if rng.random() < 0.5:
                    debit = hot_account
                else:
                    credit = hot_account
                if debit == credit:
                    credit = accounts[1] if debit == hot_account else hot_account
            serial += 1
            batch.append(TransferIn(f"{tag}-{serial}", debit, credit, rng.randint(1, 1000)))
        made.append(batch)
    return made


def _run(wallet: WalletService, batches: list[list[TransferIn]]) -> tuple[dict[str, Any], list]:
    took = []
    rows = []
    started = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        results = wallet.apply(SYSTEM, batch)
        took.append(time.perf_counter() - t0)
        failed = [r for r, _ in results if r != "ok"]
        assert not failed, failed[:3]
        rows.append([transfer_row(made) for _, made in results if made is not None])
    elapsed = time.perf_counter() - started
    total = sum(len(b) for b in batches)
    summary = {"transfers": total, "transfers_per_s": round(total / elapsed)}
    summary.update(
        {k: v for k, v in latency_summary(took, "ms").items() if k[:3] in ("p50", "p99")}
    )
    return summary, rows


_CEILING_SCHEMA = """
CREATE TABLE t (timestamp INTEGER PRIMARY KEY, id VARCHAR(64) NOT NULL,
  debit_account BIGINT NOT NULL, credit_account BIGINT NOT NULL, amount VARCHAR(40) NOT NULL,
  asset VARCHAR(16) NOT NULL, pending_id VARCHAR(64), flags INTEGER NOT NULL,
  timeout INTEGER NOT NULL, hashlock VARCHAR(64), code INTEGER NOT NULL, memo VARCHAR(140),
  actor VARCHAR(200) NOT NULL);
CREATE UNIQUE INDEX t_id ON t (id);
CREATE INDEX t_debit ON t (debit_account, timestamp);
CREATE INDEX t_credit ON t (credit_account, timestamp);
"""


def _ceiling(batches: list[list[tuple[Any, ...]]]) -> dict[str, Any]:
    """The same rows into a bare SQLite table: no checks, no balances, no audit."""
    with tempfile.TemporaryDirectory(prefix="anarq-ceiling-") as folder:
        conn = sqlite3.connect(Path(folder) / "ceiling.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_CEILING_SCHEMA)
        took = []
        started = time.perf_counter()
        for rows in batches:
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO t VALUES ({', '.join('?' * 13)})", rows)
            conn.execute("COMMIT")
            took.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        conn.close()
    total = sum(len(r) for r in batches)
    summary = {"transfers": total, "transfers_per_s": round(total / elapsed)}
    summary.update(
        {k: v for k, v in latency_summary(took, "ms").items() if k[:3] in ("p50", "p99")}
    )
    return summary


def run_backend(backend: str, accounts: int, batches: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    with open_node(backend) as node:
        wallet: WalletService = node.service("qwallet")
        wallet.issue(SYSTEM, IssueRequest(code="BENCH", name="bench", scale=2))
        issuance = wallet.asset("BENCH").issuance_account
        ids = _accounts(wallet, accounts)
        _fund(wallet, ids, issuance)
        _run(wallet, _batches(ids, 1, False, "warm", rng))  # first-batch costs out of the way
        uniform, rows = _run(wallet, _batches(ids, batches, False, "u", rng))
        hot, _ = _run(wallet, _batches(ids, batches, True, "h", rng))
        books = wallet.verify_books(SYSTEM)
        assert books.ok, books.problems[:5]
    result: dict[str, Any] = {"uniform": uniform, "hot": hot}
    result["hot_to_uniform"] = round(hot["transfers_per_s"] / uniform["transfers_per_s"], 2)
    if backend == "embedded":
        ceiling = _ceiling(rows)
        result["ceiling_sqlite"] = ceiling
        result["uniform_to_ceiling"] = round(
            uniform["transfers_per_s"] / ceiling["transfers_per_s"], 2
        )
    return result


def run(accounts: int, batches: int, cluster: bool, seed: int = 2026) -> dict[str, Any]:
    backends = ["embedded", "cluster"] if cluster else ["embedded"]
    return {
        "benchmark": "qwallet_transfers",
        "batch": BATCH,
        "accounts": accounts,
        "batches": batches,
        **{b: run_backend(b, accounts, batches, seed) for b in backends},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--cluster", action="store_true", help="Also on PostgreSQL.")
    args = parser.parse_args()
    print(json.dumps(run(args.accounts, args.batches, args.cluster), indent=2))


if __name__ == "__main__":
    main()
