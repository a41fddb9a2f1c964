"""RFC 9421 HTTP Message Signatures as sQuid signs and checks them.

Every signed request carries an Ed25519 signature (label and tag `anarq`, `keyid` = the
DID). An identity that holds an ML-DSA-65 key beside its Ed25519 key (a hybrid identity)
adds a second signature over the same components with the same `keyid`, `created` and
`nonce` (label and tag `anarq-pq`, algorithm `ml-dsa-65`), and the node then requires
both: dropping the post-quantum half is refused, not downgraded. Each half is a plain
RFC 9421 signature, so any verifier that knows Ed25519 can still check the first one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureAlgorithm,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from http_message_signatures.structures import VerifyResult

from anarq.qlock import SigningKey, VerifyKey

SIGNATURE_LABEL = "anarq"
PQ_SIGNATURE_LABEL = "anarq-pq"
# Not yet in the IANA HTTP Signature Algorithms registry; named as the ML-DSA drafts for
# JOSE and COSE name the parameter set.
MLDSA65_ALGORITHM = "ml-dsa-65"
COVERED = ("@method", "@authority", "@path", "@query")
COVERED_WITH_BODY = (*COVERED, "content-digest")


class SignatureRefused(Exception):
    """The request's signatures do not prove who sent it; the message says why."""


class MLDSA65(HTTPSignatureAlgorithm):
    """ML-DSA-65 (FIPS 204) over the RFC 9421 signature base, as `cryptography` does it."""

    algorithm_id = MLDSA65_ALGORITHM

    def __init__(self, public_key: Any = None, private_key: Any = None) -> None:
        if public_key is not None and not isinstance(public_key, mldsa.MLDSA65PublicKey):
            raise HTTPMessageSignaturesException("expected an ML-DSA-65 public key")
        if private_key is not None and not isinstance(private_key, mldsa.MLDSA65PrivateKey):
            raise HTTPMessageSignaturesException("expected an ML-DSA-65 private key")
        self.public_key: mldsa.MLDSA65PublicKey | None = public_key
        self.private_key: mldsa.MLDSA65PrivateKey | None = private_key

    def sign(self, message: bytes) -> bytes:
        if self.private_key is None:
            raise HTTPMessageSignaturesException("no ML-DSA-65 private key to sign with")
        return self.private_key.sign(message)

    def verify(self, signature: bytes, message: bytes) -> None:
        if self.public_key is None:
            raise InvalidSignature("no ML-DSA-65 public key to verify with")
        self.public_key.verify(signature, message)


@dataclass(frozen=True)
class Verified:
    """Who signed a request, with the parameters replay protection needs."""

    did: str
    nonce: str
    created: datetime
    hybrid: bool


# Signing -------------------------------------------------------------------------------


class _PrivateKeys(HTTPSignatureKeyResolver):
    def __init__(self, key: SigningKey) -> None:
        self.key = key

    def resolve_private_key(self, key_id: str) -> Any:
        return None

    def resolve_public_key(self, key_id: str) -> Any:
        raise LookupError("signing only")


class _Ed25519Keys(_PrivateKeys):
    def resolve_private_key(self, key_id: str) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.key.ed25519_seed())


class _MLDSA65Keys(_PrivateKeys):
    def resolve_private_key(self, key_id: str) -> mldsa.MLDSA65PrivateKey:
        seed = self.key.mldsa65_seed()
        if seed is None:
            raise LookupError("a classical key has no ML-DSA-65 half")
        return mldsa.MLDSA65PrivateKey.from_seed_bytes(seed)


def sign_request(
    message: Any,
    *,
    did: str,
    key: SigningKey,
    body: bytes | None,
    created: datetime | None = None,
    nonce: str | None = None,
) -> None:
    """Add `Signature-Input`, `Signature` (and `Content-Digest` for a body) to `message`.

    `message` has `method`, `url` (text) and a mutable `headers` mapping. A hybrid key
    signs twice, as the module docstring says. A `Content-Digest` the message already
    carries is signed as it is, unhashed (a sender that hashed the body ahead of time,
    `content_digest`); the node checks it against the body either way.
    """
    when = created or datetime.now(UTC)
    once = nonce or secrets.token_urlsafe(24)
    covered = COVERED_WITH_BODY if body else COVERED
    digested = bool(body) and "content-digest" in message.headers
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Ed25519Keys(key)).sign(
        message,
        key_id=did,
        created=when,
        nonce=once,
        label=SIGNATURE_LABEL,
        tag=SIGNATURE_LABEL,
        covered_component_ids=covered,
        body=None if digested else body or None,
        use_existing_digest=digested,
    )
    if key.is_hybrid:
        # The Content-Digest the first half just computed from `body` is reused as it
        # is (its format is checked): hashing the body a second time proves nothing new.
        HTTPMessageSigner(signature_algorithm=MLDSA65, key_resolver=_MLDSA65Keys(key)).sign(
            message,
            key_id=did,
            created=when,
            nonce=once,
            label=PQ_SIGNATURE_LABEL,
            tag=PQ_SIGNATURE_LABEL,
            covered_component_ids=covered,
            body=None,
            use_existing_digest=bool(body),
            append_if_signature_exists=True,
        )


def content_digest(body: bytes) -> str:
    """The `Content-Digest` field value (RFC 9530, sha-256) `sign_request` would add."""
    return ContentDigest.create(body)


# Verifying -----------------------------------------------------------------------------


class _Fields:
    """Header fields as a list of (name, value) pairs, repeated names kept."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields

    def items(self) -> Iterable[tuple[str, str]]:
        return iter(self._fields)

    def __iter__(self) -> Any:
        return iter(dict.fromkeys(name for name, _ in self._fields))

    def __contains__(self, name: object) -> bool:
        return any(field.lower() == str(name).lower() for field, _ in self._fields)


class RequestView:
    """The shape `http_message_signatures` reads: method, url, headers with items()."""

    def __init__(self, method: str, url: str, headers: list[tuple[str, str]]) -> None:
        self.method = method
        self.url = url
        self.headers = _Fields(headers)


class _PublicKeys(HTTPSignatureKeyResolver):
    """Looks each DID up once per request and hands out the half an algorithm needs."""

    def __init__(self, lookup: Callable[[str], VerifyKey]) -> None:
        self.lookup = lookup
        self.keys: dict[str, VerifyKey] = {}

    def key(self, key_id: str) -> VerifyKey:
        if key_id not in self.keys:
            self.keys[key_id] = self.lookup(key_id)
        return self.keys[key_id]

    def resolve_private_key(self, key_id: str) -> Any:
        raise LookupError("the node never holds a caller's private key")


class _Ed25519Public(_PublicKeys):
    def resolve_public_key(self, key_id: str) -> ed25519.Ed25519PublicKey:
        return ed25519.Ed25519PublicKey.from_public_bytes(self.key(key_id).ed25519_bytes())


class _MLDSA65Public(_PublicKeys):
    def resolve_public_key(self, key_id: str) -> mldsa.MLDSA65PublicKey | None:
        raw = self.key(key_id).mldsa65_bytes()
        return None if raw is None else mldsa.MLDSA65PublicKey.from_public_bytes(raw)


def _signature_count(view: RequestView) -> int:
    lines = [value for name, value in view.headers.items() if name.lower() == "signature-input"]
    if not lines:
        return 0
    try:
        parsed = http_sf.parse(", ".join(lines).encode(), tltype="dictionary")
    except Exception:
        raise SignatureRefused('malformed structured header field "Signature-Input"') from None
    return len(parsed) if isinstance(parsed, dict) else 0


def verify_request(
    view: RequestView,
    body: bytes,
    lookup: Callable[[str], VerifyKey],
    *,
    max_age: timedelta,
) -> Verified:
    """Check `view`'s signatures against the key `lookup(did)` returns for its `keyid`.

    Raises `SignatureRefused` saying why when they do not prove the sender. The nonce is
    returned, not spent: replay protection is the caller's. The body is hashed once,
    against the Content-Digest the Ed25519 half covers; the ML-DSA-65 half must cover
    the same value (`_same_request`), so it is checked by the same pass.
    """
    required = COVERED_WITH_BODY if body else COVERED
    several = _signature_count(view) > 1
    classical_keys = _Ed25519Public(lookup)
    try:
        classical_verifier = HTTPMessageVerifier(
            signature_algorithm=algorithms.ED25519, key_resolver=classical_keys
        )
        classical = _one(
            classical_verifier.verify(
                view,
                max_age=max_age,
                expect_tag=SIGNATURE_LABEL if several else None,
                require_components=required,
            ),
            SIGNATURE_LABEL,
        )
        classical_verifier.verify_body(view, [classical], body)
        did = str(classical.parameters.get("keyid", ""))
        key = classical_keys.key(did)
        quantum = None
        if key.is_hybrid:
            if not several:
                raise SignatureRefused(
                    f"{did} holds a hybrid key: sign with Ed25519 (tag {SIGNATURE_LABEL!r}) "
                    f"and ML-DSA-65 (tag {PQ_SIGNATURE_LABEL!r}); both must verify"
                )
            pq_keys = _MLDSA65Public(lookup)
            pq_keys.keys[did] = key
            quantum = _one(
                HTTPMessageVerifier(signature_algorithm=MLDSA65, key_resolver=pq_keys).verify(
                    view,
                    max_age=max_age,
                    expect_tag=PQ_SIGNATURE_LABEL,
                    require_components=required,
                ),
                PQ_SIGNATURE_LABEL,
            )
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise SignatureRefused(str(exc) or type(exc).__name__) from None
    except ValueError as exc:  # an unusable key id
        raise SignatureRefused(str(exc)) from None
    if quantum is not None:
        _same_request(classical, quantum)
    return Verified(
        did=did,
        nonce=classical.nonce or "",
        created=datetime.fromtimestamp(int(classical.parameters.get("created", 0)), UTC),
        hybrid=quantum is not None,
    )


def _one(results: list[VerifyResult], tag: str) -> VerifyResult:
    if len(results) != 1:
        raise SignatureRefused(f"expected one signature tagged {tag!r}, found {len(results)}")
    return results[0]


def _same_request(classical: VerifyResult, quantum: VerifyResult) -> None:
    """Both halves must sign the same thing as the same signer at the same moment."""
    for name in ("keyid", "created", "nonce"):
        if classical.parameters.get(name) != quantum.parameters.get(name):
            raise SignatureRefused(f"the Ed25519 and ML-DSA-65 signatures differ in {name!r}")
    if _signed_values(classical) != _signed_values(quantum):
        raise SignatureRefused("the Ed25519 and ML-DSA-65 signatures cover different components")


def _signed_values(result: VerifyResult) -> dict[str, str]:
    """The components a signature covers, with their values (its own parameters aside)."""
    return {
        name: value
        for name, value in result.covered_components.items()
        if name != '"@signature-params"'
    }
