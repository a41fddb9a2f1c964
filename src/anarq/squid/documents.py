"""JSON documents signed by a DID, verifiable offline by anyone: licences, receipts.

A document names its `issuer` (a did:key) and carries a `proof`: a Qlock detached
signature over the canonical bytes of everything but the proof, with the issuer's whole
public key (a hybrid key's post-quantum half does not fit in a did:key). Verifying
checks that the key is the issuer's — its did:key is the issuer — and the signature.
Nothing is fetched: the document and its issuer's DID are all it takes.

Canonical bytes are RFC 8785 JSON (JCS) unless a format fixed another form earlier.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from anarq.kernel import jcs as canonical_json
from anarq.qlock import SigningKey, VerifyKey, sign_detached, verify_detached
from anarq.squid.didkey import did_from_ed25519, did_of

Canonical = Callable[[dict[str, Any]], bytes]


class DocumentInvalid(Exception):
    """The document is not what it claims; the message says why."""


def jcs(document: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of everything but `proof`."""
    return canonical_json.dumps({key: value for key, value in document.items() if key != "proof"})


def digest(document: dict[str, Any], canonical: Canonical = jcs) -> str:
    """SHA-256 (hex) of the signed bytes: what an audit entry names to make it provable."""
    return hashlib.sha256(canonical(document)).hexdigest()


def sign(document: dict[str, Any], key: SigningKey, canonical: Canonical = jcs) -> dict[str, Any]:
    """`document` with a `proof` by `key`; its `issuer` must be the key's did:key."""
    assert document.get("issuer") == did_from_ed25519(key.verify_key.ed25519_bytes()), (
        "a document is signed by its issuer"
    )
    proof = sign_detached(key, canonical(document))
    proof["verification_key"] = base64.b64encode(key.verify_key.to_bytes()).decode()
    return {**document, "proof": proof}


def verify(document: dict[str, Any], canonical: Canonical = jcs) -> VerifyKey:
    """The issuer's key, once the proof checks out; `DocumentInvalid` otherwise."""
    if not isinstance(document, dict):
        raise DocumentInvalid("a signed document is a JSON object")
    proof = document.get("proof")
    if not isinstance(proof, dict) or not isinstance(proof.get("verification_key"), str):
        raise DocumentInvalid("the document has no proof with a verification key")
    try:
        key = VerifyKey.from_bytes(base64.b64decode(proof["verification_key"], validate=True))
    except Exception:
        raise DocumentInvalid("the proof's verification key is not a Qlock public key") from None
    if did_of(key) != document.get("issuer"):
        raise DocumentInvalid("the verification key is not the issuer's (its did:key differs)")
    try:
        unsigned = canonical(document)
    except Exception as exc:  # e.g. a number JCS cannot represent
        raise DocumentInvalid(f"the document has no canonical form: {exc}") from None
    try:
        verify_detached(key, unsigned, proof)
    except Exception as exc:
        raise DocumentInvalid(f"the signature does not match the document: {exc}") from None
    return key
