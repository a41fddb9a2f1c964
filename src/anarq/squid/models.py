"""Request and response types of sQuid."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from anarq.squid.tables import NAME_MAX


class IdentityType(StrEnum):
    ROOT = "ROOT"
    DAO = "DAO"
    ENTERPRISE = "ENTERPRISE"
    CONSENTIDA = "CONSENTIDA"
    AID = "AID"


class Registration(BaseModel):
    """Register the calling identity (the request is signed by the key being registered)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=r"^[\w .@-]+$")
    public_key: str | None = Field(
        default=None,
        max_length=4096,
        description="Qlock public key (base64) when it holds more than the DID's Ed25519 "
        "key, e.g. an ML-DSA-65 key for hybrid signatures.",
    )


class Identity(BaseModel):
    did: str
    name: str
    type: IdentityType
    status: str
    parent_did: str | None
    verification_level: int
    governance: str
    privacy: str
    key_id: str
    hybrid: bool
    created_at: datetime
    revoked_at: datetime | None


class Resolution(BaseModel):
    """A resolved DID: its document, and what this node knows of it."""

    did_document: dict[str, Any]
    registered: bool
    identity: Identity | None
