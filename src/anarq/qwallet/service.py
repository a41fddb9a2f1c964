"""Qwallet: a double-entry ledger of assets between identities, and unique tokens.

Every change goes through `submit`: a batch of up to 8,190 transfers, applied in order by
`ledger.Batch` against the accounts it touches, written in one transaction with one audit
record, and answered with one result per transfer that was not created. The single
transfer, mint, burn and pay operations are batches of one or two built here.

Authority: an identity moves money out of the accounts it owns, or out of an account
whose owner granted it `write` on `qwallet:account:<id>` through Qonsent (a DAO treasury,
a marketplace's escrow). The node and its operator act for the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.errors import AnarqError, BadRequest, Conflict, Forbidden, NotFound
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.kernel.subject import ExportItem, json_item
from anarq.node.service import NodeService
from anarq.qonsent.service import QonsentService
from anarq.qwallet import tables
from anarq.qwallet.agent import LedgerAgent
from anarq.qwallet.ledger import (
    ACCOUNT_FLAGS,
    AMOUNT_MAX,
    NS,
    TRANSFER_FLAGS,
    Account,
    AccountFlags,
    Asset,
    Authority,
    Batch,
    PendingState,
    Transfer,
    TransferFlags,
    TransferIn,
    check_books,
)
from anarq.qwallet.models import (
    BATCH_MAX,
    AccountInfo,
    AccountRef,
    AssetInfo,
    BatchResult,
    BooksReport,
    BurnRequest,
    FeeRequest,
    HistoryPage,
    IssueRequest,
    MintRequest,
    NftEvent,
    NftInfo,
    NftMintRequest,
    OpenAccountRequest,
    PayRequest,
    TransferInfo,
    TransferRequest,
    TransferResult,
    flag_names,
)
from anarq.qwallet.store import LedgerStore, transfer_from_row
from anarq.squid.service import SquidService

log = logging.getLogger(__name__)

NATIVE_ASSETS = (("QTOKEN", "Q token (utility)", 18), ("PI", "PI (currency)", 8))
DEFAULT_FEE_BPS = 50  # the platform fee: 0.5 %
EXPIRE_EVERY_SECONDS = 1.0
EXPIRE_BATCH = 2000
HISTORY_MAX = 500
ACCOUNTS_PER_OWNER_MAX = 1000
CACHE_MAX = 1_000_000  # accounts whose balances a node process keeps between batches

# A failed transfer's HTTP status when it comes through the single-transfer API.
_STATUS = {
    "debit_account_not_found": 404,
    "credit_account_not_found": 404,
    "pending_transfer_not_found": 404,
    "debit_account_not_authorized": 403,
    "credit_account_not_authorized": 403,
    "pending_transfer_not_authorized": 403,
    "exceeds_credits": 422,
    "exceeds_debits": 422,
    "exceeds_supply_cap": 422,
    "exceeds_pending_transfer_amount": 422,
}


class TransferRefused(AnarqError):
    """A transfer the ledger did not create; `result` names why, as in a batch."""

    code = "qwallet.transfer_refused"
    status = 409
    title = "Transfer refused"


class AssetExists(Conflict):
    code = "qwallet.asset_exists"


class NftRoyaltyBound(Conflict):
    """A token with a royalty, held by someone other than its issuer: it moves by sale."""

    code = "qwallet.nft_royalty_bound"


class NftListed(Conflict):
    """The token is for sale in a Qmarket listing: it moves only through that sale."""

    code = "qwallet.nft_listed"


def account_resource(account_id: int) -> str:
    return f"qwallet:account:{account_id}"


def wallet_resource(owner: str) -> str:
    return f"qwallet:wallet:{owner}"


def to_ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000


def refused(result: str, transfer_id: str) -> TransferRefused:
    error = TransferRefused(f"transfer {transfer_id} was not created: {result}", result=result)
    error.status = _STATUS.get(result, 409)  # type: ignore[misc]
    return error


class WalletService:
    erase_order = 90

    def __init__(
        self, kernel: Kernel, node: NodeService, squid: SquidService, qonsent: QonsentService
    ) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid
        self.qonsent = qonsent
        self.store = LedgerStore(kernel.db.dialect)
        self._native_ready = False
        # Balances of the accounts recent batches touched, valid for ledger version
        # `_cached_at` (None: not to be trusted). Batches of this process take `_writer`
        # first, so one at a time reads, changes and re-validates the cache.
        self._cache: dict[int, Account] = {}
        self._cached_at: int | None = None
        self._writer = threading.Lock()

    @contextlib.contextmanager
    def _ledger(
        self, ctx: Context, resource: str, *, action: str = "write", cached: bool = True
    ) -> Iterator[Connection]:
        """A ledger write: authorized and audited (`Kernel.change`), the ledger's lock
        held, its version moved on. `cached`: the body changes balances only through the
        cache (a `Batch`), so the cache stays valid once this commits."""
        with self._writer:
            with self.k.change(ctx, action, resource) as tx:
                version = self.store.lock(tx)
                if self._cached_at != version or len(self._cache) > CACHE_MAX:
                    self._cache.clear()
                self._cached_at = None
                self.store.bump(tx, version)
                yield tx
            if cached:
                self._cached_at = version + 1

    @contextlib.contextmanager
    def agent(
        self, ctx: Context, action: str, resource: str, *, parties: Iterable[str] = ()
    ) -> Iterator[LedgerAgent]:
        """A ledger write by another module acting as the node's agent (Qmarket's escrow):
        one transaction, authorized and audited as `ctx`'s `action` on `resource`, in which
        that module's own changes commit or roll back with the transfers.

        Transfers apply with the node's authority over the node's accounts and over those
        of `parties` alone: the calling service has already decided that `ctx` may have
        them moved (a buyer's hold, an escrow's payout)."""
        self.ensure_native_assets()
        node_did = self.node.identity.did
        allowed = frozenset(parties)
        authority = Authority(node_did, lambda account: account.owner in allowed)
        with self._ledger(ctx, resource, action=action) as tx:
            yield LedgerAgent(self, tx, authority)

    # Policy ----------------------------------------------------------------------------

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """An identity submits transfers as itself (which accounts they may move is the
        ledger's question) and manages what it issued or holds (a guard policy)."""
        return (
            ctx.actor.kind == "identity"
            and action in ("read", "write")
            and resource == wallet_resource(ctx.actor.id)
        )

    def _actor(self, ctx: Context) -> str:
        if ctx.actor.kind in ("operator", "node"):
            return self.node.identity.did
        return ctx.identity("a wallet")

    # Assets ----------------------------------------------------------------------------

    def ensure_native_assets(self) -> None:
        """QTOKEN and PI exist on every node: issued by the node, fees to its treasury."""
        if self._native_ready:
            return
        node_did = self.node.identity.did
        with self.k.db.read() as conn:
            held = set(conn.execute(select(tables.assets.c.code)).scalars())
        for code, name, scale in NATIVE_ASSETS:
            if code in held:
                continue
            request = IssueRequest(code=code, name=name, scale=scale, fee_bps=DEFAULT_FEE_BPS)
            with contextlib.suppress(AssetExists):  # another process made it first
                self._issue(Context.system(), node_did, request)
        self._native_ready = True

    def issue(self, ctx: Context, request: IssueRequest) -> AssetInfo:
        """A new asset issued by the caller (an identity or, for the operator, the node)."""
        self.ensure_native_assets()
        return self._issue(ctx, self._actor(ctx), request)

    def _issue(self, ctx: Context, issuer: str, request: IssueRequest) -> AssetInfo:
        if request.fee_max is not None and request.fee_max < request.fee_min:
            raise BadRequest("fee_max is below fee_min")
        if request.supply_cap == 0:
            raise BadRequest("supply_cap must be above 0 (leave it out for no cap)")
        now = self.k.clock.now()
        issuance_flags = int(AccountFlags.ISSUANCE)
        if request.supply_cap is not None:
            issuance_flags |= AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
        try:
            with self._ledger(ctx, wallet_resource(issuer)) as tx:
                if tx.execute(
                    select(tables.assets.c.code).where(tables.assets.c.code == request.code)
                ).first():
                    raise AssetExists(f"asset {request.code} exists")
                issuance = self._open(tx, issuer, request.code, "issuance", issuance_flags)
                treasury = self._open(tx, issuer, request.code, "treasury", AccountFlags.TREASURY)
                tx.execute(
                    insert(tables.assets).values(
                        code=request.code,
                        name=request.name,
                        scale=request.scale,
                        issuer=issuer,
                        supply_cap=None if request.supply_cap is None else str(request.supply_cap),
                        issuance_account=issuance,
                        treasury_account=treasury,
                        fee_bps=request.fee_bps,
                        fee_min=str(request.fee_min),
                        fee_max=None if request.fee_max is None else str(request.fee_max),
                        created_at=now,
                    )
                )
                if request.supply_cap is not None:
                    # The cap is the issuance account's credit: minting debits it, and its
                    # flag stops a mint past the cap. The credit comes from a genesis account
                    # that holds the cap's mirror image, so the books balance from the start.
                    genesis = self._open(tx, issuer, request.code, "genesis", 0)
                    self._apply(
                        tx,
                        [
                            TransferIn(
                                id=f"genesis-{request.code}",
                                debit_account=genesis,
                                credit_account=issuance,
                                amount=request.supply_cap,
                                code=1,
                            )
                        ],
                        Authority(issuer, lambda _account: True),
                    )
                    # Then closed for good: debited again, it would mint past the cap.
                    closed = int(AccountFlags.CLOSED)
                    self._cache[genesis].flags |= closed
                    tx.execute(
                        update(tables.accounts)
                        .where(tables.accounts.c.id == genesis)
                        .values(flags=closed)
                    )
        except IntegrityError as exc:
            raise AssetExists(f"asset {request.code} exists") from exc
        return self._asset(request.code)

    def set_fees(self, ctx: Context, code: str, request: FeeRequest) -> AssetInfo:
        """A new fee schedule for `code`, by its issuer."""
        actor = self._actor(ctx)
        asset = self.asset(code)
        if asset.issuer != actor:
            self.k.guard.record(ctx, "admin", f"qwallet:asset:{code}", "deny")
            raise Forbidden(f"only {code}'s issuer sets its fees")
        if request.fee_max is not None and request.fee_max < request.fee_min:
            raise BadRequest("fee_max is below fee_min")
        with self.k.change(ctx, "write", wallet_resource(actor)) as tx:
            tx.execute(
                update(tables.assets)
                .where(tables.assets.c.code == code)
                .values(
                    fee_bps=request.fee_bps,
                    fee_min=str(request.fee_min),
                    fee_max=None if request.fee_max is None else str(request.fee_max),
                )
            )
        return self.asset(code)

    def asset(self, code: str) -> AssetInfo:
        self.ensure_native_assets()
        return self._asset(code)

    def _asset(self, code: str) -> AssetInfo:
        a = tables.assets
        with self.k.db.read() as conn:
            row = conn.execute(select(a).where(a.c.code == code)).mappings().first()
            if row is None:
                raise NotFound(f"no asset {code} on this node")
            issuance = self.store.accounts(conn, [row["issuance_account"]])[row["issuance_account"]]
        return _asset_info(row, issuance)

    def assets(self) -> list[AssetInfo]:
        self.ensure_native_assets()
        a = tables.assets
        with self.k.db.read() as conn:
            rows = list(conn.execute(select(a).order_by(a.c.code)).mappings())
            issuance = self.store.accounts(conn, [r["issuance_account"] for r in rows])
        return [_asset_info(r, issuance[r["issuance_account"]]) for r in rows]

    def _assets(self, conn: Connection) -> dict[str, Asset]:
        return {
            r.code: Asset(
                code=r.code,
                treasury_account=r.treasury_account,
                fee_bps=r.fee_bps,
                fee_min=int(r.fee_min),
                fee_max=None if r.fee_max is None else int(r.fee_max),
            )
            for r in conn.execute(select(tables.assets))
        }

    # Accounts --------------------------------------------------------------------------

    def open_account(self, ctx: Context, request: OpenAccountRequest) -> AccountInfo:
        """Open (or return) the caller's account of an asset; opening again changes nothing."""
        owner = self._actor(ctx)
        self.asset(request.asset)
        existing = self._account_of(owner, request.asset, request.name)
        if existing is not None:
            return self.account(ctx, existing)
        with self.k.change(ctx, "write", wallet_resource(owner)) as tx:
            held = tx.execute(
                select(func.count()).where(tables.accounts.c.owner == owner)
            ).scalar_one()
            if held >= ACCOUNTS_PER_OWNER_MAX:
                raise Conflict(f"{owner} holds {held} accounts, the most one may")
            flags = request.flag_bits()
            if ctx.actor.kind == "identity":
                # An identity's account never goes below zero: one that could would mint
                # money out of nothing. Only the node opens accounts without the flag.
                flags |= AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
            account_id = self._open(tx, owner, request.asset, request.name, flags)
        return self.account(ctx, account_id)

    def _open(self, tx: Connection, owner: str, asset: str, name: str, flags: int) -> int:
        zero = "0"
        account_id = tx.execute(
            insert(tables.accounts)
            .values(
                owner=owner,
                asset=asset,
                name=name,
                flags=int(flags),
                debits_pending=zero,
                debits_posted=zero,
                credits_pending=zero,
                credits_posted=zero,
                created_at=self.k.clock.now(),
            )
            .returning(tables.accounts.c.id)
        ).scalar_one()
        self.qonsent.register_owner(tx, account_resource(account_id), owner)
        return int(account_id)

    def _account_of(self, owner: str, asset: str, name: str = "main") -> int | None:
        ac = tables.accounts
        with self.k.db.read() as conn:
            found = conn.execute(
                select(ac.c.id).where(ac.c.owner == owner, ac.c.asset == asset, ac.c.name == name)
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def _require_payee(self, owner: str, asset: str) -> None:
        """`owner` can be paid in `asset`: a registered, live identity (or this node)."""
        self.asset(asset)
        if owner == self.node.identity.did:
            return
        identity = self.squid.identity(owner)  # NotFound for an unknown DID
        if identity.revoked_at is not None:
            raise NotFound(f"{owner} has been revoked")

    def account(self, ctx: Context, account_id: int) -> AccountInfo:
        ac = tables.accounts
        with self.k.db.read() as conn:
            row = conn.execute(select(ac).where(ac.c.id == account_id)).mappings().first()
        if row is None:
            raise NotFound(f"no account {account_id}")
        self._require_reader(ctx, row["owner"], account_id)
        return _account_info(row)

    def accounts(self, ctx: Context, asset: str | None = None) -> list[AccountInfo]:
        owner = self._actor(ctx)
        ac = tables.accounts
        query = select(ac).where(ac.c.owner == owner).order_by(ac.c.asset, ac.c.id)
        if asset is not None:
            query = query.where(ac.c.asset == asset)
        with self.k.db.read() as conn:
            return [_account_info(r) for r in conn.execute(query).mappings()]

    def holders(self, asset: str) -> dict[str, int]:
        """What each owner's main account of `asset` holds, available (posted credits less
        debits posted and pending), for those holding some: a token's voting power."""
        ac = tables.accounts
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(
                    ac.c.owner, ac.c.credits_posted, ac.c.debits_posted, ac.c.debits_pending
                ).where(ac.c.asset == asset, ac.c.name == "main")
            ).all()
        held = {
            r.owner: int(r.credits_posted) - int(r.debits_posted) - int(r.debits_pending)
            for r in rows
        }
        return {owner: amount for owner, amount in held.items() if amount > 0}

    def lookup(self, owner: str, asset: str) -> AccountRef:
        """Where to pay `owner` in `asset`: the id of their main account (nothing more)."""
        found = self._account_of(owner, asset)
        if found is None:
            raise NotFound(f"{owner} has no {asset} account on this node")
        return AccountRef(id=found, owner=owner, asset=asset, name="main")

    def _require_reader(self, ctx: Context, owner: str, account_id: int) -> None:
        if ctx.actor.kind in ("operator", "node") or ctx.actor.id == owner:
            return
        self.k.check(ctx, "read", account_resource(account_id))

    # Transfers -------------------------------------------------------------------------

    def submit(self, ctx: Context, requests: Sequence[TransferRequest]) -> BatchResult:
        """Apply a batch; the result lists the transfers that were not created."""
        if len(requests) > BATCH_MAX:
            raise BadRequest(f"a batch holds at most {BATCH_MAX} transfers")
        batch = [_transfer_in(r) for r in requests]
        results = self.apply(ctx, batch)
        failed = [
            TransferResult(index=i, id=batch[i].id, result=result)
            for i, (result, _made) in enumerate(results)
            if result != "ok"
        ]
        return BatchResult(created=len(batch) - len(failed), results=failed)

    def apply(
        self, ctx: Context, batch: list[TransferIn], *, payee: tuple[str, str] | None = None
    ) -> list[tuple[str, Transfer | None]]:
        """Apply transfers as the caller; one (result, transfer) per transfer, in order.

        `payee` (owner, asset): open that main account in the same transaction as the
        batch's one transfer, into which it pays; a refusal raises and opens nothing."""
        self.ensure_native_assets()
        actor = self._actor(ctx)
        authority = self._authority(ctx, actor, batch)
        with self._ledger(ctx, wallet_resource(actor)) as tx:
            if payee is not None:
                (t,) = batch
                flags = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
                t.credit_account = self._open(tx, payee[0], payee[1], "main", flags)
            results = self._apply(tx, batch, authority)
            if payee is not None and results[0][0] != "ok":
                raise refused(results[0][0], batch[0].id)  # rolls the new account back too
            return results

    def _to_payee(self, ctx: Context, t: TransferIn, payee: str, asset: str) -> TransferInfo:
        """One transfer into `payee`'s main account of `asset`, opened in the same
        transaction when it does not exist yet: a refused transfer opens nothing."""
        self._require_payee(payee, asset)
        found = self._account_of(payee, asset)
        if found is None:
            try:
                ((_result, made),) = self.apply(ctx, [t], payee=(payee, asset))
                assert made is not None
                return self._info(made)
            except IntegrityError:  # opened meanwhile by another payment: pay into it
                found = self._account_of(payee, asset)
        t.credit_account = found
        return self._one(ctx, t)

    def _authority(self, ctx: Context, actor: str, batch: list[TransferIn]) -> Authority:
        """Who may move what, settled before the write: the accounts the batch names (and
        those of the pending transfers it resolves) that the caller does not own are
        checked against Qonsent grants; a refusal is audited."""
        if ctx.actor.kind in ("operator", "node"):
            return Authority(actor, lambda _account: True)
        named = {t.debit_account for t in batch} | {t.credit_account for t in batch}
        named.discard(None)
        pending_ids = [t.pending_id for t in batch if t.pending_id is not None]
        with self.k.db.read() as conn:
            for held in self.store.transfers(conn, pending_ids).values():
                named.update((held.debit_account, held.credit_account))
            owners = {
                a.id: a.owner
                for a in self.store.accounts(conn, [n for n in named if n is not None]).values()
            }
        allowed: dict[int, bool] = {}
        for account_id, owner in owners.items():
            if owner == actor:
                continue
            try:
                self.k.check(ctx, "write", account_resource(account_id))
                allowed[account_id] = True
            except AnarqError:
                allowed[account_id] = False
        return Authority(actor, lambda account: allowed.get(account.id, False))

    def _apply(
        self, tx: Connection, batch: list[TransferIn], authority: Authority
    ) -> list[tuple[str, Transfer | None]]:
        store = self.store
        ids = [t.id for t in batch]
        pending_ids = [t.pending_id for t in batch if t.pending_id is not None]
        held = store.transfers(tx, ids + pending_ids)
        failures = store.failures(tx, ids)
        pending = store.pending(
            tx, [t.id for t in held.values() if t.flags & TransferFlags.PENDING]
        )
        assets = self._assets(tx)
        named = {t.debit_account for t in batch} | {t.credit_account for t in batch}
        for t in held.values():
            named.update((t.debit_account, t.credit_account))
        for asset in assets.values():
            named.add(asset.treasury_account)
        named.discard(None)
        cache = self._cache
        missing = [a for a in named if a not in cache]
        if missing:
            cache.update(store.accounts(tx, missing))  # type: ignore[arg-type]
        first = max(to_ns(self.k.clock.now()), store.last_timestamp(tx) + 1)
        outcome = Batch(
            accounts=cache,
            transfers=held,
            pending=pending,
            failures=failures,
            assets=assets,
            authority=authority,
            first_timestamp=first,
        ).run(batch)
        store.write(tx, outcome)
        return outcome.results

    def transfer_one(self, ctx: Context, request: TransferRequest) -> TransferInfo:
        """One transfer; refused with the batch result code as a problem."""
        return self._one(ctx, _transfer_in(request))

    def _one(self, ctx: Context, t: TransferIn) -> TransferInfo:
        ((result, made),) = self.apply(ctx, [t])
        if result not in ("ok", "exists") or made is None:
            raise refused(result, t.id)
        info = self._info(made)
        return info.model_copy(update={"result": result})

    def pay(self, ctx: Context, request: PayRequest) -> TransferInfo:
        """Pay an identity by DID from the caller's main account (its account is opened on
        first payment); the asset's fee, if any, is paid by the payee."""
        payer = self._actor(ctx)
        source = self._account_of(payer, request.asset)
        if source is None:
            raise NotFound(f"you hold no {request.asset} account: nothing to pay from")
        flags = TransferFlags.PENDING if request.pending or request.hashlock else 0
        return self._to_payee(
            ctx,
            TransferIn(
                id=request.id,
                debit_account=source,
                amount=request.amount,
                asset=request.asset,
                flags=int(flags),
                timeout=request.timeout,
                hashlock=request.hashlock,
                memo=request.memo,
            ),
            request.to,
            request.asset,
        )

    def mint(self, ctx: Context, code: str, request: MintRequest) -> TransferInfo:
        """New units of `code` to `to`'s main account: by the issuer alone, within the cap."""
        asset = self.asset(code)
        return self._to_payee(
            ctx,
            TransferIn(
                id=request.id,
                debit_account=asset.issuance_account,
                amount=request.amount,
                asset=code,
                code=1,
                memo=request.memo,
            ),
            request.to,
            code,
        )

    def burn(self, ctx: Context, code: str, request: BurnRequest) -> TransferInfo:
        """Units of `code` out of circulation, from the caller's main account: by the issuer
        alone (crediting the issuance account takes the issuer's authority)."""
        asset = self.asset(code)
        source = self._account_of(self._actor(ctx), code)
        if source is None:
            raise NotFound(f"you hold no {code} account: nothing to burn")
        return self._one(
            ctx,
            TransferIn(
                id=request.id,
                debit_account=source,
                credit_account=asset.issuance_account,
                amount=request.amount,
                asset=code,
                code=2,
                memo=request.memo,
            ),
        )

    def transfer(self, ctx: Context, transfer_id: str) -> TransferInfo:
        with self.k.db.read() as conn:
            made = self.store.transfers(conn, [transfer_id]).get(transfer_id)
            if made is None:
                raise NotFound(f"no transfer {transfer_id}")
            owners = {
                a.id: a.owner
                for a in self.store.accounts(
                    conn, [made.debit_account, made.credit_account]
                ).values()
            }
        self._require_party(ctx, made, owners)
        return self._info(made)

    def _require_party(self, ctx: Context, made: Transfer, owners: dict[int, str]) -> None:
        if ctx.actor.kind in ("operator", "node"):
            return
        if ctx.actor.id in owners.values():
            return
        for account_id in (made.debit_account, made.credit_account):
            try:
                self.k.check(ctx, "read", account_resource(account_id))
                return
            except AnarqError:
                continue
        raise NotFound(f"no transfer {made.id}")

    def _info(self, made: Transfer) -> TransferInfo:
        state = None
        if made.flags & TransferFlags.PENDING:
            with self.k.db.read() as conn:
                found = self.store.pending(conn, [made.id]).get(made.id)
            if found is not None:
                state = PendingState.NAMES[found.state]
        return _transfer_info(made, state)

    def history(
        self, ctx: Context, account_id: int, *, before: int | None, limit: int
    ) -> HistoryPage:
        """An account's transfers, newest first (`before`: a timestamp, for paging)."""
        info = self.account(ctx, account_id)
        t = tables.transfers
        limit = max(1, min(limit, HISTORY_MAX))
        rows: list[Any] = []
        with self.k.db.read() as conn:
            for side in (t.c.debit_account, t.c.credit_account):
                query = select(t).where(side == account_id)
                if before is not None:
                    query = query.where(t.c.timestamp < before)
                rows.extend(conn.execute(query.order_by(t.c.timestamp.desc()).limit(limit)))
        rows.sort(key=lambda r: r.timestamp, reverse=True)
        page = rows[:limit]
        made = [transfer_from_row(r) for r in page]
        return HistoryPage(
            account=AccountRef(id=info.id, owner=info.owner, asset=info.asset, name=info.name),
            transfers=[_transfer_info(m, None) for m in made],
            next_before=page[-1].timestamp if len(page) == limit else None,
        )

    # Housekeeping ----------------------------------------------------------------------

    def expire(self) -> int:
        """Release pending transfers whose timeout passed; how many were released."""
        now = to_ns(self.k.clock.now())
        p = tables.pending
        with self.k.db.read() as conn:
            due = list(
                conn.execute(
                    select(p.c.id)
                    .where(p.c.state == PendingState.PENDING, p.c.expires_at <= now)
                    .limit(EXPIRE_BATCH)
                ).scalars()
            )
        if not due:
            return 0
        ctx = Context.system()
        with self._ledger(ctx, "qwallet:expiry", cached=False) as tx:
            states = self.store.pending(tx, due)
            live = [s for s in states.values() if s.state == PendingState.PENDING]
            held = self.store.transfers(tx, [s.id for s in live])
            accounts = self.store.accounts(
                tx, {a for t in held.values() for a in (t.debit_account, t.credit_account)}
            )
            for state in live:
                made = held[state.id]
                accounts[made.debit_account].debits_pending -= made.amount
                accounts[made.credit_account].credits_pending -= made.amount
                state.state = PendingState.EXPIRED
            tx.execute(
                update(p)
                .where(p.c.id.in_([s.id for s in live]), p.c.state == PendingState.PENDING)
                .values(state=PendingState.EXPIRED)
            )
            self.store.update_balances(tx, list(accounts.values()))
            for state in live:
                made = held[state.id]
                self.k.bus.publish(
                    tx,
                    "qwallet.transfer.expired",
                    {"id": made.id, "debit_account": made.debit_account},
                    actor="system",
                    subject=f"qwallet:transfer:{made.id}",
                )
        return len(live)

    async def run_expiry(self, stop: asyncio.Event) -> None:
        """Background task: void pending transfers whose timeout passed."""
        while not stop.is_set():
            try:
                while await asyncio.to_thread(self.expire) == EXPIRE_BATCH:
                    pass
            except Exception:
                log.exception("expiring pending transfers failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), EXPIRE_EVERY_SECONDS)
            except TimeoutError:
                continue

    def verify_books(self, ctx: Context) -> BooksReport:
        """Check the whole ledger: per asset debits equal credits, every account within its
        flags, and every balance equal to what the transfer log and pending states give."""
        self.k.check(ctx, "admin", "qwallet:books")
        with self.k.db.read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, owner, asset, flags, debits_pending, debits_posted,"
                " credits_pending, credits_posted FROM qwallet_accounts"
            ).all()
            stored = {
                r[0]: Account(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6]), int(r[7]))
                for r in rows
            }
            replayed = {a.id: Account(a.id, a.owner, a.asset, a.flags) for a in stored.values()}
            states: dict[str, int] = {
                r[0]: r[1] for r in conn.exec_driver_sql("SELECT id, state FROM qwallet_pending")
            }
            PENDING, VOID = int(TransferFlags.PENDING), int(TransferFlags.VOID_PENDING_TRANSFER)
            count = 0
            seen: set[str] = set()
            problems: list[str] = []
            result = conn.exec_driver_sql(
                "SELECT id, debit_account, credit_account, amount, flags, pending_id"
                " FROM qwallet_transfers ORDER BY timestamp"
            )
            for tid, debit, credit, amount_text, flags, _pending_id in result:
                count += 1
                if tid in seen:
                    problems.append(f"transfer id {tid} applied twice")
                seen.add(tid)
                amount = int(amount_text)
                dr, cr = replayed[debit], replayed[credit]
                if flags & PENDING:
                    if states.get(tid) == PendingState.PENDING:
                        dr.debits_pending += amount
                        cr.credits_pending += amount
                elif not flags & VOID:  # posted, or a post
                    dr.debits_posted += amount
                    cr.credits_posted += amount
            resolutions = conn.exec_driver_sql(
                "SELECT pending_id, count(*) FROM qwallet_transfers"
                " WHERE pending_id IS NOT NULL GROUP BY pending_id HAVING count(*) > 1"
            ).all()
        problems.extend(f"pending transfer {r[0]} resolved {r[1]} times" for r in resolutions)
        problems.extend(check_books(stored.values()))
        for account_id, account in stored.items():
            if account.balances() != replayed[account_id].balances():
                problems.append(
                    f"account {account_id}: stored balances {account.balances()} differ "
                    f"from the transfer log's {replayed[account_id].balances()}"
                )
        return BooksReport(
            ok=not problems, accounts=len(stored), transfers=count, problems=problems
        )

    # Unique tokens ---------------------------------------------------------------------

    def nft_mint(self, ctx: Context, request: NftMintRequest) -> NftInfo:
        issuer = self._actor(ctx)
        owner = request.to or issuer
        if owner != issuer:
            self.squid.identity(owner)
        nft_id = new_id()
        now = self.k.clock.now()
        with self.k.change(ctx, "write", wallet_resource(issuer)) as tx:
            tx.execute(
                insert(tables.nfts).values(
                    id=nft_id,
                    issuer=issuer,
                    owner=owner,
                    name=request.name,
                    metadata=json.dumps(request.metadata, sort_keys=True),
                    created_at=now,
                    royalty_bps=request.royalty_bps,
                )
            )
            self._nft_event(tx, nft_id, 1, "mint", None, owner, issuer, now)
        return self.nft(ctx, nft_id)

    def nft_send(self, ctx: Context, nft_id: str, to: str) -> NftInfo:
        """Give a token to `to`: by its holder, or by someone the holder granted `write` on
        `qwallet:nft:<id>` (an escrow)."""
        actor = self._actor(ctx)
        held = self._nft_row(nft_id)
        if held["owner"] != actor and ctx.actor.kind not in ("operator", "node"):
            self.k.check(ctx, "write", f"qwallet:nft:{nft_id}")
        if to == held["owner"]:
            raise BadRequest(f"{to} already holds {nft_id}")
        if held["listed_in"] is not None:
            raise NftListed(
                f"{nft_id} is for sale in listing {held['listed_in']}: withdraw it first",
                listing=held["listed_in"],
            )
        if held["royalty_bps"] and held["owner"] != held["issuer"]:
            # Otherwise a resale paid on the side would skip the royalty.
            raise NftRoyaltyBound(
                f"{nft_id} pays its creator {held['royalty_bps'] / 100:g} % of every resale: "
                "it changes hands through a Qmarket sale, not by a gift"
            )
        self.squid.identity(to)
        with self.k.change(ctx, "write", wallet_resource(actor)) as tx:
            self._hand_over(tx, nft_id, held["owner"], to, actor, "transfer", listing=None)
        return self.nft(ctx, nft_id)

    def list_nft(self, tx: Connection, nft_id: str, holder: str, listing: str) -> NftInfo:
        """Put `holder`'s token up for sale in `listing` (inside the listing's transaction):
        until it is sold or withdrawn, it changes hands only through that listing."""
        n = tables.nfts
        row = tx.execute(select(n).where(n.c.id == nft_id)).mappings().first()
        if row is None:
            raise NotFound(f"no token {nft_id}")
        if row["owner"] != holder:
            raise Forbidden(f"{holder} does not hold {nft_id}")
        if row["listed_in"] is not None:
            raise NftListed(
                f"{nft_id} is already for sale in listing {row['listed_in']}",
                listing=row["listed_in"],
            )
        locked = tx.execute(
            update(n)
            .where(n.c.id == nft_id, n.c.owner == holder, n.c.listed_in.is_(None))
            .values(listed_in=listing)
        ).rowcount
        if locked != 1:
            raise Conflict(f"{nft_id} changed hands meanwhile; try again")
        return _nft_info({**row, "listed_in": listing}, [])

    def unlist_nft(self, tx: Connection, nft_id: str, listing: str) -> None:
        """The listing is withdrawn: the token is its holder's to give again."""
        n = tables.nfts
        tx.execute(
            update(n).where(n.c.id == nft_id, n.c.listed_in == listing).values(listed_in=None)
        )

    def sell_nft(self, tx: Connection, nft_id: str, listing: str, buyer: str, actor: str) -> None:
        """Hand the token a listing holds to its buyer (inside the settlement's transaction);
        a token no longer held by that listing refuses, which rolls the settlement back."""
        n = tables.nfts
        row = tx.execute(select(n.c.owner, n.c.listed_in).where(n.c.id == nft_id)).first()
        if row is None or row.listed_in != listing:
            raise Conflict(f"{nft_id} is not for sale in listing {listing}")
        self._hand_over(tx, nft_id, row.owner, buyer, actor, "sale", listing=listing)

    def nft_terms(self, nft_id: str) -> tuple[str, int]:
        """Who issued a token and the royalty every sale pays them (basis points)."""
        row = self._nft_row(nft_id)
        return row["issuer"], int(row["royalty_bps"])

    def _hand_over(
        self,
        tx: Connection,
        nft_id: str,
        holder: str,
        to: str,
        actor: str,
        kind: str,
        *,
        listing: str | None,
    ) -> None:
        n, e = tables.nfts, tables.nft_events
        held = n.c.listed_in.is_(None) if listing is None else n.c.listed_in == listing
        moved = tx.execute(
            update(n)
            .where(n.c.id == nft_id, n.c.owner == holder, held)
            .values(owner=to, listed_in=None)
        ).rowcount
        if moved != 1:
            raise Conflict(f"{nft_id} changed hands meanwhile; try again")
        seq = tx.execute(select(func.max(e.c.seq)).where(e.c.nft_id == nft_id)).scalar_one()
        now = self.k.clock.now()
        self._nft_event(tx, nft_id, int(seq) + 1, kind, holder, to, actor, now)

    def nft(self, ctx: Context, nft_id: str) -> NftInfo:
        row = self._nft_row(nft_id)
        e = tables.nft_events
        with self.k.db.read() as conn:
            events = list(
                conn.execute(select(e).where(e.c.nft_id == nft_id).order_by(e.c.seq)).mappings()
            )
        return _nft_info(row, events)

    def nfts(self, ctx: Context) -> list[NftInfo]:
        owner = self._actor(ctx)
        n = tables.nfts
        with self.k.db.read() as conn:
            ids = list(
                conn.execute(select(n.c.id).where(n.c.owner == owner).order_by(n.c.id)).scalars()
            )
        return [self.nft(ctx, i) for i in ids]

    def _nft_row(self, nft_id: str) -> RowMapping:
        n = tables.nfts
        with self.k.db.read() as conn:
            row = conn.execute(select(n).where(n.c.id == nft_id)).mappings().first()
        if row is None:
            raise NotFound(f"no token {nft_id}")
        return row

    def _nft_event(
        self,
        tx: Connection,
        nft_id: str,
        seq: int,
        kind: str,
        from_did: str | None,
        to_did: str | None,
        actor: str,
        at: datetime,
    ) -> None:
        tx.execute(
            insert(tables.nft_events).values(
                nft_id=nft_id,
                seq=seq,
                kind=kind,
                from_did=from_did,
                to_did=to_did,
                actor=actor,
                at=at,
            )
        )

    # Data-subject requests -------------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """The person's accounts and every transfer touching them, and their tokens."""
        ac, n = tables.accounts, tables.nfts
        with self.k.db.read() as conn:
            accounts = [
                dict(r) for r in conn.execute(select(ac).where(ac.c.owner == did)).mappings()
            ]
            tokens = [dict(r) for r in conn.execute(select(n).where(n.c.owner == did)).mappings()]
        ids = [a["id"] for a in accounts]
        t = tables.transfers
        with self.k.db.read() as conn:
            moves = (
                [
                    dict(r)
                    for r in conn.execute(
                        select(t)
                        .where(t.c.debit_account.in_(ids) | t.c.credit_account.in_(ids))
                        .order_by(t.c.timestamp)
                    ).mappings()
                ]
                if ids
                else []
            )
        yield json_item("qwallet/accounts.json", accounts)
        yield json_item("qwallet/transfers.json", moves)
        yield json_item("qwallet/nfts.json", tokens)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Close the person's accounts: nothing more can be paid in or out. The entries
        stay: money moved stays moved in every other party's books (the ledger is the
        record a payment law asks to keep)."""
        ac = tables.accounts
        with self._ledger(ctx, wallet_resource(did), cached=False) as tx:
            closed = tx.execute(
                update(ac)
                .where(ac.c.owner == did)
                .values(flags=ac.c.flags.op("|")(int(AccountFlags.CLOSED)))
            ).rowcount
        return {"accounts_closed": int(closed)}


def _nft_info(row: Mapping[str, Any] | RowMapping, events: Sequence[RowMapping]) -> NftInfo:
    return NftInfo(
        id=row["id"],
        issuer=row["issuer"],
        owner=row["owner"],
        name=row["name"],
        metadata=json.loads(row["metadata"]),
        created_at=row["created_at"],
        royalty_bps=row["royalty_bps"],
        listed_in=row["listed_in"],
        provenance=[
            NftEvent(
                seq=r["seq"],
                kind=r["kind"],
                from_did=r["from_did"],
                to_did=r["to_did"],
                actor=r["actor"],
                at=r["at"],
            )
            for r in events
        ],
    )


def _transfer_in(r: TransferRequest) -> TransferIn:
    return TransferIn(
        id=r.id,
        debit_account=r.debit_account,
        credit_account=r.credit_account,
        amount=r.amount,
        asset=r.asset,
        pending_id=r.pending_id,
        flags=r.flag_bits(),
        timeout=r.timeout,
        hashlock=r.hashlock,
        preimage=bytes.fromhex(r.preimage) if r.preimage is not None else None,
        code=r.code,
        memo=r.memo,
    )


def _transfer_info(made: Transfer, state: str | None) -> TransferInfo:
    return TransferInfo(
        id=made.id,
        timestamp=made.timestamp,
        debit_account=made.debit_account,
        credit_account=made.credit_account,
        amount=made.amount,
        asset=made.asset,
        pending_id=made.pending_id,
        flags=flag_names(made.flags, TRANSFER_FLAGS),
        timeout=made.timeout,
        hashlock=made.hashlock,
        code=made.code,
        memo=made.memo,
        actor=made.actor,
        pending_state=state,
    )


def _account_info(row: RowMapping) -> AccountInfo:
    dp, dpo = int(row["debits_pending"]), int(row["debits_posted"])
    cp, cpo = int(row["credits_pending"]), int(row["credits_posted"])
    available = cpo - dpo - dp
    return AccountInfo(
        id=row["id"],
        owner=row["owner"],
        asset=row["asset"],
        name=row["name"],
        flags=flag_names(row["flags"], ACCOUNT_FLAGS),
        debits_pending=dp,
        debits_posted=dpo,
        credits_pending=cp,
        credits_posted=cpo,
        balance=available if 0 <= available <= AMOUNT_MAX else None,
        created_at=row["created_at"],
    )


def _asset_info(row: RowMapping, issuance: Account) -> AssetInfo:
    cap = None if row["supply_cap"] is None else int(row["supply_cap"])
    # Minted minus burnt: what the issuance account paid out net, less the cap it holds.
    supply = issuance.debits_posted - issuance.credits_posted + (cap or 0)
    return AssetInfo(
        code=row["code"],
        name=row["name"],
        scale=row["scale"],
        issuer=row["issuer"],
        supply_cap=cap,
        supply=max(0, supply),
        issuance_account=row["issuance_account"],
        treasury_account=row["treasury_account"],
        fee_bps=row["fee_bps"],
        fee_min=int(row["fee_min"]),
        fee_max=None if row["fee_max"] is None else int(row["fee_max"]),
        created_at=row["created_at"],
    )
