"""Data Integrity proofs with the `eddsa-jcs-2022` cryptosuite (W3C Data Integrity EdDSA
Cryptosuites v1.0): Ed25519 over SHA-256 of the RFC 8785 (JCS) form of the proof's
configuration, followed by SHA-256 of the JCS form of the document.

Pure functions: a key to sign with, and a resolver that turns a verification method into
an Ed25519 public key to verify with. did:key verification methods resolve offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from anarq.kernel import jcs
from anarq.kernel.clock import rfc3339
from anarq.qlock import b58
from anarq.squid import didkey

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
PURPOSES = ("assertionMethod", "authentication")

Resolver = Callable[[str], bytes]


class ProofInvalid(Exception):
    """The proof does not hold; the message says why."""


def did_key_method(did: str) -> str:
    """The verification method of a did:key's own key: `did#fingerprint`."""
    return f"{did}#{didkey.decode(did).fingerprint}"


def resolve_did_key(method: str) -> bytes:
    """The Ed25519 key of a did:key verification method, with no network."""
    did, sep, fragment = method.partition("#")
    try:
        decoded = didkey.decode(did)
    except Exception as exc:
        raise ProofInvalid(
            f"verification method {method!r} is not a did:key method: {exc}"
        ) from None
    if not sep or fragment != decoded.fingerprint or decoded.codec != "ed25519-pub":
        raise ProofInvalid(f"verification method {method!r} is not the did:key's Ed25519 key")
    return decoded.public_key


def _hash_data(document: dict[str, Any], config: dict[str, Any]) -> bytes:
    try:
        return (
            hashlib.sha256(jcs.dumps(config)).digest()
            + hashlib.sha256(jcs.dumps(document)).digest()
        )
    except Exception as exc:  # e.g. a float JCS cannot represent, a non-string key
        raise ProofInvalid(f"the document has no JCS form: {exc}") from None


def sign(
    document: dict[str, Any],
    seed: bytes,
    verification_method: str,
    *,
    purpose: str = "assertionMethod",
    created: datetime | str,
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """`document` with an `eddsa-jcs-2022` proof by the Ed25519 key of `seed`."""
    assert purpose in PURPOSES, purpose
    unsecured = {key: value for key, value in document.items() if key != "proof"}
    config: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created if isinstance(created, str) else rfc3339(created),
        "verificationMethod": verification_method,
        "proofPurpose": purpose,
    }
    if challenge is not None:
        config["challenge"] = challenge
    if domain is not None:
        config["domain"] = domain
    if "@context" in unsecured:
        config["@context"] = unsecured["@context"]
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(_hash_data(unsecured, config))
    return {
        **unsecured,
        "proof": {**config, "proofValue": "z" + b58.encode(signature)},
    }


def verify(
    document: Any,
    resolve: Resolver = resolve_did_key,
    *,
    purpose: str = "assertionMethod",
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """The proof, once it holds for `document`; `ProofInvalid` otherwise.

    With `challenge` or `domain`, the proof must carry exactly those (a presentation's
    replay protection)."""
    if not isinstance(document, dict):
        raise ProofInvalid("a secured document is a JSON object")
    proof = document.get("proof")
    if isinstance(proof, list):
        raise ProofInvalid("proof sets are not supported: one proof per document")
    if not isinstance(proof, dict):
        raise ProofInvalid("the document has no proof")
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofInvalid(f"the proof is not a {PROOF_TYPE} with cryptosuite {CRYPTOSUITE}")
    if proof.get("proofPurpose") != purpose:
        raise ProofInvalid(f"the proof's purpose is {proof.get('proofPurpose')!r}, not {purpose!r}")
    for name, expected in (("challenge", challenge), ("domain", domain)):
        if expected is not None and proof.get(name) != expected:
            raise ProofInvalid(f"the proof's {name} is not the one asked for")
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise ProofInvalid("proofValue must be multibase base58btc (a leading z)")
    try:
        signature = b58.decode(value[1:])
    except ValueError:
        raise ProofInvalid("proofValue is not base58btc") from None
    if len(signature) != 64:
        raise ProofInvalid("an Ed25519 signature is 64 bytes")
    method = proof.get("verificationMethod")
    if not isinstance(method, str):
        raise ProofInvalid("the proof names no verificationMethod")
    config = {key: item for key, item in proof.items() if key != "proofValue"}
    unsecured = {key: item for key, item in document.items() if key != "proof"}
    if "@context" in config:
        # The document's contexts must start with the proof's (a prefix), and are read as them.
        theirs, ours = config["@context"], unsecured.get("@context")
        as_list = ours if isinstance(ours, list) else [ours]
        wanted = theirs if isinstance(theirs, list) else [theirs]
        if as_list[: len(wanted)] != wanted:
            raise ProofInvalid("the proof's @context does not match the document's")
        unsecured["@context"] = theirs
    public = resolve(method)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, _hash_data(unsecured, config))
    except (InvalidSignature, ValueError):
        raise ProofInvalid("the signature does not match the document") from None
    return proof
