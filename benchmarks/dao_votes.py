"""DAO: signed votes verified and stored per second, and the time to count them.

    python -m benchmarks.dao_votes [--voters 100000] [--batch 1000] [--cluster]

A token DAO on a migrated node: `--voters` holders of a token (each a fresh Ed25519
did:key, its balance opened and minted through the ledger), one proposal (its signed
snapshot of all their voting power). Every voter's ballot is signed beforehand, as their
own clients would (not timed). Then:
- `ingest`: the ballots go through `DaoService.votes` in batches of `--batch` (the path of
  `POST /dao/proposals/{id}/votes/batch` without HTTP), by one node process or split among
  `--workers` processes on the same backend (as a deployment's workers share one
  database): each is checked — format, the
  choice, the Ed25519 signature over its RFC 8785 form, the voter's power at the
  snapshot, one vote each — and the batch is stored in one transaction.
- `tally`: `DaoService.tally`, the count the node gives (reading every vote).
- `offline`: `voting.tally_offline` on the exported ballots, as anyone can: the node's
  snapshot signature and every vote's signature checked again, then counted.
Figures: votes/s at ingest (goal ≥ 10,000), tally seconds (goal < 1 s), offline seconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from anarq.dao import voting
from anarq.dao.models import DaoCreate, Params, ProposalCreate
from anarq.dao.service import DaoService
from anarq.kernel.clock import rfc3339
from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.qlock import SigningKey
from anarq.qwallet.ledger import AccountFlags, TransferIn
from anarq.qwallet.models import IssueRequest
from anarq.qwallet.service import WalletService
from anarq.squid import documents
from anarq.squid.didkey import did_from_ed25519
from anarq.squid.models import Registration
from benchmarks._nodes import open_node

SYSTEM = Context.system()
BATCH = 8190


def _holders(wallet: WalletService, count: int) -> list[tuple[str, SigningKey]]:
    """`count` token holders with real keys, each given 1 to 1,000 units of VOTE."""
    wallet.issue(SYSTEM, IssueRequest(code="VOTE", name="votes", scale=0))
    issuance = wallet.asset("VOTE").issuance_account
    people = []
    for _ in range(count):
        key = SigningKey.generate(hybrid=False)
        people.append((did_from_ed25519(key.verify_key.ed25519_bytes()), key))
    flags = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    rng = random.Random(2026)
    for start in range(0, count, BATCH):
        chunk = people[start : start + BATCH]
        with wallet.k.db.write() as tx:
            accounts = [wallet._open(tx, did, "VOTE", "main", flags) for did, _ in chunk]
        grants = [TransferIn(f"give-{a}", issuance, a, rng.randint(1, 1000)) for a in accounts]
        assert all(r == "ok" for r, _ in wallet.apply(SYSTEM, grants))
    return people


def _ingest(
    daos: DaoService, ctx: Context, proposal: str, ballots: list[dict[str, Any]], batch: int
) -> None:
    for start in range(0, len(ballots), batch):
        result = daos.votes(ctx, proposal, ballots[start : start + batch])
        assert not result.refused, result.refused[:3]


def _worker(
    settings: Settings,
    actor: str,
    proposal: str,
    path: str,
    batch: int,
    ready: Any,
    go: Any,
    done: Any,
) -> None:
    """A second node process on the same backend, as a deployment's workers are."""
    node = Node.open(settings)
    try:
        ballots = json.loads(Path(path).read_text())
        daos: DaoService = node.service("dao")
        daos.tally(proposal)  # connections and caches warm, as a serving worker's are
        ready.put(True)
        go.wait()
        _ingest(daos, Context(actor=Actor(id=actor, kind="identity")), proposal, ballots, batch)
        done.put(time.perf_counter())
    finally:
        node.close()


def _ingest_in_workers(
    node: Node,
    ctx: Context,
    proposal: str,
    ballots: list[dict[str, Any]],
    batch: int,
    workers: int,
) -> float:
    """Ingest the ballots split among `workers` processes; seconds from start to the last."""
    spawn = multiprocessing.get_context("spawn")
    ready, done, go = spawn.Queue(), spawn.Queue(), spawn.Event()
    with tempfile.TemporaryDirectory(prefix="anarq-votes-") as folder:
        processes = []
        for n in range(workers):
            path = Path(folder) / f"ballots-{n}.json"
            path.write_text(json.dumps(ballots[n::workers]))
            process = spawn.Process(
                target=_worker,
                args=(
                    node.kernel.settings,
                    ctx.actor.id,
                    proposal,
                    str(path),
                    batch,
                    ready,
                    go,
                    done,
                ),
            )
            process.start()
            processes.append(process)
        for _ in processes:
            ready.get(timeout=300)
        started = time.perf_counter()
        go.set()
        finished = max(done.get(timeout=600) for _ in processes)
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0, process.exitcode
    return float(finished - started)


def run_backend(backend: str, voters: int, batch: int, workers: int) -> dict[str, Any]:
    with open_node(backend) as node:
        daos: DaoService = node.service("dao")
        wallet: WalletService = node.service("qwallet")
        people = _holders(wallet, voters)
        founder_key = people[0][1]
        founder = Context(actor=Actor(id=people[0][0], kind="identity"))
        node.service("squid").register(founder, Registration(name="founder"))
        params = Params(voting_period_seconds=3600, timelock_seconds=0)
        dao = daos.create(
            founder, DaoCreate(name="Bench", membership="token", token="VOTE", params=params)
        )
        started = time.perf_counter()
        proposal = daos.propose(founder, dao.did, ProposalCreate(title="Spend", voting="single"))
        propose_s = time.perf_counter() - started
        rng = random.Random(7)
        now = rfc3339(node.kernel.clock.now())
        ballots = [
            documents.sign(
                voting.vote_document(
                    dao=dao.did,
                    proposal=proposal.id,
                    voter=did,
                    choice=rng.choice([0, 0, 1, 2]),
                    issued_at=now,
                ),
                key,
            )
            for did, key in people
        ]
        assert founder_key is people[0][1]
        if workers == 1:
            started = time.perf_counter()
            _ingest(daos, founder, proposal.id, ballots, batch)
            ingest_s = time.perf_counter() - started
        else:
            ingest_s = _ingest_in_workers(node, founder, proposal.id, ballots, batch, workers)
        started = time.perf_counter()
        counted = daos.tally(proposal.id)
        tally_s = time.perf_counter() - started
        exported = json.loads(json.dumps(daos.ballots(proposal.id)))
        started = time.perf_counter()
        again, problems = voting.tally_offline(exported)
        offline_s = time.perf_counter() - started
        assert problems == [] and again.as_json() == counted.as_json()
        assert counted.voters == voters
        return {
            "voters": voters,
            "propose_s": round(propose_s, 2),
            "ingest_votes_per_s": round(voters / ingest_s),
            "ingest_s": round(ingest_s, 2),
            "tally_s": round(tally_s, 3),
            "offline_recount_s": round(offline_s, 2),
            "offline_votes_per_s": round(voters / offline_s),
            "workers": workers,
            "passed": counted.passed,
        }


def run(voters: int, batch: int, cluster: bool, workers: int = 1) -> dict[str, Any]:
    backends = ["embedded", "cluster"] if cluster else ["embedded"]
    return {
        "benchmark": "dao_votes",
        "batch": batch,
        "backends": {b: run_backend(b, voters, batch, workers) for b in backends},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="Node processes ingesting.")
    parser.add_argument("--cluster", action="store_true", help="Also on PostgreSQL + NATS.")
    args = parser.parse_args()
    print(json.dumps(run(args.voters, args.batch, args.cluster, args.workers), indent=2))


if __name__ == "__main__":
    main()
