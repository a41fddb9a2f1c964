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
    next_key_hash: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (hex) of the next public key: commits to the key a rotation "
        "will move to, so a stolen current key cannot rotate the identity away.",
    )


class SubIdentityRequest(BaseModel):
    """A root creates a sub-identity; the sub's own key signs its consent (`proof`)."""

    model_config = ConfigDict(extra="forbid")

    did: str = Field(min_length=8, max_length=200, description="The sub-identity's did:key.")
    type: IdentityType
    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=r"^[\w .@-]+$")
    proof: str = Field(
        max_length=8192,
        description="The sub key's Qlock signature (base64url) "
        "over `anarq-sub-identity/v1\\n<root did>\\n<sub did>`.",
    )
    link_commitment: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="AID only: SHA-256 hex of `<root did>\\n<salt hex>`; the root keeps the salt.",
    )


class AidLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aid: str = Field(min_length=8, max_length=200)
    root: str = Field(min_length=8, max_length=200)
    salt: str = Field(pattern=r"^[0-9a-f]{32,128}$")


class Rotation(BaseModel):
    """Move the identity to its pre-committed next key; sent signed by the current key."""

    model_config = ConfigDict(extra="forbid")

    new_public_key: str = Field(max_length=4096, description="Qlock public key (base64).")
    next_key_hash: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) of the key after this one."
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
    rotations: int = 0
    created_at: datetime
    revoked_at: datetime | None


class Resolution(BaseModel):
    """A resolved DID: its document, and what this node knows of it."""

    did_document: dict[str, Any]
    registered: bool
    identity: Identity | None


class Challenge(BaseModel):
    challenge: str
    expires_at: datetime
    sign: str = Field(description="The exact text to sign (Qlock signature, base64url).")


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    did: str = Field(min_length=8, max_length=200)
    challenge: str = Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    signature: str = Field(max_length=8192)


class Session(BaseModel):
    token: str = Field(description="Bearer token; shown once, kept by the node only as a hash.")
    did: str
    expires_at: datetime
