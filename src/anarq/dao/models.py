"""DAO request and response bodies. Amounts and voting power are integers (decimal text)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from anarq.dao.tables import BODY_MAX, DID_MAX, NAME_MAX, TITLE_MAX
from anarq.dao.voting import CHOICES_MAX, VotingType
from anarq.qonsent.tables import PURPOSE_MAX
from anarq.qwallet.models import AssetCode, Units

Did = Annotated[str, Field(min_length=8, max_length=DID_MAX)]
DAY = 86_400
ACTIONS_MAX = 20
MEMBERS_AT_CREATION_MAX = 1000
VOTES_PER_BATCH_MAX = 1000


class Params(BaseModel):
    """How a DAO decides. Periods in seconds; shares in basis points (5000 = 50 %)."""

    model_config = ConfigDict(extra="forbid")

    proposal_threshold: Units = Field(default=1, description="Voting power needed to propose.")
    voting_delay_seconds: int = Field(default=0, ge=0, le=30 * DAY)
    voting_period_seconds: int = Field(default=3 * DAY, ge=60, le=90 * DAY)
    quorum: Units | None = Field(default=None, description="Power that must vote (absolute).")
    quorum_bps: int = Field(
        default=2000, ge=0, le=10_000, description="Else this share of all voting power."
    )
    pass_bps: int = Field(
        default=5000,
        ge=1,
        le=10_000,
        description="Share of the non-abstaining power the first choice needs (and the most).",
    )
    timelock_seconds: int = Field(default=DAY, ge=0, le=30 * DAY)
    execution_grace_seconds: int = Field(default=14 * DAY, ge=3600, le=90 * DAY)
    cancellers: list[Did] = Field(
        default_factory=list,
        max_length=20,
        description="Who may cancel any proposal before it executes (besides its proposer).",
    )


class ParamsChange(BaseModel):
    """A `set_params` action: the parameters it names change, the others stay."""

    model_config = ConfigDict(extra="forbid")

    proposal_threshold: Units | None = None
    voting_delay_seconds: int | None = Field(default=None, ge=0, le=30 * DAY)
    voting_period_seconds: int | None = Field(default=None, ge=60, le=90 * DAY)
    quorum: Units | None = None
    quorum_bps: int | None = Field(default=None, ge=0, le=10_000)
    pass_bps: int | None = Field(default=None, ge=1, le=10_000)
    timelock_seconds: int | None = Field(default=None, ge=0, le=30 * DAY)
    execution_grace_seconds: int | None = Field(default=None, ge=3600, le=90 * DAY)
    cancellers: list[Did] | None = Field(default=None, max_length=20)


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    did: Did
    weight: Units = Field(default=1, gt=0)


class TokenIssue(BaseModel):
    """A governance token the DAO issues at its creation, and who holds it from the start."""

    model_config = ConfigDict(extra="forbid")

    code: AssetCode
    name: str = Field(min_length=1, max_length=80)
    scale: int = Field(default=0, ge=0, le=18)
    supply_cap: Units | None = None
    holders: dict[str, Units] = Field(
        default_factory=dict, description="DID → amount minted to them at creation."
    )

    @field_validator("holders")
    @classmethod
    def _few(cls, holders: dict[str, int]) -> dict[str, int]:
        if len(holders) > MEMBERS_AT_CREATION_MAX:
            raise ValueError(f"at most {MEMBERS_AT_CREATION_MAX} holders at creation")
        return holders


class DaoCreate(BaseModel):
    """A DAO: members with weights, or the holders of a token (an existing asset, or one it
    issues now)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=r"^[\w .@-]+$")
    membership: Literal["members", "token"] = "members"
    members: list[MemberIn] = Field(default_factory=list, max_length=MEMBERS_AT_CREATION_MAX)
    open: bool = Field(default=False, description="Members DAOs: anyone may join.")
    token: AssetCode | None = Field(default=None, description="Vote with this asset's balance.")
    issue: TokenIssue | None = None
    params: Params = Field(default_factory=Params)

    @model_validator(mode="after")
    def _membership(self) -> DaoCreate:
        if self.membership == "members" and (self.token is not None or self.issue is not None):
            raise ValueError("a members DAO votes by weight: it names no token")
        if self.membership == "token":
            if (self.token is None) == (self.issue is None):
                raise ValueError("a token DAO names its token or issues one (not both)")
            if self.members or self.open:
                raise ValueError("a token DAO's members are its token's holders")
        return self


class Member(BaseModel):
    did: str
    power: Units = Field(description="Its weight, or its token balance.")
    joined_at: datetime | None = None


class Account(BaseModel):
    asset: str
    account: int
    balance: Units


class DaoInfo(BaseModel):
    did: str
    name: str
    creator: str
    membership: str
    token: str | None
    open: bool
    params: Params
    members: int
    treasury: list[Account]
    created_at: datetime


class TransferAction(BaseModel):
    """Pay out of the DAO's treasury (its main account of the asset)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["transfer"]
    asset: AssetCode
    to: Did
    amount: Units = Field(gt=0)


class MintAction(BaseModel):
    """Mint an asset the DAO issued."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["mint"]
    asset: AssetCode
    to: Did
    amount: Units = Field(gt=0)


class SetParamsAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["set_params"]
    params: ParamsChange


class AddMemberAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["add_member"]
    member: Did
    weight: Units = Field(default=1, gt=0)


class RemoveMemberAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["remove_member"]
    member: Did


class GrantAction(BaseModel):
    """Grant a permission on something the DAO owns (a Qonsent grant by the DAO)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["grant"]
    grantee: str = Field(min_length=1, max_length=DID_MAX)
    resource: str = Field(min_length=1, max_length=300)
    actions: list[str] = Field(min_length=1, max_length=6)
    purpose: str = Field(default="granted by a DAO vote", min_length=1, max_length=PURPOSE_MAX)
    expires_at: datetime | None = None


class RevokeAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["revoke"]
    grant_id: str = Field(min_length=1, max_length=26)


class RunWorkflowAction(BaseModel):
    """Run a Qflow workflow as the DAO: its definition (voted on with the proposal) is the
    DAO's workflow of that name, written if new or changed; its steps act as the DAO."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["run_workflow"]
    definition: dict[str, Any]
    input: dict[str, Any] = Field(default_factory=dict)


Action = Annotated[
    TransferAction
    | MintAction
    | SetParamsAction
    | AddMemberAction
    | RemoveMemberAction
    | GrantAction
    | RevokeAction
    | RunWorkflowAction,
    Field(discriminator="type"),
]


def _default_choices() -> list[str]:
    return ["For", "Against", "Abstain"]


class ProposalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    body: str = Field(default="", max_length=BODY_MAX)
    voting: VotingType = "single"
    choices: list[str] = Field(
        default_factory=_default_choices, min_length=2, max_length=CHOICES_MAX
    )
    actions: list[Action] = Field(
        default_factory=list,
        max_length=ACTIONS_MAX,
        description="Run once, in one transaction, if it passes (choice 0 wins).",
    )

    @field_validator("choices")
    @classmethod
    def _distinct(cls, choices: list[str]) -> list[str]:
        if any(not c or len(c) > 80 for c in choices):
            raise ValueError("a choice is 1 to 80 characters")
        if len({c.lower() for c in choices}) != len(choices):
            raise ValueError("choices are distinct")
        return choices


class Proposal(BaseModel):
    id: str
    dao: str
    proposer: str
    title: str
    body: str
    voting: str
    choices: list[str]
    quorum: Units = Field(description="Power that must vote, fixed at the snapshot.")
    pass_bps: int
    total_power: Units = Field(description="All voting power at the snapshot.")
    actions: list[dict[str, Any]]
    state: str
    starts_at: datetime
    ends_at: datetime
    eta: datetime | None
    executed_at: datetime | None
    last_error: str | None
    result: dict[str, Any] | None = Field(description="The final count, once voting ended.")
    votes: int
    created_at: datetime


class VoteReceipt(BaseModel):
    proposal: str
    voter: str
    power: Units
    choice: Any


class VoteBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    votes: list[dict[str, Any]] = Field(min_length=1, max_length=VOTES_PER_BATCH_MAX)


class VoteRefusal(BaseModel):
    index: int
    voter: str | None
    reason: str


class VoteBatchResult(BaseModel):
    accepted: int
    refused: list[VoteRefusal]


class DelegateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delegate: Did
    share_bps: int = Field(default=10_000, ge=1, le=10_000, description="Of your own power.")
    expires_at: datetime | None = None


class Delegation(BaseModel):
    id: str
    dao: str
    delegator: str
    delegate: str
    share_bps: int
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None
