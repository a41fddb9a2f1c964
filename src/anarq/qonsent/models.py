"""Request and response types of Qonsent."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from anarq.kernel.guard import ACTIONS
from anarq.qonsent.tables import DID_MAX, PURPOSE_MAX, RESOURCE_MAX

PUBLIC = "public"
# `<module>:<type>:<id>` with `*` allowed as the whole of the last segment(s).
RESOURCE_RE = re.compile(r"^(\*|[a-z][a-z0-9]*(:[A-Za-z0-9._~@%+=-]+)*(:\*)?)$")
MAX_USES_LIMIT = 1_000_000_000


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grantee: str = Field(
        min_length=1, max_length=DID_MAX, description='A DID, or "public" for everyone.'
    )
    resource: str = Field(
        min_length=1,
        max_length=RESOURCE_MAX,
        description="`module:type:id`, or a pattern ending in `:*`.",
    )
    actions: list[str] = Field(min_length=1, max_length=len(ACTIONS))
    purpose: str = Field(min_length=1, max_length=PURPOSE_MAX)
    starts_at: datetime | None = None
    expires_at: datetime | None = None
    max_uses: int | None = Field(default=None, ge=1, le=MAX_USES_LIMIT)

    @field_validator("resource")
    @classmethod
    def _resource_shape(cls, value: str) -> str:
        if not RESOURCE_RE.match(value):
            raise ValueError("must look like module:type:id, optionally ending in :*")
        return value

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ACTIONS))
        if unknown:
            raise ValueError(f"unknown action {unknown[0]!r}; actions are {', '.join(ACTIONS)}")
        return sorted(set(value), key=ACTIONS.index)

    @field_validator("grantee")
    @classmethod
    def _grantee_shape(cls, value: str) -> str:
        if value != PUBLIC and not value.startswith("did:"):
            raise ValueError('must be a DID or "public"')
        return value


class Grant(BaseModel):
    id: str
    grantor: str
    grantee: str
    resource: str
    actions: list[str]
    purpose: str
    starts_at: datetime
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    conditions: dict[str, Any]
    created_at: datetime
    revoked_at: datetime | None


class Decision(BaseModel):
    """The answer to "may this actor do this action on this resource", with the reason."""

    allowed: bool
    actor: str
    action: str
    resource: str
    reason: str = Field(description="`owner`, `grant`, or why nothing allowed it.")
    grant_id: str | None = None


class CapabilityChain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chain: list[dict[str, Any]] = Field(
        min_length=1, max_length=8, description="Capability tokens, root first."
    )


class CapabilityRevocation(CapabilityChain):
    link: int = Field(ge=0, le=7, description="Index of the link to revoke (and all below it).")


class CapabilityRights(BaseModel):
    holder: str
    resource: str
    actions: list[str]
    expires_at: datetime
    grant_id: str
