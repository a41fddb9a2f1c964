"""Ledger writes another module makes as the node's agent, inside one transaction.

A marketplace holds a buyer's money in escrow and pays it out on delivery; a DAO pays out
of its treasury when a vote passes. Such a module opens `WalletService.agent`, applies
its transfers here and writes its own rows on the same connection, so the money moves
together with what it pays for, or not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.engine import Connection

from anarq.qwallet import tables
from anarq.qwallet.ledger import AccountFlags, Authority, Transfer, TransferFlags, TransferIn

if TYPE_CHECKING:
    from anarq.qwallet.service import WalletService

_LINKED = int(TransferFlags.LINKED)


class LedgerAgent:
    def __init__(self, wallet: WalletService, tx: Connection, authority: Authority) -> None:
        self.wallet = wallet
        self.tx = tx
        self.authority = authority

    def apply(self, batch: list[TransferIn]) -> list[tuple[str, Transfer | None]]:
        """Apply transfers in order; one (result, transfer) each, as a batch answers."""
        return self.wallet._apply(self.tx, batch, self.authority)

    def chain(self, legs: list[TransferIn]) -> list[Transfer]:
        """Apply `legs` as one linked chain: all of them, or a `TransferRefused` naming the
        first that failed (which rolls back the whole transaction)."""
        from anarq.qwallet.service import refused

        assert legs, "a chain has at least one transfer"
        for leg in legs[:-1]:
            leg.flags |= _LINKED
        legs[-1].flags &= ~_LINKED
        results = self.apply(legs)
        for leg, (result, _made) in zip(legs, results, strict=True):
            if result not in _CREATED_OR_ECHO:  # the chain's own failure, with its code
                raise refused(result, leg.id)
        made = [transfer for _result, transfer in results]
        assert all(transfer is not None for transfer in made), "a chain failed silently"
        return [transfer for transfer in made if transfer is not None]

    def account(self, owner: str, asset: str) -> int:
        """`owner`'s main account of `asset`, opened (no overdraft) if it has none."""
        return self._named(owner, asset, "main", AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)

    def node_account(self, asset: str, name: str, flags: int) -> int:
        """The node's account `name` of `asset` (an escrow, a fee account), opened if new."""
        return self._named(self.wallet.node.identity.did, asset, name, flags)

    def _named(self, owner: str, asset: str, name: str, flags: int) -> int:
        ac = tables.accounts
        found = self.tx.execute(
            select(ac.c.id).where(ac.c.owner == owner, ac.c.asset == asset, ac.c.name == name)
        ).scalar_one_or_none()
        if found is not None:
            return int(found)
        return self.wallet._open(self.tx, owner, asset, name, int(flags))


# Results that are not a chain's own failure: created, or the others' echo of one.
_CREATED_OR_ECHO = frozenset({"ok", "exists", "linked_event_failed"})
