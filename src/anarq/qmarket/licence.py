"""Licences: the node's signed statement that a buyer acquired an item on its terms.

Issued when an order settles, signed by the node (its did:key, hybrid with ML-DSA-65
where the node's key is), over RFC 8785 canonical JSON. Anyone can check one offline
with the document alone: `anarq market licence verify FILE` (see `anarq.squid.documents`).
Its digest is in the node's audit log, so it is also provably issued when it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from anarq.kernel.clock import rfc3339
from anarq.kernel.errors import AnarqError
from anarq.qlock import SigningKey
from anarq.qmarket.models import LicenceCheck
from anarq.squid import documents

LICENCE_VERSION = "anarq-licence/v1"


class LicenceInvalid(AnarqError):
    """Not a licence this node format knows, not signed by its issuer, or not the buyer's."""

    code = "qmarket.licence_invalid"
    status = 422
    title = "Invalid licence"


def issue(
    order: Mapping[str, Any] | RowMapping,
    item: dict[str, Any],
    *,
    paid: int,
    transfers: list[str],
    issuer: str,
    key: SigningKey,
    issued_at: datetime,
) -> dict[str, Any]:
    """The signed licence for a settled `order` (its row), naming what was handed over."""
    document: dict[str, Any] = {
        "version": LICENCE_VERSION,
        "licence_id": order["id"],
        "issuer": issuer,
        "issued_at": rfc3339(issued_at),
        "licensee": order["buyer"],
        "licensor": order["seller"],
        "listing": order["listing_id"],
        "item": {"kind": order["kind"], "title": order["title"], **item},
        "terms": order["terms"],
        "price": {"amount": str(paid), "asset": order["asset"]},
        "settlement": {"ledger": issuer, "transfers": transfers},
    }
    return documents.sign(document, key)


def digest(licence: dict[str, Any]) -> str:
    return documents.digest(licence)


def check(licence: Any, *, licensee: str | None = None) -> LicenceCheck:
    """Verify a licence offline: its format, its issuer's signature and, with `licensee`,
    that it was issued to them."""
    if not isinstance(licence, dict) or licence.get("version") != LICENCE_VERSION:
        raise LicenceInvalid(f"not an {LICENCE_VERSION} licence")
    try:
        documents.verify(licence)
    except documents.DocumentInvalid as exc:
        raise LicenceInvalid(str(exc)) from None
    for field in ("licence_id", "licensee", "licensor"):
        if not isinstance(licence.get(field), str):
            raise LicenceInvalid(f"the licence has no {field}")
    if licensee is not None and licence["licensee"] != licensee:
        raise LicenceInvalid(f"the licence was issued to {licence['licensee']}, not {licensee}")
    item = licence.get("item")
    return LicenceCheck(
        ok=True,
        licence_id=licence["licence_id"],
        issuer=licence["issuer"],
        licensee=licence["licensee"],
        licensor=licence["licensor"],
        item=item if isinstance(item, dict) else {},
        digest=digest(licence),
    )
