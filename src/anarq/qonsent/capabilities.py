"""Delegable, attenuable capability tokens (UCAN-like), for sharing across identities and nodes.

A holder of a grant that includes `share` can hand a subset of it to someone else by
signing a token with their own identity key; that someone can pass on a smaller subset
the same way, forming a chain. Each link names its parent (the grant, or the previous
token's digest), narrows or keeps the resource, actions and expiry, and is signed by the
previous link's audience. Revoking the grant, or any link, kills everything below it.

Wire form: a JSON list of tokens, root first, base64url-encoded in the
`X-Anarq-Capability` header of a request signed by the last token's audience.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anarq.kernel.clock import rfc3339
from anarq.kernel.errors import BadRequest
from anarq.kernel.ids import new_id
from anarq.qlock import SigningKey, VerifyKey, sign_detached, verify_detached

TOKEN_VERSION = "anarq-capability/v1"  # noqa: S105 (a format name)
HEADER = "x-anarq-capability"
MAX_CHAIN = 8
MAX_HEADER_BYTES = 64 * 1024


class CapabilityInvalid(BadRequest):
    code = "qonsent.capability_invalid"
    title = "Capability refused"
    status = 403


@dataclass(frozen=True)
class Capability:
    """What a verified chain lets its holder do."""

    holder: str
    resource: str
    actions: frozenset[str]
    expires_at: datetime
    grant_id: str
    chain_digests: tuple[str, ...]


def canonical(token: dict[str, Any]) -> bytes:
    unsigned = {key: value for key, value in token.items() if key != "proof"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(token: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(token)).hexdigest()


def delegate(
    key: SigningKey,
    issuer: str,
    *,
    parent: str,
    audience: str,
    resource: str,
    actions: list[str],
    expires_at: datetime,
) -> dict[str, Any]:
    """Sign one link. `parent` is `grant:<id>` for the first link, else `token:<digest>`."""
    token: dict[str, Any] = {
        "version": TOKEN_VERSION,
        "id": new_id(),
        "iss": issuer,
        "aud": audience,
        "parent": parent,
        "resource": resource,
        "actions": sorted(set(actions)),
        "exp": rfc3339(expires_at),
    }
    token["proof"] = sign_detached(key, canonical(token))
    return token


def encode_chain(chain: list[dict[str, Any]]) -> str:
    return base64.urlsafe_b64encode(json.dumps(chain, separators=(",", ":")).encode()).decode()


def decode_chain(text: str) -> list[dict[str, Any]]:
    if len(text) > MAX_HEADER_BYTES:
        raise CapabilityInvalid("capability chain is too large")
    try:
        chain = json.loads(base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4)))
    except ValueError:
        raise CapabilityInvalid("capability is not base64url JSON") from None
    if not isinstance(chain, list) or not 1 <= len(chain) <= MAX_CHAIN:
        raise CapabilityInvalid(f"a capability is a list of 1 to {MAX_CHAIN} tokens")
    if not all(isinstance(token, dict) for token in chain):
        raise CapabilityInvalid("every link of a capability is a JSON object")
    return chain


def check_signature(token: dict[str, Any], key: VerifyKey) -> None:
    proof = token.get("proof")
    if not isinstance(proof, dict):
        raise CapabilityInvalid("a link has no proof")
    try:
        verify_detached(key, canonical(token), proof)
    except Exception:
        raise CapabilityInvalid(
            f"link {str(token.get('id'))[:32]} is not signed by its issuer"
        ) from None


def fields(token: dict[str, Any]) -> tuple[str, str, str, str, frozenset[str], datetime]:
    """(iss, aud, parent, resource, actions, exp) of a well-formed link, else refused."""
    try:
        if token["version"] != TOKEN_VERSION:
            raise CapabilityInvalid(f"not an {TOKEN_VERSION} token")
        actions = token["actions"]
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise CapabilityInvalid("actions must be a list of strings")
        expires = datetime.fromisoformat(str(token["exp"]).replace("Z", "+00:00"))
        return (
            str(token["iss"]),
            str(token["aud"]),
            str(token["parent"]),
            str(token["resource"]),
            frozenset(actions),
            expires,
        )
    except (KeyError, ValueError):
        raise CapabilityInvalid("a link lacks iss, aud, parent, resource, actions or exp") from None
