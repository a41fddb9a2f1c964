"""Verifiable credentials: issuances and verifications per second.

    python -m benchmarks.vc_credentials [--count 2000] [--threads 2] [--cluster]

A migrated node on each backend and `--count` registered identities (Ed25519 did:keys).
- `node_issue`: `VcService.issue` (the path of `POST /vc/issue` without HTTP) of a
  did-control credential to each identity: a status entry allocated, the credential built
  and signed (eddsa-jcs-2022, the node's Ed25519 key), stored, its event and audit
  records written, in one transaction; `--threads` callers at once.
- `hand_over`: identities' own credentials (signed beforehand, as on their devices) handed
  to the node with `VcService.store`: each verified, its status entry checked, stored.
- `verify_online`: `VcService.verify` of each credential: proof, validity and the status
  list read from the database and verified too.
- `verify_offline`: `credentials.verify_credential` with the status list at hand, as a
  relying party with no node does.
Figures: credentials/s per phase (goal ≥ 100 issuances/s).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.qlock import SigningKey
from anarq.squid.didkey import did_from_ed25519
from anarq.squid.models import Registration
from anarq.vc import credentials as vcs
from anarq.vc.models import IssueRequest, VerifyRequest
from anarq.vc.service import VcService
from benchmarks._nodes import open_node


def _people(node: Node, count: int) -> list[tuple[Context, bytes]]:
    squid = node.service("squid")
    people = []
    for n in range(count):
        key = SigningKey.generate(hybrid=False)
        did = did_from_ed25519(key.verify_key.ed25519_bytes())
        ctx = Context(actor=Actor(id=did, kind="identity"))
        public = base64.b64encode(key.verify_key.to_bytes()).decode()
        squid.register(ctx, Registration(name=f"person {n}", public_key=public))
        people.append((ctx, key.ed25519_seed()))
    return people


def _timed(threads: int, work: list[Any], call: Any) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(call, work))
    return time.perf_counter() - started, results


def run_backend(backend: str, count: int, threads: int) -> dict[str, Any]:
    with open_node(backend) as node:
        svc: VcService = node.service("vc")
        people = _people(node, count)
        node.service("node").identity.signing_key()  # made before the clock starts
        request = IssueRequest(kind="did-control")
        issue_s, issued = _timed(threads, people, lambda p: svc.issue(p[0], request))

        # Each identity issues one credential to the next, signed on "its device".
        issuer_ctx, issuer_seed = people[0]
        drafts = []
        for ctx, _ in people:
            allocation = svc.allocate(issuer_ctx)
            if allocation.list_to_sign is not None:
                signed_list = vcs.issue(
                    allocation.list_to_sign, issuer_seed, created=datetime.now(UTC)
                )
                list_id = allocation.list_url.rsplit("/", 1)[-1]
                svc.publish_list(issuer_ctx, list_id, signed_list)
            document = vcs.build(
                issuer_ctx.actor.id,
                {"id": ctx.actor.id, "licence": "GAS-1234"},
                ["PlumberLicence"],
                valid_from=datetime.now(UTC),
                status=allocation.credential_status,
            )
            drafts.append(vcs.issue(document, issuer_seed, created=datetime.now(UTC)))
        store_s, _ = _timed(threads, drafts, lambda d: svc.store(issuer_ctx, d))

        documents = [held.credential for held in issued]
        online_s, online = _timed(
            threads, documents, lambda d: svc.verify(issuer_ctx, VerifyRequest(credential=d))
        )
        assert all(report["verified"] for report in online)
        lists = {}
        for document in documents[:1]:
            url = document["credentialStatus"]["statusListCredential"]
            lists[url] = svc.status_list(url.rsplit("/", 1)[-1])
        now = datetime.now(UTC)
        started = time.perf_counter()
        offline = [
            vcs.verify_credential(d, now=now, status_lookup=lists.get).verified for d in documents
        ]
        offline_s = time.perf_counter() - started
        assert all(offline)
    return {
        "node_issue_per_second": round(count / issue_s, 1),
        "hand_over_per_second": round(count / store_s, 1),
        "verify_online_per_second": round(count / online_s, 1),
        "verify_offline_per_second": round(count / offline_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    backends = ["embedded", "cluster"] if args.cluster else ["embedded"]
    results = {
        "benchmark": "vc_credentials",
        "count": args.count,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "backends": {b: run_backend(b, args.count, args.threads) for b in backends},
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
