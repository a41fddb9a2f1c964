"""The double-entry state machine: a batch of transfers in, one result per transfer out.

Modelled on TigerBeetle's `create_transfers`: client-chosen ids (a transfer is applied at
most once; resending it answers `exists`), two-phase transfers (pending, then post or void,
partial posts, timeouts), linked chains that succeed or fail whole, balancing transfers,
and the account flags that forbid overdrafts. Result codes carry TigerBeetle's names and
precedence; the few that are ours (authority, hash locks, supply caps) say so below.

`Batch` is pure: it works on the accounts, transfers and pending states a `LedgerStore`
loaded for it, and hands back what to write. Every applied transfer moves the same amount
onto a debit and a credit field of one asset, so per asset the sums of debits and of
credits stay equal; `Batch.finish` checks that before anything is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntFlag

AMOUNT_MAX = 2**128 - 1  # amounts are unsigned 128-bit integers in the asset's smallest unit
TIMEOUT_MAX = 366 * 24 * 3600  # seconds a pending transfer may wait
NS = 1_000_000_000
FEE_SUFFIX = ".fee"  # a fee leg's id is its transfer's id and this; client ids have no dot
FEE_CODE = 9001


class TransferFlags(IntFlag):
    LINKED = 1 << 0
    PENDING = 1 << 1
    POST_PENDING_TRANSFER = 1 << 2
    VOID_PENDING_TRANSFER = 1 << 3
    BALANCING_DEBIT = 1 << 4
    BALANCING_CREDIT = 1 << 5


class AccountFlags(IntFlag):
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1 << 1
    CREDITS_MUST_NOT_EXCEED_DEBITS = 1 << 2
    CLOSED = 1 << 5
    # Ours: the account an asset is minted from (debit) and burnt into (credit). Crediting
    # it takes the issuer's authority too, and it never pays a fee.
    ISSUANCE = 1 << 8
    # Ours: the account fees go to; it pays none itself.
    TREASURY = 1 << 9
    # Ours: an escrow (Qmarket's): money held in it pays no fee on the way in; paid out,
    # the payee pays the asset's fee as on any payment.
    ESCROW = 1 << 10


TRANSFER_FLAGS = {flag.name.lower(): int(flag) for flag in TransferFlags if flag.name}
ACCOUNT_FLAGS = {flag.name.lower(): int(flag) for flag in AccountFlags if flag.name}

# The same flags as plain ints: an IntFlag operation costs a microsecond, and a batch
# makes dozens per transfer.
_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_BALANCING_DEBIT = int(TransferFlags.BALANCING_DEBIT)
_BALANCING_CREDIT = int(TransferFlags.BALANCING_CREDIT)
_KNOWN_TRANSFER_FLAGS = sum(TRANSFER_FLAGS.values())
_POST_OR_VOID = _POST | _VOID
_BALANCING = _BALANCING_DEBIT | _BALANCING_CREDIT
_NO_OVERDRAFT = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_NO_OVERCREDIT = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
_CLOSED = int(AccountFlags.CLOSED)
_ISSUANCE = int(AccountFlags.ISSUANCE)
_FEE_EXEMPT = int(AccountFlags.ISSUANCE | AccountFlags.TREASURY)
_FEE_EXEMPT_PAYEE = _FEE_EXEMPT | int(AccountFlags.ESCROW)


class PendingState:
    PENDING = 1
    POSTED = 2
    VOIDED = 3
    EXPIRED = 4
    NAMES = {1: "pending", 2: "posted", 3: "voided", 4: "expired"}


@dataclass(slots=True)
class Account:
    id: int
    owner: str
    asset: str
    flags: int
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    def balances(self) -> tuple[int, int, int, int]:
        return (self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted)

    def restore(self, saved: tuple[int, int, int, int]) -> None:
        (self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted) = saved

    def within_flags(self) -> bool:
        if self.flags & _NO_OVERDRAFT and (
            self.debits_pending + self.debits_posted > self.credits_posted
        ):
            return False
        return not (
            self.flags & _NO_OVERCREDIT
            and self.credits_pending + self.credits_posted > self.debits_posted
        )


@dataclass(slots=True)
class TransferIn:
    """A transfer as a client asks for it; `None` is "not given"."""

    id: str
    debit_account: int | None = None
    credit_account: int | None = None
    amount: int | None = None
    asset: str | None = None
    pending_id: str | None = None
    flags: int = 0
    timeout: int = 0
    hashlock: str | None = None  # SHA-256 (hex) a post must reveal the preimage of
    preimage: bytes | None = None
    code: int = 0
    memo: str | None = None


@dataclass(slots=True)
class Transfer:
    """A transfer as the ledger holds it: immutable once written."""

    id: str
    timestamp: int
    debit_account: int
    credit_account: int
    amount: int
    asset: str
    pending_id: str | None
    flags: int
    timeout: int
    hashlock: str | None
    code: int
    memo: str | None
    actor: str


@dataclass(slots=True)
class Pending:
    """Where a pending transfer stands; changes once, from PENDING."""

    id: str
    state: int
    expires_at: int | None  # ns since the epoch


@dataclass(slots=True)
class Asset:
    """What the state machine needs of an asset: where its fees go, and how much."""

    code: str
    treasury_account: int | None = None
    fee_bps: int = 0
    fee_min: int = 0
    fee_max: int | None = None

    def fee(self, amount: int) -> int:
        if self.treasury_account is None or amount == 0:
            return 0
        fee = max(amount * self.fee_bps // 10_000, self.fee_min)
        if self.fee_max is not None:
            fee = min(fee, self.fee_max)
        return min(fee, amount)


class Authority:
    """Who may move what: answers for the batch's actor, remembering each answer."""

    def __init__(self, actor: str, allows: Callable[[Account], bool]) -> None:
        self.actor = actor
        self._allows = allows
        self._known: dict[int, bool] = {}

    def over(self, account: Account) -> bool:
        if account.owner == self.actor:
            return True
        known = self._known.get(account.id)
        if known is None:
            known = self._known[account.id] = self._allows(account)
        return known


@dataclass
class Outcome:
    """What a batch did: results per transfer, and the rows a store writes."""

    results: list[tuple[str, Transfer | None]]
    transfers: list[Transfer] = field(default_factory=list)
    new_pending: list[Pending] = field(default_factory=list)
    resolved_pending: list[Pending] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    failures: list[tuple[str, str, int]] = field(default_factory=list)  # id, result, timestamp


# Failures that depend on the ledger's state, not the transfer alone: the id is kept with
# its result, so a retry answers the same even once the state would let it through.
TRANSIENT = frozenset(
    {
        "debit_account_not_found",
        "credit_account_not_found",
        "pending_transfer_not_found",
        "exceeds_credits",
        "exceeds_debits",
        "exceeds_supply_cap",
        "pending_transfer_expired",
        "debit_account_already_closed",
        "credit_account_already_closed",
        "overflows_debits_pending",
        "overflows_credits_pending",
        "overflows_debits_posted",
        "overflows_credits_posted",
        "overflows_debits",
        "overflows_credits",
    }
)


class Batch:
    """Apply transfers in order against loaded state; see the module docstring."""

    def __init__(
        self,
        *,
        accounts: dict[int, Account],
        transfers: dict[str, Transfer],
        pending: dict[str, Pending],
        failures: dict[str, str],
        assets: dict[str, Asset],
        authority: Authority,
        first_timestamp: int,
    ) -> None:
        self.accounts = accounts
        self.transfers = transfers  # already held, and made by this batch
        self.pending = pending
        self.failures = failures
        self.assets = assets
        self._charging = {
            code
            for code, asset in assets.items()
            if asset.treasury_account is not None and (asset.fee_bps or asset.fee_min)
        }
        self.authority = authority
        self.timestamp = first_timestamp - 1
        self.now = first_timestamp
        self._new: list[Transfer] = []
        self._new_pending: dict[str, Pending] = {}
        self._resolved: dict[str, Pending] = {}
        self._touched: dict[int, Account] = {}
        self._failed: list[tuple[str, str, int]] = []
        # Undo log of the open chain: balances and pending states before it touched them.
        self._chain_balances: dict[int, tuple[int, int, int, int]] | None = None
        self._chain_pending: dict[str, int] = {}
        self._chain_start = 0
        self._before: dict[int, tuple[int, int, int, int]] = {}  # balances at first touch

    # Driving --------------------------------------------------------------------------

    def run(self, transfers: list[TransferIn]) -> Outcome:
        results: list[tuple[str, Transfer | None]] = []
        n = len(transfers)
        i = 0
        while i < n:
            end = i
            while end < n - 1 and transfers[end].flags & _LINKED:
                end += 1
            if end > i or transfers[end].flags & _LINKED:
                results.extend(self._chain(transfers[i : end + 1], open_end=end == n - 1))
            else:
                results.append(self._one(transfers[i]))
            i = end + 1
        return self.finish(results)

    def _one(self, t: TransferIn) -> tuple[str, Transfer | None]:
        known_failure = t.id in self.failures
        result, made = self._create(t)
        if result in TRANSIENT and not known_failure:
            self._failed.append((t.id, result, self.now))
            self.failures[t.id] = result
        return result, made

    def _chain(
        self, chain: list[TransferIn], *, open_end: bool
    ) -> list[tuple[str, Transfer | None]]:
        self._chain_balances = {}
        self._chain_pending = {}
        self._chain_start = len(self._new)
        results: list[tuple[str, Transfer | None]] = []
        failed_at = -1
        for index, t in enumerate(chain):
            if open_end and index == len(chain) - 1 and t.flags & _LINKED:
                results.append(("linked_event_chain_open", None))
                failed_at = index
                break
            result, made = self._create(t)
            results.append((result, made))
            if result not in ("ok", "exists"):
                failed_at = index
                break
        if failed_at >= 0:
            self._undo_chain()
            results = [
                ("linked_event_failed", None) if k != failed_at else (results[k][0], None)
                for k in range(len(chain))
            ]
        self._chain_balances = None
        return results

    def _undo_chain(self) -> None:
        assert self._chain_balances is not None
        for account_id, saved in self._chain_balances.items():
            self.accounts[account_id].restore(saved)
        for pending_id, state in self._chain_pending.items():
            if state == 0:  # made in the chain
                self._new_pending.pop(pending_id, None)
                self.pending.pop(pending_id, None)
            else:
                self.pending[pending_id].state = state
                self._resolved.pop(pending_id, None)
        for made in self._new[self._chain_start :]:
            del self.transfers[made.id]
        del self._new[self._chain_start :]

    def finish(self, results: list[tuple[str, Transfer | None]]) -> Outcome:
        """Check the batch kept the books balanced and every account within its flags:
        per asset, what it added to debits equals what it added to credits."""
        moved: dict[str, int] = {}
        for account in self._touched.values():
            before = self._before[account.id]
            after = account.balances()
            change = (after[0] - before[0] + after[1] - before[1]) - (
                after[2] - before[2] + after[3] - before[3]
            )
            moved[account.asset] = moved.get(account.asset, 0) + change
            if not account.within_flags():
                raise AssertionError(f"account {account.id} broke its flags")
        for asset, change in moved.items():
            if change != 0:
                raise AssertionError(f"a batch put the {asset} books out of balance by {change}")
        return Outcome(
            results=results,
            transfers=self._new,
            new_pending=list(self._new_pending.values()),
            resolved_pending=[p for k, p in self._resolved.items() if k not in self._new_pending],
            accounts=list(self._touched.values()),
            failures=self._failed,
        )

    # One transfer ----------------------------------------------------------------------

    def _create(self, t: TransferIn) -> tuple[str, Transfer | None]:
        flags = t.flags
        if flags & ~_KNOWN_TRANSFER_FLAGS:
            return "reserved_flag", None
        existing = self.transfers.get(t.id)
        if existing is not None:
            return _exists(t, existing), existing
        failed = self.failures.get(t.id)
        if failed is not None:
            return failed, None
        if flags & _PENDING and flags & _POST_OR_VOID:
            return "flags_are_mutually_exclusive", None
        if flags & _POST_OR_VOID == _POST_OR_VOID or (flags & _POST_OR_VOID and flags & _BALANCING):
            return "flags_are_mutually_exclusive", None
        if flags & _POST_OR_VOID:
            return self._resolve(t)
        return self._move(t)

    def _move(self, t: TransferIn) -> tuple[str, Transfer | None]:
        flags = t.flags
        if t.debit_account is None:
            return "debit_account_id_must_not_be_zero", None
        if t.credit_account is None:
            return "credit_account_id_must_not_be_zero", None
        if t.debit_account == t.credit_account:
            return "accounts_must_be_different", None
        if t.pending_id is not None:
            return "pending_id_must_be_zero", None
        if t.timeout and not flags & _PENDING:
            return "timeout_reserved_for_pending_transfer", None
        if t.hashlock is not None and not flags & _PENDING:
            return "hashlock_reserved_for_pending_transfer", None
        amount = t.amount
        if amount is None:
            if not flags & _BALANCING:
                return "amount_must_not_be_zero", None
            amount = AMOUNT_MAX
        elif amount == 0 and not flags & _BALANCING:
            return "amount_must_not_be_zero", None
        dr = self.accounts.get(t.debit_account)
        if dr is None:
            return "debit_account_not_found", None
        cr = self.accounts.get(t.credit_account)
        if cr is None:
            return "credit_account_not_found", None
        if dr.asset != cr.asset:
            return "accounts_must_have_the_same_ledger", None
        if t.asset is not None and t.asset != dr.asset:
            return "transfer_must_have_the_same_ledger_as_accounts", None
        if not self.authority.over(dr):
            return "debit_account_not_authorized", None
        if cr.flags & _ISSUANCE and not self.authority.over(cr):
            return "credit_account_not_authorized", None
        if dr.flags & _CLOSED:
            return "debit_account_already_closed", None
        if cr.flags & _CLOSED:
            return "credit_account_already_closed", None
        if flags & _BALANCING_DEBIT:
            amount = min(amount, max(0, dr.credits_posted - dr.debits_posted - dr.debits_pending))
        if flags & _BALANCING_CREDIT:
            amount = min(amount, max(0, cr.debits_posted - cr.credits_posted - cr.credits_pending))
        pending = bool(flags & _PENDING)
        if pending:
            if dr.debits_pending + amount > AMOUNT_MAX:
                return "overflows_debits_pending", None
            if cr.credits_pending + amount > AMOUNT_MAX:
                return "overflows_credits_pending", None
        else:
            if dr.debits_posted + amount > AMOUNT_MAX:
                return "overflows_debits_posted", None
            if cr.credits_posted + amount > AMOUNT_MAX:
                return "overflows_credits_posted", None
        if dr.debits_pending + dr.debits_posted + amount > AMOUNT_MAX:
            return "overflows_debits", None
        if cr.credits_pending + cr.credits_posted + amount > AMOUNT_MAX:
            return "overflows_credits", None
        if dr.flags & _NO_OVERDRAFT and (
            dr.debits_pending + dr.debits_posted + amount > dr.credits_posted
        ):
            if dr.flags & _ISSUANCE:
                return "exceeds_supply_cap", None
            return "exceeds_credits", None
        if cr.flags & _NO_OVERCREDIT and (
            cr.credits_pending + cr.credits_posted + amount > cr.debits_posted
        ):
            return "exceeds_debits", None
        fee, treasury = 0, None
        if not pending:
            if dr.asset in self._charging:
                fee, treasury = self._fee_for(dr, cr, amount)
            if fee and treasury is None:
                return "credit_account_not_found", None
        self._save(dr)
        self._save(cr)
        if pending:
            dr.debits_pending += amount
            cr.credits_pending += amount
        else:
            dr.debits_posted += amount
            cr.credits_posted += amount
        made = self._record(t, t.debit_account, t.credit_account, amount, dr.asset, None)
        if pending:
            expires = made.timestamp + t.timeout * NS if t.timeout else None
            state = Pending(t.id, PendingState.PENDING, expires)
            self._new_pending[t.id] = state
            self.pending[t.id] = state
            if self._chain_balances is not None:
                self._chain_pending[t.id] = 0
        if fee:
            assert treasury is not None
            self._fee_leg(t.id, cr, treasury, fee)
        return "ok", made

    def _resolve(self, t: TransferIn) -> tuple[str, Transfer | None]:
        post = bool(t.flags & _POST)
        if t.pending_id is None:
            return "pending_id_must_not_be_zero", None
        if t.pending_id == t.id:
            return "pending_id_must_be_different", None
        if t.timeout:
            return "timeout_reserved_for_pending_transfer", None
        if t.hashlock is not None:
            return "hashlock_reserved_for_pending_transfer", None
        p = self.transfers.get(t.pending_id)
        if p is None:
            return "pending_transfer_not_found", None
        if not p.flags & _PENDING:
            return "pending_transfer_not_pending", None
        if t.debit_account is not None and t.debit_account != p.debit_account:
            return "pending_transfer_has_different_debit_account_id", None
        if t.credit_account is not None and t.credit_account != p.credit_account:
            return "pending_transfer_has_different_credit_account_id", None
        if t.asset is not None and t.asset != p.asset:
            return "pending_transfer_has_different_ledger", None
        amount = p.amount if t.amount is None else t.amount
        if post and amount > p.amount:
            return "exceeds_pending_transfer_amount", None
        if not post and amount != p.amount:
            return "pending_transfer_has_different_amount", None
        state = self.pending[p.id]
        if state.state == PendingState.POSTED:
            return "pending_transfer_already_posted", None
        if state.state == PendingState.VOIDED:
            return "pending_transfer_already_voided", None
        if state.state == PendingState.EXPIRED or (
            state.expires_at is not None and state.expires_at <= self.now
        ):
            return "pending_transfer_expired", None
        dr = self.accounts[p.debit_account]
        cr = self.accounts[p.credit_account]
        if post:
            allowed = self.authority.over(dr) or (
                p.hashlock is not None and self.authority.over(cr)
            )
        else:
            allowed = self.authority.over(cr) or (
                p.hashlock is None and not p.timeout and self.authority.over(dr)
            )
        if not allowed:
            return "pending_transfer_not_authorized", None
        if post and p.hashlock is not None:
            if t.preimage is None:
                return "preimage_required", None
            if hashlib.sha256(t.preimage).hexdigest() != p.hashlock:
                return "preimage_does_not_match_hashlock", None
        charged = post and dr.asset in self._charging
        fee, treasury = self._fee_for(dr, cr, amount) if charged else (0, None)
        if fee and treasury is None:
            return "credit_account_not_found", None
        self._save(dr)
        self._save(cr)
        dr.debits_pending -= p.amount
        cr.credits_pending -= p.amount
        if post:
            dr.debits_posted += amount
            cr.credits_posted += amount
        if self._chain_balances is not None and p.id not in self._chain_pending:
            self._chain_pending[p.id] = state.state
        state.state = PendingState.POSTED if post else PendingState.VOIDED
        self._resolved[p.id] = state
        made = self._record(t, p.debit_account, p.credit_account, amount, p.asset, p.id)
        if fee:
            assert treasury is not None
            self._fee_leg(t.id, cr, treasury, fee)
        return "ok", made

    # Effects ---------------------------------------------------------------------------

    def _fee_for(self, dr: Account, cr: Account, amount: int) -> tuple[int, Account | None]:
        if dr.flags & _FEE_EXEMPT or cr.flags & _FEE_EXEMPT_PAYEE:
            return 0, None
        asset = self.assets.get(dr.asset)
        if asset is None or asset.treasury_account is None:
            return 0, None
        fee = asset.fee(amount)
        return fee, self.accounts.get(asset.treasury_account)

    def _fee_leg(self, transfer_id: str, payee: Account, treasury: Account, fee: int) -> None:
        """The payee pays the asset's fee to its treasury, in the same step as the transfer:
        the payee has just been credited at least the fee, so the leg cannot fail."""
        self._save(treasury)
        payee.debits_posted += fee
        treasury.credits_posted += fee
        leg = TransferIn(id=transfer_id + FEE_SUFFIX, code=FEE_CODE)
        self._record(leg, payee.id, treasury.id, fee, payee.asset, None)

    def _save(self, account: Account) -> None:
        if account.id not in self._touched:
            self._touched[account.id] = account
            self._before[account.id] = account.balances()
        chain = self._chain_balances
        if chain is not None and account.id not in chain:
            chain[account.id] = account.balances()

    def _record(
        self,
        t: TransferIn,
        debit: int,
        credit: int,
        amount: int,
        asset: str,
        pending_id: str | None,
    ) -> Transfer:
        self.timestamp += 1
        made = Transfer(
            id=t.id,
            timestamp=self.timestamp,
            debit_account=debit,
            credit_account=credit,
            amount=amount,
            asset=asset,
            pending_id=pending_id,
            flags=t.flags,
            timeout=t.timeout,
            hashlock=t.hashlock,
            code=t.code,
            memo=t.memo,
            actor=self.authority.actor,
        )
        self.transfers[t.id] = made
        self._new.append(made)
        return made


def _exists(t: TransferIn, held: Transfer) -> str:
    """The result for a transfer whose id the ledger already holds (TigerBeetle's order)."""
    if t.flags != held.flags:
        return "exists_with_different_flags"
    if t.pending_id != held.pending_id:
        return "exists_with_different_pending_id"
    if t.timeout != held.timeout:
        return "exists_with_different_timeout"
    if t.debit_account is not None and t.debit_account != held.debit_account:
        return "exists_with_different_debit_account_id"
    if t.credit_account is not None and t.credit_account != held.credit_account:
        return "exists_with_different_credit_account_id"
    if t.amount is not None and not t.flags & _BALANCING and t.amount != held.amount:
        return "exists_with_different_amount"
    if t.memo != held.memo:
        return "exists_with_different_user_data"
    if t.asset is not None and t.asset != held.asset:
        return "exists_with_different_ledger"
    if t.code != held.code:
        return "exists_with_different_code"
    if t.hashlock != held.hashlock:
        return "exists_with_different_hashlock"
    return "exists"


def check_books(accounts: Iterable[Account]) -> list[str]:
    """What is wrong with a set of accounts as a whole (empty when nothing is)."""
    sums: dict[str, list[int]] = {}
    problems = []
    for account in accounts:
        s = sums.setdefault(account.asset, [0, 0, 0, 0])
        s[0] += account.debits_pending
        s[1] += account.debits_posted
        s[2] += account.credits_pending
        s[3] += account.credits_posted
        if not account.within_flags():
            problems.append(f"account {account.id} ({account.owner}) breaks its flags")
    for asset, (dp, dpo, cp, cpo) in sorted(sums.items()):
        if dp != cp:
            problems.append(f"{asset}: pending debits {dp} != pending credits {cp}")
        if dpo != cpo:
            problems.append(f"{asset}: posted debits {dpo} != posted credits {cpo}")
    return problems
