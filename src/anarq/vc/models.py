"""Request and response bodies of the credentials API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from anarq.vc.tables import DID_MAX

# What this node attests itself, from facts it holds.
Kind = Literal["did-control", "dao-member", "purchase"]
DOCUMENT_MAX_BYTES = 64 * 1024


class IssueRequest(BaseModel):
    """Ask the node for a credential about yourself."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    dao: str | None = Field(default=None, min_length=8, max_length=DID_MAX)
    order: str | None = Field(default=None, min_length=26, max_length=26)
    valid_days: int = Field(default=365, ge=1, le=3650)

    @model_validator(mode="after")
    def _needs(self) -> IssueRequest:
        if self.kind == "dao-member" and self.dao is None:
            raise ValueError("a dao-member credential names the DAO (dao)")
        if self.kind == "purchase" and self.order is None:
            raise ValueError("a purchase credential names the order (order)")
        return self


class StoreRequest(BaseModel):
    """A credential the caller issued (signed on their device), to hand to its holder."""

    model_config = ConfigDict(extra="forbid")

    credential: dict[str, Any]


class PublishList(BaseModel):
    """A status list credential its issuer signed: how an identity revokes."""

    model_config = ConfigDict(extra="forbid")

    credential: dict[str, Any]


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential: dict[str, Any] | None = None
    presentation: dict[str, Any] | None = None
    challenge: str | None = Field(default=None, min_length=16, max_length=64)
    domain: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _one(self) -> VerifyRequest:
        if (self.credential is None) == (self.presentation is None):
            raise ValueError("send a credential or a presentation (one of them)")
        if self.presentation is not None and self.challenge is None:
            raise ValueError("a presentation is verified against the challenge you issued")
        return self


class ChallengeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str | None = Field(default=None, max_length=255)


class Challenge(BaseModel):
    challenge: str
    domain: str | None
    expires_at: datetime


class Allocation(BaseModel):
    """A status entry for a credential the caller is about to sign."""

    credential_status: dict[str, Any]
    list_url: str
    # The list's credential to sign and publish first, when the list is new.
    list_to_sign: dict[str, Any] | None


class Held(BaseModel):
    id: str
    issuer: str
    holder: str
    kind: str
    issued_at: datetime
    valid_until: datetime | None
    revoked_at: datetime | None
    credential: dict[str, Any]


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A mailbox a relay can deliver to: a local part, then a domain of at least two labels.
EMAIL_RE = rf"^[^@\s]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$"


class EmailRequest(BaseModel):
    """An address to prove: the node mails it a one-use link."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254, pattern=EMAIL_RE)


class EmailConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=20, max_length=100)


class EmailSent(BaseModel):
    email: str
    expires_at: datetime
