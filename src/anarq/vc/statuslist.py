"""Bitstring Status List v1.0: one bit per credential, GZIP-compressed and multibase
base64url-encoded (a leading `u`) in a status list credential its issuer signs.

Bit 0 is the most significant bit of the first byte. A list holds at least 131,072
entries (16 KiB), so a verifier fetching it learns little about which credential it
checks (the spec's herd privacy).
"""

from __future__ import annotations

import base64
import gzip
import io
from typing import Any

MIN_ENTRIES = 131_072
LIST_BYTES = MIN_ENTRIES // 8
CONTEXT_V2 = "https://www.w3.org/ns/credentials/v2"


class StatusListInvalid(Exception):
    """The list cannot be read; the message says why."""


def empty() -> bytearray:
    return bytearray(LIST_BYTES)


def encode(bits: bytes) -> str:
    # mtime=0: the same bits always encode the same way.
    return "u" + base64.urlsafe_b64encode(gzip.compress(bytes(bits), mtime=0)).rstrip(b"=").decode()


def decode(encoded: Any) -> bytes:
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise StatusListInvalid("encodedList must be multibase base64url (a leading u)")
    body = encoded[1:]
    try:
        compressed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        # A list is 16 KiB or a little more; refuse decompression bombs.
        with gzip.GzipFile(fileobj=io.BytesIO(compressed)) as stream:
            bits = stream.read(LIST_BYTES * 64 + 1)
    except (ValueError, OSError, EOFError):
        raise StatusListInvalid("encodedList is not GZIP-compressed base64url") from None
    if len(bits) > LIST_BYTES * 64:
        raise StatusListInvalid("the status list is implausibly large")
    if len(bits) * 8 < MIN_ENTRIES:
        raise StatusListInvalid(f"a status list holds at least {MIN_ENTRIES} entries")
    return bits


def is_set(bits: bytes, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise StatusListInvalid(f"status index {index} is outside the list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def set_bit(bits: bytearray, index: int) -> None:
    bits[index // 8] |= 0x80 >> (index % 8)


def entry(list_url: str, index: int, purpose: str = "revocation") -> dict[str, Any]:
    """The `credentialStatus` of a credential whose status is bit `index` of the list."""
    return {
        "id": f"{list_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


def credential(
    list_url: str,
    issuer: str,
    bits: bytes,
    purpose: str = "revocation",
    valid_from: str | None = None,
) -> dict[str, Any]:
    """The (unsigned) status list credential for `bits`, valid from `valid_from` if given."""
    document: dict[str, Any] = {
        "@context": [CONTEXT_V2],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": encode(bits),
        },
    }
    if valid_from is not None:
        document["validFrom"] = valid_from
    return document
