"""The ledger on both backends: TigerBeetle's transfer semantics, invariants over random
histories, authority, fees, caps, expiry."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from anarq.kernel.clock import ManualClock
from anarq.kernel.guard import Actor, Context
from anarq.kernel.node import Node
from anarq.kernel.settings import Settings
from anarq.qwallet import tables
from anarq.qwallet.ledger import AccountFlags, TransferFlags, TransferIn
from anarq.qwallet.models import IssueRequest
from anarq.qwallet.service import WalletService
from tests.conftest import migrate_embedded

L = TransferFlags
SYSTEM = Context.system()
_ids = itertools.count()


def tid(prefix: str = "t") -> str:
    return f"{prefix}{next(_ids)}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def ledger_node(settings: Settings, clock: ManualClock) -> Any:
    migrate_embedded(settings)
    built = Node.open(settings, clock=clock)
    yield built
    await built.kernel.bus.stop()
    built.close()


@pytest.fixture
def wallet(ledger_node: Node) -> WalletService:
    svc: WalletService = ledger_node.service("qwallet")
    return svc


class Books:
    """A test asset with no fees and accounts opened straight in the store."""

    def __init__(self, wallet: WalletService, code: str = "TEST") -> None:
        self.w = wallet
        self.code = code
        wallet.issue(SYSTEM, IssueRequest(code=code, name="test", scale=2))
        self.issuance = wallet.asset(code).issuance_account

    def open(self, owner: str = "did:key:zOwner", flags: int = 0, name: str | None = None) -> int:
        with self.w.k.db.write() as tx:
            return self.w._open(tx, owner, self.code, name or tid("acct"), flags)

    def funded(self, amount: int, flags: int = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS) -> int:
        account = self.open(flags=flags)
        self.ok(TransferIn(tid(), self.issuance, account, amount))
        return account

    def run(self, *batch: TransferIn, ctx: Context = SYSTEM) -> list[str]:
        return [result for result, _ in self.w.apply(ctx, list(batch))]

    def ok(self, *batch: TransferIn) -> None:
        assert self.run(*batch) == ["ok"] * len(batch)

    def balances(self, account: int) -> tuple[int, int, int, int]:
        with self.w.k.db.read() as conn:
            return self.w.store.accounts(conn, [account])[account].balances()

    def available(self, account: int) -> int:
        dp, dpo, _cp, cpo = self.balances(account)
        return cpo - dpo - dp

    def check(self) -> None:
        report = self.w.verify_books(SYSTEM)
        assert report.ok, report.problems


@pytest.fixture
def books(wallet: WalletService) -> Books:
    return Books(wallet)


# Plain transfers and idempotency --------------------------------------------------------


def test_transfer_moves_money_and_resending_changes_nothing(books: Books) -> None:
    a, b = books.funded(1000), books.open()
    t = TransferIn(tid(), a, b, 300, asset="TEST")
    assert books.run(t) == ["ok"]
    assert books.run(t) == ["exists"]
    assert books.available(a) == 700 and books.available(b) == 300
    changed = TransferIn(t.id, a, b, 301, asset="TEST")
    assert books.run(changed) == ["exists_with_different_amount"]
    assert books.run(TransferIn(t.id, b, a, 300, asset="TEST")) == [
        "exists_with_different_debit_account_id"
    ]
    assert books.available(a) == 700
    books.check()


def test_overdraft_is_refused_and_the_refusal_is_kept(books: Books) -> None:
    a, b = books.funded(100), books.open()
    t = TransferIn(tid(), a, b, 101)
    assert books.run(t) == ["exceeds_credits"]
    books.ok(TransferIn(tid(), books.issuance, a, 50))  # now it would fit…
    assert books.run(t) == ["exceeds_credits"]  # …but a resent id answers as it did
    assert books.available(b) == 0
    books.check()


@pytest.mark.parametrize(
    ("transfer", "result"),
    [
        (TransferIn("x1", None, 2, 1), "debit_account_id_must_not_be_zero"),
        (TransferIn("x2", 2, 2, 1), "accounts_must_be_different"),
        (TransferIn("x3", 1, 2, 0), "amount_must_not_be_zero"),
        (TransferIn("x4", 10**9, 2, 1), "debit_account_not_found"),
        (TransferIn("x5", 1, 2, 1, timeout=5), "timeout_reserved_for_pending_transfer"),
        (TransferIn("x6", 1, 2, 1, pending_id="p"), "pending_id_must_be_zero"),
        (TransferIn("x7", 1, 2, 1, flags=1 << 12), "reserved_flag"),
        (
            TransferIn("x8", 1, 2, 1, flags=L.PENDING | L.POST_PENDING_TRANSFER),
            "flags_are_mutually_exclusive",
        ),
        (
            TransferIn("x9", pending_id=None, flags=L.VOID_PENDING_TRANSFER),
            "pending_id_must_not_be_zero",
        ),
        (
            TransferIn("x10", pending_id="x10", flags=L.POST_PENDING_TRANSFER),
            "pending_id_must_be_different",
        ),
        (
            TransferIn("x11", pending_id="nope", flags=L.POST_PENDING_TRANSFER),
            "pending_transfer_not_found",
        ),
    ],
)
def test_malformed_transfers_get_their_result_code(
    books: Books, transfer: TransferIn, result: str
) -> None:
    assert books.run(transfer) == [result]
    books.check()


def test_other_asset_is_refused(books: Books, wallet: WalletService) -> None:
    other = Books(wallet, "OTHER")
    a, b = books.funded(10), other.open()
    assert books.run(TransferIn(tid(), a, b, 1)) == ["accounts_must_have_the_same_ledger"]
    c = books.open()
    assert books.run(TransferIn(tid(), a, c, 1, asset="OTHER")) == [
        "transfer_must_have_the_same_ledger_as_accounts"
    ]


# Linked chains ----------------------------------------------------------------------------


def test_linked_chain_is_all_or_nothing(books: Books) -> None:
    a, b, c = books.funded(100), books.open(), books.open()
    results = books.run(
        TransferIn(tid(), a, b, 60, flags=L.LINKED),
        TransferIn(tid(), a, c, 60),  # 120 > 100: fails, so the first is undone
        TransferIn(tid(), a, c, 10),  # a chain of its own
    )
    assert results == ["linked_event_failed", "exceeds_credits", "ok"]
    assert books.available(a) == 90 and books.available(b) == 0 and books.available(c) == 10
    books.check()


def test_open_chain_at_the_end_fails(books: Books) -> None:
    a, b = books.funded(100), books.open()
    results = books.run(
        TransferIn(tid(), a, b, 1, flags=L.LINKED), TransferIn(tid(), a, b, 1, flags=L.LINKED)
    )
    assert results == ["linked_event_failed", "linked_event_chain_open"]
    assert books.available(a) == 100


def test_a_chain_sees_its_own_effects(books: Books) -> None:
    a, b, c = (
        books.funded(50),
        books.open(flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS),
        books.open(),
    )
    books.ok(TransferIn(tid(), a, b, 50, flags=L.LINKED), TransferIn(tid(), b, c, 50))
    assert books.available(c) == 50


# Two-phase transfers ----------------------------------------------------------------------


def test_pending_then_partial_post_releases_the_rest(books: Books) -> None:
    a, b = books.funded(100), books.open()
    p = TransferIn(tid("p"), a, b, 80, flags=L.PENDING)
    books.ok(p)
    assert books.balances(a) == (80, 0, 0, 100) and books.available(a) == 20
    assert books.run(TransferIn(tid(), a, b, 30)) == ["exceeds_credits"]  # held money is held
    post = TransferIn(tid(), pending_id=p.id, amount=50, flags=L.POST_PENDING_TRANSFER)
    books.ok(post)
    assert books.balances(a) == (0, 50, 0, 100) and books.available(b) == 50
    again = TransferIn(tid(), pending_id=p.id, flags=L.VOID_PENDING_TRANSFER)
    assert books.run(again) == ["pending_transfer_already_posted"]
    too_much = TransferIn(tid(), pending_id=p.id, amount=81, flags=L.POST_PENDING_TRANSFER)
    assert books.run(too_much) == ["exceeds_pending_transfer_amount"]
    books.check()


def test_void_returns_everything(books: Books) -> None:
    a, b = books.funded(100), books.open()
    p = TransferIn(tid("p"), a, b, 100, flags=L.PENDING)
    void = TransferIn(tid(), pending_id=p.id, flags=L.VOID_PENDING_TRANSFER)
    books.ok(p, void)
    assert books.available(a) == 100 and books.balances(b) == (0, 0, 0, 0)
    post = TransferIn(tid(), pending_id=p.id, flags=L.POST_PENDING_TRANSFER)
    assert books.run(post) == ["pending_transfer_already_voided"]
    books.check()


def test_timeout_expires_a_pending_transfer(books: Books, clock: ManualClock) -> None:
    a, b = books.funded(100), books.open()
    p = TransferIn(tid("p"), a, b, 40, flags=L.PENDING, timeout=60)
    books.ok(p)
    clock.advance(timedelta(seconds=61))
    post = TransferIn(tid(), pending_id=p.id, flags=L.POST_PENDING_TRANSFER)
    assert books.run(post) == ["pending_transfer_expired"]
    assert books.w.expire() == 1
    assert books.w.expire() == 0
    assert books.available(a) == 100 and books.balances(b) == (0, 0, 0, 0)
    assert books.w.transfer(SYSTEM, p.id).pending_state == "expired"
    books.check()


def test_hash_locked_transfer_posts_only_with_the_preimage(books: Books) -> None:
    secret = b"swap secret 42"
    lock = hashlib.sha256(secret).hexdigest()
    a, b = books.funded(100), books.open()
    p = TransferIn(tid("p"), a, b, 10, flags=L.PENDING, timeout=3600, hashlock=lock)
    books.ok(p)
    post = TransferIn(tid(), pending_id=p.id, flags=L.POST_PENDING_TRANSFER)
    assert books.run(post) == ["preimage_required"]
    wrong = TransferIn(tid(), pending_id=p.id, flags=L.POST_PENDING_TRANSFER, preimage=b"guess")
    assert books.run(wrong) == ["preimage_does_not_match_hashlock"]
    right = TransferIn(tid(), pending_id=p.id, flags=L.POST_PENDING_TRANSFER, preimage=secret)
    books.ok(right)
    assert books.available(b) == 10
    books.check()


def test_balancing_debit_moves_what_is_there(books: Books) -> None:
    a, b = books.funded(70), books.open()
    books.ok(TransferIn(tid(), a, b, None, flags=L.BALANCING_DEBIT))
    assert books.available(a) == 0 and books.available(b) == 70
    books.check()


# Supply caps, minting and burning ---------------------------------------------------------


def test_supply_cap_holds(wallet: WalletService) -> None:
    wallet.issue(SYSTEM, IssueRequest(code="GOLD", name="gold", scale=0, supply_cap=1000))
    gold = wallet.asset("GOLD")
    books = Books.__new__(Books)
    books.w, books.code, books.issuance = wallet, "GOLD", gold.issuance_account
    holder = books.open()
    books.ok(TransferIn(tid(), gold.issuance_account, holder, 1000))
    assert books.run(TransferIn(tid(), gold.issuance_account, holder, 1)) == ["exceeds_supply_cap"]
    assert wallet.asset("GOLD").supply == 1000
    # The mirror account that holds the cap is closed: it cannot be drawn on instead.
    ac = tables.accounts
    with wallet.k.db.read() as conn:
        genesis = conn.execute(
            select(ac.c.id).where(ac.c.asset == "GOLD", ac.c.name == "genesis")
        ).scalar_one()
    assert books.run(TransferIn(tid(), genesis, holder, 1)) == ["debit_account_already_closed"]
    books.ok(TransferIn(tid(), holder, gold.issuance_account, 400))  # burnt by the issuer
    assert wallet.asset("GOLD").supply == 600
    books.ok(TransferIn(tid(), gold.issuance_account, holder, 400))
    books.check()


# Authority ------------------------------------------------------------------------------


def test_identities_move_only_their_own_money(books: Books, wallet: WalletService) -> None:
    alice, mallory = "did:key:zAlice", "did:key:zMallory"
    a = books.open(owner=alice, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
    m = books.open(owner=mallory)
    books.ok(TransferIn(tid(), books.issuance, a, 100))
    as_mallory = Context(actor=Actor(id=mallory, kind="identity"))
    as_alice = Context(actor=Actor(id=alice, kind="identity"))
    assert books.run(TransferIn(tid(), a, m, 10), ctx=as_mallory) == [
        "debit_account_not_authorized"
    ]
    assert books.run(TransferIn(tid(), books.issuance, m, 10), ctx=as_mallory) == [
        "debit_account_not_authorized"
    ]
    assert books.run(TransferIn(tid(), a, books.issuance, 10), ctx=as_alice) == [
        "credit_account_not_authorized"  # burning is the issuer's
    ]
    p = TransferIn(tid("p"), a, m, 10, flags=L.PENDING, timeout=60)
    assert books.run(p, ctx=as_alice) == ["ok"]
    # The payer cannot take back a hold with a timeout; the payee cannot post it.
    void = TransferIn(tid(), pending_id=p.id, flags=L.VOID_PENDING_TRANSFER)
    assert books.run(void, ctx=as_alice) == ["pending_transfer_not_authorized"]
    post = TransferIn(tid(), pending_id=p.id, flags=L.POST_PENDING_TRANSFER)
    assert books.run(post, ctx=as_mallory) == ["pending_transfer_not_authorized"]
    assert books.run(void, ctx=as_mallory) == ["ok"]  # the payee may refuse it
    assert books.available(a) == 100
    books.check()


# Fees -------------------------------------------------------------------------------------


def test_fee_is_a_linked_leg_paid_by_the_payee(wallet: WalletService) -> None:
    wallet.issue(SYSTEM, IssueRequest(code="FEE", name="fee", scale=2, fee_bps=50, fee_min=1))
    fee = wallet.asset("FEE")
    books = Books.__new__(Books)
    books.w, books.code, books.issuance = wallet, "FEE", fee.issuance_account
    a, b = books.funded(100_000), books.open()
    t = TransferIn(tid(), a, b, 10_000)
    books.ok(t)
    assert books.available(b) == 10_000 - 50
    assert books.available(fee.treasury_account) == 50
    assert wallet.transfer(SYSTEM, t.id + ".fee").amount == 50
    books.ok(TransferIn(tid(), a, b, 10))  # the minimum applies
    assert books.available(fee.treasury_account) == 51
    books.check()


# Random histories -------------------------------------------------------------------------

ACCOUNTS = 4
op = st.tuples(
    st.sampled_from(["move", "move", "pending", "post", "void", "balance", "resend"]),
    st.integers(0, ACCOUNTS),  # debit (index ACCOUNTS is the issuance account)
    st.integers(0, ACCOUNTS),  # credit
    st.integers(0, 150),
    st.booleans(),  # linked
    st.sampled_from([0, 0, 1, 30]),  # timeout
)


@given(history=st.lists(st.lists(op, min_size=1, max_size=12), min_size=1, max_size=6))
@hsettings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_random_histories_keep_every_invariant(
    books: Books, clock: ManualClock, history: list[list[tuple[Any, ...]]]
) -> None:
    """Whatever the history: per asset debits equal credits, no account breaks its flags,
    each id applies once, and each pending transfer resolves once (`verify_books` replays
    the log and compares every balance)."""
    flags = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    accounts = [books.open(flags=flags if i % 2 == 0 else 0) for i in range(ACCOUNTS)]
    accounts.append(books.issuance)
    made: list[TransferIn] = []
    pendings: list[str] = []
    for batch_ops in history:
        batch = []
        for kind, d, c, amount, linked, timeout in batch_ops:
            f = L.LINKED if linked else 0
            if kind == "resend" and made:
                batch.append(made[amount % len(made)])
                continue
            if kind in ("post", "void") and pendings:
                flag = L.POST_PENDING_TRANSFER if kind == "post" else L.VOID_PENDING_TRANSFER
                t = TransferIn(
                    tid(),
                    pending_id=pendings[amount % len(pendings)],
                    amount=None if kind == "void" or amount % 3 else amount,
                    flags=f | flag,
                )
            elif kind == "pending":
                t = TransferIn(
                    tid("p"), accounts[d], accounts[c], amount, flags=f | L.PENDING, timeout=timeout
                )
                pendings.append(t.id)
            elif kind == "balance":
                t = TransferIn(tid(), accounts[d], accounts[c], amount, flags=f | L.BALANCING_DEBIT)
            else:
                t = TransferIn(tid(), accounts[d], accounts[c], amount, flags=f)
            batch.append(t)
            made.append(t)
        before = books.w.verify_books(SYSTEM).transfers
        results = books.run(*batch)
        after = books.w.verify_books(SYSTEM)
        assert after.ok, after.problems
        created = sum(r == "ok" for r in results)
        assert after.transfers == before + created  # the test asset has no fee legs
        clock.advance(timedelta(seconds=amount_step(batch_ops)))
        books.w.expire()
        books.check()


def amount_step(batch_ops: list[tuple[Any, ...]]) -> int:
    return sum(o[3] for o in batch_ops) % 40
