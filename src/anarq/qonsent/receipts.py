"""Signed consent receipts: a portable record of a grant, verifiable offline by anyone.

Fields follow the Kantara Consent Receipt specification (v1.1) and ISO/IEC TS 27560
(PII principal, controller, purposes, termination, consent type), plus what Qonsent
adds: the grantee, the resource and its actions. The node signs the receipt with
its key (Qlock detached signature over the canonical JSON without `proof`) and
writes an audit entry naming the receipt's SHA-256, so the receipt is also provably
in the node's Merkle log (`GET /qerberos/entries/{seq}/proof`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from anarq.kernel.clock import rfc3339
from anarq.qlock import SigningKey
from anarq.qonsent.models import Grant
from anarq.squid import documents

RECEIPT_VERSION = "anarq-consent-receipt/v1"
COLLECTION_METHOD = "Qonsent API (signed request or operator)"


class ReceiptInvalid(Exception):
    """The receipt is not what it claims; the message says why."""


@dataclass(frozen=True)
class ReceiptCheck:
    receipt_id: str
    issuer: str
    principal: str
    recipients: list[str]
    digest: str


def canonical(receipt: dict[str, Any]) -> bytes:
    """The signed bytes: JSON of everything but `proof`, sorted keys, no whitespace."""
    unsigned = {key: value for key, value in receipt.items() if key != "proof"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(receipt: dict[str, Any]) -> str:
    return documents.digest(receipt, canonical)


def issue(grant: Grant, issuer: str, key: SigningKey) -> dict[str, Any]:
    """A signed receipt for `grant`, issued by the node `issuer` with its key."""
    receipt: dict[str, Any] = {
        "version": RECEIPT_VERSION,
        "receipt_id": grant.id,
        "consent_timestamp": rfc3339(grant.created_at),
        "collection_method": COLLECTION_METHOD,
        "pii_principal_id": grant.grantor,
        "pii_controllers": [{"controller_id": issuer, "on_behalf": True}],
        "recipients": [grant.grantee],
        "services": [
            {
                "service": grant.resource,
                "purposes": [
                    {
                        "purpose": grant.purpose,
                        "consent_type": "EXPLICIT",
                        "primary_purpose": True,
                        "actions": grant.actions,
                        "valid_from": rfc3339(grant.starts_at),
                        "termination": rfc3339(grant.expires_at)
                        if grant.expires_at
                        else "until revoked",
                        "max_uses": grant.max_uses,
                    }
                ],
            }
        ],
        "issuer": issuer,
    }
    return documents.sign(receipt, key, canonical)


def verify(receipt: dict[str, Any]) -> ReceiptCheck:
    """Check a receipt offline: format, the issuer's key, and the signature."""
    if not isinstance(receipt, dict) or receipt.get("version") != RECEIPT_VERSION:
        raise ReceiptInvalid(f"not an {RECEIPT_VERSION} receipt")
    try:
        documents.verify(receipt, canonical)
    except documents.DocumentInvalid as exc:
        raise ReceiptInvalid(str(exc)) from None
    issuer = receipt.get("issuer")
    return ReceiptCheck(
        receipt_id=str(receipt.get("receipt_id")),
        issuer=str(issuer),
        principal=str(receipt.get("pii_principal_id")),
        recipients=[str(r) for r in receipt.get("recipients", [])],
        digest=digest(receipt),
    )
