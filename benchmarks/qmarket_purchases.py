"""Qmarket: purchases per second end to end — escrow hold, delivery and settlement.

    python -m benchmarks.qmarket_purchases [--buyers 300] [--threads 2] [--cluster]

A migrated node on each backend, a seller and `--buyers` funded buyers (identities
registered with the node). Each purchase goes through `MarketService.buy` (the path of
`POST /qmarket/listings/{id}/orders` without HTTP) and, in its one transaction: checks
the listing, holds the price in escrow (a pending Qwallet transfer), hands the item over,
posts the hold and pays it out (market fee, royalty where there is one, seller) as one
linked chain, signs the licence (ML-DSA-65 + Ed25519, the node's hybrid key) and writes
the audit records.

Workloads, each buyer buying once:
- `file`: one private file listing; delivery re-wraps the file's data key for the buyer
  and records a Qonsent grant with its signed consent receipt.
- `token`: one listing per unique token (with a creator royalty on resale: the seller
  is not the creator, so the royalty leg is paid); delivery moves the token.
- `service`: buy, then the seller delivers, then the buyer accepts (three steps, one
  settlement): reported as whole purchases per second.

`--threads` buyers at once (they queue on the ledger's one writer). Figures: purchases/s
and p50/p95/p99 latency of one purchase.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.qlock import SigningKey
from anarq.qmarket.models import DeliverRequest, ListingCreate, OrderCreate
from anarq.qmarket.service import MarketService
from anarq.qwallet.models import MintRequest, NftMintRequest
from anarq.squid.didkey import did_from_ed25519
from anarq.squid.models import Registration
from benchmarks._nodes import latency_summary, open_node

SYSTEM = Context.system()
PRICE = 10**8  # 1 PI
_ids = itertools.count()


def _person(node: Node, name: str) -> Context:
    key = SigningKey.generate(hybrid=False)
    did = did_from_ed25519(key.verify_key.ed25519_bytes())
    ctx = Context(actor=Actor(id=did, kind="identity"))
    node.service("squid").register(ctx, Registration(name=name))
    return ctx


def _timed(work: list[Callable[[], None]], threads: int) -> tuple[float, list[float]]:
    def one(step: Callable[[], None]) -> float:
        started = time.perf_counter()
        step()
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        durations = list(pool.map(one, work))
    return time.perf_counter() - started, durations


def run_backend(backend: str, buyers: int, threads: int) -> dict[str, Any]:
    with open_node(backend) as node:
        market: MarketService = node.service("qmarket")
        wallet = node.service("qwallet")
        seller, creator = _person(node, "seller"), _person(node, "creator")
        people = [_person(node, f"buyer{i}") for i in range(buyers)]
        for ctx in people:
            request = MintRequest(id=f"fund{next(_ids)}", to=ctx.actor.id, amount=10 * PRICE)
            wallet.mint(SYSTEM, "PI", request)
        drive = node.service("qdrive")
        stored = drive.put(seller, "/shop/track.flac", b"\x00\x01" * 32_768)  # 64 KiB, private
        file_listing = market.create_listing(
            seller,
            ListingCreate(kind="file", item=stored.id, title="a track", price=PRICE, asset="PI"),
        ).id
        token_listings = []
        for i in range(buyers):
            token = wallet.nft_mint(
                creator, NftMintRequest(name=f"print {i}", to=seller.actor.id, royalty_bps=500)
            )
            request = ListingCreate(
                kind="nft", item=token.id, title=f"print {i}", price=PRICE, asset="PI"
            )
            token_listings.append(market.create_listing(seller, request).id)
        service_listing = market.create_listing(
            seller, ListingCreate(kind="service", title="a lesson", price=PRICE, asset="PI")
        ).id

        def buy(ctx: Context, listing: str) -> Callable[[], None]:
            def step() -> None:
                order, created = market.buy(ctx, listing, OrderCreate(id=f"o{next(_ids):08d}"))
                assert created and order.status == "settled", order.status

            return step

        def commission(ctx: Context) -> Callable[[], None]:
            def step() -> None:
                order, _ = market.buy(ctx, service_listing, OrderCreate(id=f"s{next(_ids):08d}"))
                market.deliver(seller, order.id, DeliverRequest(note="done"))
                assert market.accept(ctx, order.id).status == "settled"

            return step

        workloads = {
            "file": [buy(ctx, file_listing) for ctx in people],
            "token": [
                buy(ctx, listing) for ctx, listing in zip(people, token_listings, strict=True)
            ],
            "service": [commission(ctx) for ctx in people],
        }
        results: dict[str, Any] = {}
        for name, work in workloads.items():
            elapsed, durations = _timed(work, threads)
            results[name] = {
                "purchases": len(work),
                "purchases_per_s": round(len(work) / elapsed, 1),
                **latency_summary(durations, "ms"),
            }
        books = wallet.verify_books(SYSTEM)
        assert books.ok, books.problems
        results["books_ok"] = books.ok
        return results


def run(buyers: int, threads: int, cluster: bool) -> dict[str, Any]:
    backends = ["embedded", "cluster"] if cluster else ["embedded"]
    return {
        "benchmark": "qmarket_purchases",
        "buyers": buyers,
        "threads": threads,
        "price": "1 PI",
        "backends": {backend: run_backend(backend, buyers, threads) for backend in backends},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cluster", action="store_true", help="Also on PostgreSQL + NATS.")
    args = parser.parse_args()
    print(json.dumps(run(args.buyers, args.threads, args.cluster), indent=2))


if __name__ == "__main__":
    main()
