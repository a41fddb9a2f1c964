"""Sign outgoing requests with RFC 9421 HTTP Message Signatures, as sQuid verifies them."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from anarq.qlock import SigningKey
from anarq.squid.didkey import did_from_ed25519
from anarq.squid.httpsig import sign_request


@dataclass(frozen=True)
class RequestSigner:
    """An identity that signs requests: its DID and its private key.

    A hybrid key (Ed25519 + ML-DSA-65) signs every request with both halves.
    """

    did: str
    key: SigningKey

    @classmethod
    def for_key(cls, key: SigningKey) -> RequestSigner:
        return cls(did=did_from_ed25519(key.verify_key.ed25519_bytes()), key=key)

    def sign(self, request: httpx.Request) -> None:
        """Add `Signature-Input`, `Signature` (and `Content-Digest` for a body) in place."""
        body = request.read()
        sign_request(_View(request), did=self.did, key=self.key, body=body or None)


class _View:
    def __init__(self, request: httpx.Request) -> None:
        self.method = request.method
        self.url = str(request.url)
        self.headers = request.headers
