"""Response types of Qerberos."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class TreeHead(BaseModel):
    """A signed statement: "my audit log has `size` entries and this root"."""

    size: int
    root: str = Field(description="Base64 SHA-256 Merkle tree hash (RFC 9162).")
    time: datetime
    signer: str = Field(description="DID of the node that signed.")
    signature: str = Field(description="Qlock signature (base64url) over the head's bytes.")
    signer_key: str = Field(
        description="The signer's public key (Qlock, base64); its "
        "Ed25519 part is the one in the signer's did:key."
    )


class Entry(BaseModel):
    seq: int
    leaf_index: int | None
    time: datetime
    actor: str
    action: str
    resource: str
    verdict: str
    request_id: str
    leaf: str = Field(description="The exact text hashed into the tree.")


class InclusionProof(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str
    proof: list[str]
    tree_head: TreeHead


class ConsistencyProof(BaseModel):
    old_size: int
    new_size: int
    proof: list[str]


AlertStatus = Literal["active", "investigating", "resolved"]


class Alert(BaseModel):
    id: str
    kind: str
    subject: str
    severity: str
    status: AlertStatus
    count: int
    details: str
    created_at: datetime
    updated_at: datetime


class AlertUpdate(BaseModel):
    status: AlertStatus


class Risk(BaseModel):
    """How much an identity worries the node, 0 (none) to 1000, and why."""

    subject: str
    score: int = Field(ge=0, le=1000)
    reasons: list[str]
