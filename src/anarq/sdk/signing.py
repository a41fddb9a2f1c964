"""Sign outgoing requests with RFC 9421 HTTP Message Signatures, as sQuid verifies them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

from anarq.qlock import SigningKey
from anarq.squid.didkey import did_from_ed25519
from anarq.squid.service import COVERED, COVERED_WITH_BODY, SIGNATURE_LABEL


@dataclass(frozen=True)
class RequestSigner:
    """An identity that signs requests: its DID and its private key."""

    did: str
    key: SigningKey

    @classmethod
    def for_key(cls, key: SigningKey) -> RequestSigner:
        return cls(did=did_from_ed25519(key.verify_key.ed25519_bytes()), key=key)

    def sign(self, request: httpx.Request) -> None:
        """Add `Signature-Input`, `Signature` (and `Content-Digest` for a body) in place."""
        body = request.read()
        private = Ed25519PrivateKey.from_private_bytes(self.key.ed25519_seed())
        HTTPMessageSigner(
            signature_algorithm=algorithms.ED25519, key_resolver=_OneKey(private)
        ).sign(
            _View(request),
            key_id=self.did,
            created=datetime.now(UTC),
            nonce=secrets.token_urlsafe(24),
            label=SIGNATURE_LABEL,
            covered_component_ids=COVERED_WITH_BODY if body else COVERED,
            body=body if body else None,
        )


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return self.private

    def resolve_public_key(self, key_id: str) -> Any:
        return self.private.public_key()


class _View:
    def __init__(self, request: httpx.Request) -> None:
        self.method = request.method
        self.url = str(request.url)
        self.headers = request.headers
