"""Random histories of purchases, deliveries, refunds, disputes and deadlines, on both
backends: whatever happens, no money is created, lost or paid twice."""

from __future__ import annotations

import contextlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from anarq.kernel.bus import Event
from anarq.kernel.clock import ManualClock
from anarq.kernel.errors import AnarqError
from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.kernel.tables import outbox
from anarq.qlock import SigningKey
from anarq.qmarket.escrow import ESCROW_ACCOUNT, FEES_ACCOUNT
from anarq.qmarket.models import (
    DeliverRequest,
    DisputeRequest,
    ListingCreate,
    OrderCreate,
    ResolveRequest,
)
from anarq.qmarket.service import MarketService
from anarq.qwallet.models import MintRequest, NftMintRequest
from anarq.qwallet.service import WalletService
from anarq.squid.didkey import did_from_ed25519
from anarq.squid.models import Registration
from tests.conftest import migrate_embedded

SYSTEM = Context.system()
PRICE = 1000
FUNDS = 20_000
_ids = itertools.count()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 6, 1, tzinfo=UTC))


@pytest.fixture
async def market_node(settings: Settings, clock: ManualClock) -> Any:
    migrate_embedded(settings)
    built = Node.open(settings, clock=clock)
    yield built
    await built.kernel.bus.stop()
    built.close()


class Market:
    """Three people, a seller's listings (services and a token), and what they paid."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.svc: MarketService = node.service("qmarket")
        self.wallet: WalletService = node.service("qwallet")
        self.people = [self._register(name) for name in ("seller", "ann", "ben")]
        self.seller = self.people[0]
        for buyer in self.people[1:]:
            self.wallet.mint(
                SYSTEM, "PI", MintRequest(id=f"fund{next(_ids)}", to=buyer, amount=FUNDS)
            )
        self.listings = [
            self.svc.create_listing(
                self.ctx(self.seller),
                ListingCreate(kind="service", title=f"job {n}", price=PRICE, asset="PI", stock=2),
            ).id
            for n in range(2)
        ]
        token = self.wallet.nft_mint(self.ctx(self.seller), NftMintRequest(name="token"))
        self.listings.append(
            self.svc.create_listing(
                self.ctx(self.seller),
                ListingCreate(kind="nft", item=token.id, title="token", price=PRICE, asset="PI"),
            ).id
        )
        self.orders: list[tuple[str, str]] = []  # (order id, buyer)

    def _register(self, name: str) -> str:
        key = SigningKey.generate(hybrid=False)
        did = did_from_ed25519(key.verify_key.ed25519_bytes())
        self.node.service("squid").register(self.ctx(did), Registration(name=name))
        return did

    @staticmethod
    def ctx(did: str) -> Context:
        return Context(actor=Actor(id=did, kind="identity"))

    def act(self, kind: str, who: int, pick: int, amount: int) -> None:
        order = self.orders[pick % len(self.orders)] if self.orders else None
        buyer = self.people[1 + who % 2]
        seller = self.ctx(self.seller)
        if kind == "buy":
            listing = self.listings[pick % len(self.listings)]
            made, _ = self.svc.buy(self.ctx(buyer), listing, OrderCreate(id=f"ord{next(_ids):05d}"))
            self.orders.append((made.id, buyer))
        elif order is None:
            return
        elif kind == "deliver":
            self.svc.deliver(seller, order[0], DeliverRequest(note="done"))
        elif kind == "accept":
            self.svc.accept(self.ctx(order[1]), order[0])
        elif kind == "refund":
            self.svc.refund(seller, order[0])
        elif kind == "dispute":
            self.svc.dispute(self.ctx(order[1]), order[0], DisputeRequest(reason="why"))
        elif kind == "resolve":
            self.svc.resolve(SYSTEM, order[0], ResolveRequest(paid=amount, note="split"))

    def check(self) -> None:
        books = self.wallet.verify_books(SYSTEM)
        assert books.ok, books.problems
        orders = [self.svc.order(SYSTEM, order_id) for order_id, _buyer in self.orders]
        node_did = self.node.service("node").identity.did
        accounts = {a.name: a for a in self.wallet.accounts(Context.system(), "PI")}
        assert node_did  # the node's accounts are listed for the node itself
        escrow = accounts.get(ESCROW_ACCOUNT)
        open_prices = sum(o.price for o in orders if o.status in ("held", "delivered", "disputed"))
        if escrow is not None:
            # Escrow holds the open orders' prices, pending, and nothing posted for long.
            assert escrow.credits_pending == open_prices
            assert escrow.credits_posted == escrow.debits_posted
        fees = accounts.get(FEES_ACCOUNT)
        settled = [o for o in orders if o.status == "settled"]
        expected_fees = sum((o.paid or 0) * o.fee_bps // 10_000 for o in settled)
        assert (fees.credits_posted if fees else 0) == expected_fees
        for o in orders:
            if o.status == "settled":
                assert o.paid is not None and 0 < o.paid <= o.price
            if o.status == "refunded":
                assert o.paid == 0
        for buyer in self.people[1:]:
            spent = sum(o.paid or 0 for o in settled if o.buyer == buyer)
            held = sum(
                o.price
                for o in orders
                if o.buyer == buyer and o.status in ("held", "delivered", "disputed")
            )
            [main] = [a for a in self.wallet.accounts(self.ctx(buyer), "PI") if a.name == "main"]
            assert main.balance == FUNDS - spent - held


@pytest.fixture
def market(market_node: Node) -> Market:
    return Market(market_node)


ACTS = ("buy", "buy", "buy", "deliver", "deliver", "accept", "refund", "dispute", "dispute")
step = st.tuples(
    st.sampled_from([*ACTS, "resolve", "resolve", "wait", "expire"]),
    st.integers(0, 1),  # which buyer
    st.integers(0, 50),  # which listing or order
    st.integers(0, PRICE),  # a moderator's split
)


@given(history=st.lists(step, min_size=4, max_size=16))
@hsettings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_random_histories_keep_the_money_whole(
    market: Market, clock: ManualClock, history: list[tuple[str, int, int, int]]
) -> None:
    """Escrow holds exactly the open orders' prices, the market's fees are what settled
    orders owe, each buyer has what they were given less what they paid and what is held,
    and the ledger's books balance, whatever order things happen in."""
    for kind, who, pick, amount in history:
        if kind == "wait":
            clock.advance(timedelta(hours=1 + pick * 4))
            market.svc.act_on_deadlines()
        elif kind == "expire":
            clock.advance(timedelta(days=400))  # past every hold's own timeout
            market.wallet.expire()
            _drain(market.node)
        else:
            # A refusal (sold out, the wrong state, no funds) must change nothing.
            with contextlib.suppress(AnarqError):
                market.act(kind, who, pick, amount)
        market.check()


def _drain(node: Node) -> None:
    """Hand the ledger's expiry events to Qmarket now, as the bus would (at least once)."""
    subscription = node.kernel.bus.subscriptions["qmarket.on_hold_expired"]
    with node.kernel.db.read() as conn:
        envelopes = conn.execute(
            select(outbox.c.envelope).where(outbox.c.type == "qwallet.transfer.expired")
        ).scalars()
        events = [Event.from_envelope(envelope) for envelope in envelopes]
    for event in events:
        node.kernel.bus.deliver(subscription, event)
