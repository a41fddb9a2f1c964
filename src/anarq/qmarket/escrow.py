"""An order's money in Qwallet: one hold into the market's escrow, then one post with its
split, or one void.

The hold is a pending transfer from the buyer's account to the node's escrow account of
the asset, with a timeout past every deadline the order can reach: if the market itself
stopped acting, the ledger would still give the buyer their money back. Settling posts
what the buyer pays (all of the price, or a moderator's part of it; the rest goes back
to the buyer) and pays it out of escrow in the same linked chain: the market's fee, the
creator's royalty, and the seller's rest. Transfer ids carry the order's id and a dot,
which a client's ids cannot, so nothing else ever takes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from anarq.kernel.errors import AnarqError
from anarq.qwallet.agent import LedgerAgent
from anarq.qwallet.ledger import AccountFlags, TransferFlags, TransferIn
from anarq.qwallet.service import TransferRefused

ESCROW_ACCOUNT = "qmarket-escrow"
FEES_ACCOUNT = "qmarket-fees"
_ESCROW_FLAGS = int(AccountFlags.ESCROW | AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_FEES_FLAGS = int(AccountFlags.TREASURY)
BPS = 10_000

# Transfer codes (a client's reason field): what each movement was, in statements.
CODE_HOLD = 7101
CODE_SETTLE = 7102
CODE_FEE = 7103
CODE_ROYALTY = 7104
CODE_PAYOUT = 7105
CODE_REFUND = 7106


class PaymentRefused(AnarqError):
    """The buyer's account cannot pay: `result` is the ledger's reason."""

    code = "qmarket.payment_refused"
    status = 422
    title = "Payment refused"


def hold_id(order_id: str) -> str:
    return f"m.{order_id}.hold"


def order_of_hold(transfer_id: str) -> str | None:
    """The order a hold belongs to, or None for any other transfer."""
    if transfer_id.startswith("m.") and transfer_id.endswith(".hold"):
        return transfer_id[2:-5] or None
    return None


@dataclass(frozen=True)
class Split:
    """Where what the buyer pays goes: the market's fee, the creator's royalty, the seller."""

    paid: int
    fee: int
    royalty: int
    seller: int

    @classmethod
    def of(cls, paid: int, fee_bps: int, royalty_bps: int) -> Split:
        assert paid >= 0 and 0 <= fee_bps + royalty_bps <= BPS, "a split gives out what it has"
        fee = paid * fee_bps // BPS
        royalty = paid * royalty_bps // BPS
        split = cls(paid=paid, fee=fee, royalty=royalty, seller=paid - fee - royalty)
        assert split.fee + split.royalty + split.seller == paid and split.seller >= 0
        return split


class Escrow:
    """The market's escrow of one asset, inside a ledger agent's transaction."""

    def __init__(self, agent: LedgerAgent, asset: str) -> None:
        self.agent = agent
        self.asset = asset
        self.account = agent.node_account(asset, ESCROW_ACCOUNT, _ESCROW_FLAGS)

    def hold(self, order_id: str, buyer: str, amount: int, timeout_seconds: int) -> None:
        """Take `amount` from the buyer's main account into escrow, pending."""
        source = self.agent.account(buyer, self.asset)
        try:
            self.agent.chain(
                [
                    TransferIn(
                        id=hold_id(order_id),
                        debit_account=source,
                        credit_account=self.account,
                        amount=amount,
                        asset=self.asset,
                        flags=int(TransferFlags.PENDING),
                        timeout=timeout_seconds,
                        code=CODE_HOLD,
                        memo=_memo(order_id),
                    )
                ]
            )
        except TransferRefused as refused:
            result = refused.extra.get("result", "refused")
            raise PaymentRefused(
                f"your {self.asset} account cannot pay {amount} (smallest units): {result}",
                result=result,
            ) from None

    def settle(self, order_id: str, split: Split, seller: str, creator: str | None) -> list[str]:
        """Post `split.paid` of the hold (the rest returns to the buyer) and pay it out, in
        one linked chain; the ids of its transfers."""
        assert split.paid > 0, "settling pays something; a refund releases the hold"
        legs = [
            TransferIn(
                id=f"m.{order_id}.post",
                pending_id=hold_id(order_id),
                amount=split.paid,
                flags=int(TransferFlags.POST_PENDING_TRANSFER),
                code=CODE_SETTLE,
                memo=_memo(order_id),
            )
        ]
        if split.fee:
            fees = self.agent.node_account(self.asset, FEES_ACCOUNT, _FEES_FLAGS)
            legs.append(self._payout(f"m.{order_id}.fee", fees, split.fee, CODE_FEE, order_id))
        if split.royalty:
            assert creator is not None, "a royalty has a creator"
            payee = self.agent.account(creator, self.asset)
            legs.append(
                self._payout(f"m.{order_id}.roy", payee, split.royalty, CODE_ROYALTY, order_id)
            )
        if split.seller:
            payee = self.agent.account(seller, self.asset)
            legs.append(
                self._payout(f"m.{order_id}.pay", payee, split.seller, CODE_PAYOUT, order_id)
            )
        return [transfer.id for transfer in self.agent.chain(legs)]

    def release(self, order_id: str) -> None:
        """Void the hold: the buyer has all of it back."""
        self.agent.chain(
            [
                TransferIn(
                    id=f"m.{order_id}.void",
                    pending_id=hold_id(order_id),
                    flags=int(TransferFlags.VOID_PENDING_TRANSFER),
                    code=CODE_REFUND,
                    memo=_memo(order_id),
                )
            ]
        )

    def _payout(self, leg_id: str, payee: int, amount: int, code: int, order_id: str) -> TransferIn:
        return TransferIn(
            id=leg_id,
            debit_account=self.account,
            credit_account=payee,
            amount=amount,
            asset=self.asset,
            code=code,
            memo=_memo(order_id),
        )


def _memo(order_id: str) -> str:
    return f"Qmarket order {order_id}"
