"""Qwallet's request and response bodies.

Amounts are integers in the asset's smallest unit, up to 2**128 - 1; they travel as
decimal strings (JSON numbers lose precision past 2**53) and are accepted as either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from anarq.qwallet.ledger import ACCOUNT_FLAGS, AMOUNT_MAX, TIMEOUT_MAX, TRANSFER_FLAGS
from anarq.qwallet.tables import ASSET_MAX, DID_MAX, ID_MAX, MEMO_MAX

BATCH_MAX = 8190
ROYALTY_MAX_BPS = 5000  # a creator takes at most half of a resale
ID_PATTERN = r"^[A-Za-z0-9_-]+$"  # no dot: `<id>.fee` names a fee leg
ASSET_PATTERN = r"^[A-Z][A-Z0-9]{1,15}$"

Units = Annotated[
    int, Field(ge=0, le=AMOUNT_MAX), PlainSerializer(str, return_type=str, when_used="json")
]
TransferId = Annotated[str, Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
AssetCode = Annotated[str, Field(min_length=2, max_length=ASSET_MAX, pattern=ASSET_PATTERN)]
AccountId = Annotated[int, Field(ge=1, le=2**63 - 1)]
TransferFlag = Literal[
    "linked",
    "pending",
    "post_pending_transfer",
    "void_pending_transfer",
    "balancing_debit",
    "balancing_credit",
]
AccountFlag = Literal["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"]


def flag_names(bits: int, names: dict[str, int]) -> list[str]:
    return [name for name, bit in names.items() if bits & bit]


class TransferRequest(BaseModel):
    """One transfer, as in TigerBeetle: a post or void names the pending transfer by
    `pending_id` and may leave the accounts and amount out (a post without an amount
    posts it all)."""

    model_config = ConfigDict(extra="forbid")

    id: TransferId = Field(description="Chosen by the client; resending it changes nothing.")
    debit_account: AccountId | None = None
    credit_account: AccountId | None = None
    amount: Units | None = None
    asset: AssetCode | None = Field(default=None, description="Checked against both accounts.")
    pending_id: TransferId | None = None
    flags: list[TransferFlag] = Field(default_factory=list, max_length=6)
    timeout: int = Field(default=0, ge=0, le=TIMEOUT_MAX, description="Seconds; pending only.")
    hashlock: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (hex) of a secret: posting takes the secret (`preimage`).",
    )
    preimage: str | None = Field(
        default=None, pattern=r"^(?:[0-9a-f]{2}){1,64}$", description="The secret, in hex."
    )
    code: int = Field(default=0, ge=0, le=65535, description="Your reason code.")
    memo: str | None = Field(default=None, max_length=MEMO_MAX)

    @field_validator("flags")
    @classmethod
    def _distinct(cls, flags: list[str]) -> list[str]:
        if len(set(flags)) != len(flags):
            raise ValueError("a flag is named twice")
        return flags

    def flag_bits(self) -> int:
        bits = 0
        for name in self.flags:
            bits |= TRANSFER_FLAGS[name]
        return bits


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transfers: list[TransferRequest] = Field(min_length=1, max_length=BATCH_MAX)


class TransferResult(BaseModel):
    index: int
    id: str
    result: str


class BatchResult(BaseModel):
    """Transfers that were not created, TigerBeetle style: an empty list is all created."""

    created: int
    results: list[TransferResult]


class PayRequest(BaseModel):
    """One payment from your account of an asset to someone's, by DID."""

    model_config = ConfigDict(extra="forbid")

    id: TransferId
    to: str = Field(min_length=8, max_length=DID_MAX)
    asset: AssetCode
    amount: Units = Field(gt=0)
    memo: str | None = Field(default=None, max_length=MEMO_MAX)
    pending: bool = Field(default=False, description="Hold the amount until posted or voided.")
    timeout: int = Field(default=0, ge=0, le=TIMEOUT_MAX)
    hashlock: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class TransferInfo(BaseModel):
    id: str
    timestamp: int = Field(description="Nanoseconds since the Unix epoch; unique, increasing.")
    debit_account: int
    credit_account: int
    amount: Units
    asset: str
    pending_id: str | None
    flags: list[str]
    timeout: int
    hashlock: str | None
    code: int
    memo: str | None
    actor: str
    pending_state: Literal["pending", "posted", "voided", "expired"] | None = None
    result: str = "ok"


def _no_overdraft() -> list[AccountFlag]:
    return ["debits_must_not_exceed_credits"]


class OpenAccountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: AssetCode
    name: str = Field(default="main", min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")
    flags: list[AccountFlag] = Field(default_factory=_no_overdraft, max_length=2)

    def flag_bits(self) -> int:
        bits = 0
        for name in self.flags:
            bits |= ACCOUNT_FLAGS[name]
        return bits


class AccountInfo(BaseModel):
    id: int
    owner: str
    asset: str
    name: str
    flags: list[str]
    debits_pending: Units
    debits_posted: Units
    credits_pending: Units
    credits_posted: Units
    balance: Units | None = Field(
        description="Available: credits posted minus debits posted and pending (None if below 0)."
    )
    created_at: datetime


class AccountRef(BaseModel):
    id: int
    owner: str
    asset: str
    name: str


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: AssetCode
    name: str = Field(min_length=1, max_length=80)
    scale: int = Field(ge=0, le=18, description="Decimals: 1 unit is 10**-scale of the asset.")
    supply_cap: Units | None = Field(default=None, description="In the smallest unit.")
    fee_bps: int = Field(default=0, ge=0, le=10_000)
    fee_min: Units = 0
    fee_max: Units | None = None


class FeeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fee_bps: int = Field(ge=0, le=10_000)
    fee_min: Units = 0
    fee_max: Units | None = None


class AssetInfo(BaseModel):
    code: str
    name: str
    scale: int
    issuer: str
    supply_cap: Units | None
    supply: Units
    issuance_account: int
    treasury_account: int | None
    fee_bps: int
    fee_min: Units
    fee_max: Units | None
    created_at: datetime


class MintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: TransferId
    to: str = Field(min_length=8, max_length=DID_MAX)
    amount: Units = Field(gt=0)
    memo: str | None = Field(default=None, max_length=MEMO_MAX)


class BurnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: TransferId
    amount: Units = Field(gt=0)
    memo: str | None = Field(default=None, max_length=MEMO_MAX)


class HistoryPage(BaseModel):
    account: AccountRef
    transfers: list[TransferInfo]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class BooksReport(BaseModel):
    """The ledger checked whole: sums per asset, flags, balances against the transfer log."""

    ok: bool
    accounts: int
    transfers: int
    problems: list[str]


class NftMintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    to: str | None = Field(default=None, min_length=8, max_length=DID_MAX)
    metadata: dict[str, str | int | bool | None] = Field(default_factory=dict, max_length=32)
    royalty_bps: int = Field(
        default=0,
        ge=0,
        le=ROYALTY_MAX_BPS,
        description="Your share of every resale through Qmarket, in basis points (250 = 2.5 %).",
    )


class NftSendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=8, max_length=DID_MAX)


class NftEvent(BaseModel):
    seq: int
    kind: Literal["mint", "transfer", "sale", "burn"]
    from_did: str | None
    to_did: str | None
    actor: str
    at: datetime


class NftInfo(BaseModel):
    id: str
    issuer: str
    owner: str
    name: str
    metadata: dict[str, str | int | bool | None]
    created_at: datetime
    royalty_bps: int = 0
    listed_in: str | None = Field(
        default=None, description="The Qmarket listing offering it: it moves only by that sale."
    )
    provenance: list[NftEvent] = Field(default_factory=list)
