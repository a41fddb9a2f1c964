"""Postage: what mail from a stranger pays its recipient to reach their inbox.

A recipient names a price (an asset and an amount). A sender who offers at least that
much in the same asset pays it, as a Qwallet transfer from their main account to the
recipient's, in the transaction that delivers the message: the message lands in the
inbox, and the payment exists exactly when the delivery does. Contacts, and replies in a
thread the recipient wrote in, pay nothing. A sender who offers too little, in another
asset, or cannot pay, lands in `requests` and pays nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anarq.qmail.models import PostageOffer
from anarq.qwallet.agent import LedgerAgent
from anarq.qwallet.ledger import TransferIn
from anarq.qwallet.service import TransferRefused

CODE_POSTAGE = 7201


@dataclass
class Purse:
    """The sender's offer, and the ledger of the send's own transaction to pay it from."""

    agent: LedgerAgent
    sender_account: int
    offer: PostageOffer
    message_id: str
    paid: dict[str, int] = field(default_factory=dict)

    def pay(self, recipient: str, asset: str, amount: int) -> bool:
        """Pay `recipient`'s price if the offer covers it; whether it was paid."""
        if asset != self.offer.asset or amount > self.offer.max_amount:
            return False
        try:
            self.agent.chain(
                [
                    TransferIn(
                        id=f"q.{self.message_id}.{len(self.paid)}",
                        debit_account=self.sender_account,
                        credit_account=self.agent.account(recipient, asset),
                        amount=amount,
                        asset=asset,
                        code=CODE_POSTAGE,
                        memo=f"Qmail postage, message {self.message_id}",
                    )
                ]
            )
        except TransferRefused:
            return False  # e.g. exceeds_credits: the message waits in requests instead
        self.paid[recipient] = amount
        return True
