"""did:key for Ed25519 and X25519 keys (W3C CCG did:key method).

`did:key:` + multibase base58btc (`z`) of the multicodec-prefixed raw key:
`ed25519-pub` (0xed, varint `ed 01`) or `x25519-pub` (0xec, varint `ec 01`).
Resolving an Ed25519 DID also yields the X25519 key-agreement key that did:key derives
from it (the Edwards-to-Montgomery map in `anarq.qlock.keys`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final, Literal

from multiformats import multicodec

from anarq.qlock import b58
from anarq.qlock.errors import InvalidKey
from anarq.qlock.keys import (
    RecipientKey,
    VerifyKey,
    x25519_public_from_ed25519,
)
from anarq.squid.errors import InvalidDid

DID_KEY_PREFIX: Final = "did:key:"
# An Ed25519 or X25519 did:key is 56 characters; anything much longer is not one of ours.
DID_MAX_CHARS: Final = 128
ED25519_CODEC: Final = "ed25519-pub"
X25519_CODEC: Final = "x25519-pub"
# Their multicodec prefixes (unsigned varints of 0xed and 0xec). Encoded here, not through
# `multiformats`: its run-time type checks made every DID parse cost a tenth of a millisecond.
_PREFIXES: Final = {ED25519_CODEC: b"\xed\x01", X25519_CODEC: b"\xec\x01"}
PUBLIC_KEY_BYTES: Final = 32

Representation = Literal["Ed25519VerificationKey2018", "JsonWebKey2020", "Multikey"]

_DID_V1 = "https://www.w3.org/ns/did/v1"
_CONTEXTS: Final[dict[str, tuple[str, ...]]] = {
    "Ed25519VerificationKey2018": (
        "https://w3id.org/security/suites/ed25519-2018/v1",
        "https://w3id.org/security/suites/x25519-2019/v1",
    ),
    "JsonWebKey2020": ("https://w3id.org/security/suites/jws-2020/v1",),
    "Multikey": ("https://w3id.org/security/multikey/v1",),
}
_LEGACY_TYPES: Final = {
    ED25519_CODEC: "Ed25519VerificationKey2018",
    X25519_CODEC: "X25519KeyAgreementKey2019",
}
_JWK_CURVES: Final = {ED25519_CODEC: "Ed25519", X25519_CODEC: "X25519"}


@dataclass(frozen=True, slots=True)
class DidKey:
    did: str
    codec: Literal["ed25519-pub", "x25519-pub"]
    public_key: bytes

    @property
    def fingerprint(self) -> str:
        """The multibase part after `did:key:` (also the verification method fragment)."""
        return self.did[len(DID_KEY_PREFIX) :]


def did_from_ed25519(public_key: bytes) -> str:
    """The did:key of a raw 32-byte Ed25519 public key; refuses keys that are not points."""
    try:
        VerifyKey.from_ed25519(public_key)
    except InvalidKey as exc:
        raise InvalidDid(f"cannot make a did:key: {exc.detail}") from None
    return DID_KEY_PREFIX + _fingerprint(ED25519_CODEC, public_key)


def did_of(key: VerifyKey) -> str:
    """The did:key of a signing key already parsed (and so already checked)."""
    return DID_KEY_PREFIX + _fingerprint(ED25519_CODEC, key.ed25519_bytes())


def did_from_x25519(public_key: bytes) -> str:
    """The did:key of a raw 32-byte X25519 public key; refuses small-order points."""
    try:
        RecipientKey.from_x25519(public_key)
    except InvalidKey as exc:
        raise InvalidDid(f"cannot make a did:key: {exc.detail}") from None
    return DID_KEY_PREFIX + _fingerprint(X25519_CODEC, public_key)


def decode(did: str) -> DidKey:
    """Parse a did:key into its codec and raw key; `InvalidDid` says what is wrong."""
    if not isinstance(did, str) or not did.startswith(DID_KEY_PREFIX):
        raise InvalidDid(f"{str(did)[:DID_MAX_CHARS]!r} does not start with {DID_KEY_PREFIX!r}")
    if len(did) > DID_MAX_CHARS:
        raise InvalidDid(f"a did:key is at most {DID_MAX_CHARS} characters")
    value = did[len(DID_KEY_PREFIX) :]
    if not value.startswith("z"):
        raise InvalidDid(f"{did!r}: did:key uses multibase base58btc, which starts with 'z'")
    try:
        wrapped = b58.decode(value[1:])
    except ValueError:
        raise InvalidDid(f"{did!r}: not base58btc of a multicodec-prefixed key") from None
    name = next((codec for codec, head in _PREFIXES.items() if wrapped.startswith(head)), None)
    if name is None:
        raise InvalidDid(
            f"{did!r}: key type {_codec_name(wrapped)!r} is not supported (ed25519, x25519)"
        )
    key = wrapped[len(_PREFIXES[name]) :]
    if len(key) != PUBLIC_KEY_BYTES:
        raise InvalidDid(f"{did!r}: an {name} key is {PUBLIC_KEY_BYTES} bytes, not {len(key)}")
    if _fingerprint(name, key) != value:  # one DID per key: no alternative spellings
        raise InvalidDid(f"{did!r} is not in canonical form")
    if name == ED25519_CODEC:
        try:
            VerifyKey.from_ed25519(key)
        except InvalidKey as exc:
            raise InvalidDid(f"{did!r}: {exc.detail}") from None
        return DidKey(did, "ed25519-pub", key)
    try:
        RecipientKey.from_x25519(key)
    except InvalidKey as exc:
        raise InvalidDid(f"{did!r}: {exc.detail}") from None
    return DidKey(did, "x25519-pub", key)


def resolve(
    did: str, *, representation: Representation = "Ed25519VerificationKey2018"
) -> dict[str, Any]:
    """The DID document, as the did:key method builds it.

    Ed25519: one signing method (authentication, assertion, capability invocation and
    delegation) and the derived X25519 key for keyAgreement. X25519: keyAgreement only.
    """
    parsed = decode(did)
    if representation not in _CONTEXTS:
        raise InvalidDid(f"unknown representation {representation!r}")
    document: dict[str, Any] = {
        "@context": [_DID_V1, *_context(representation, parsed.codec)],
        "id": did,
    }
    if parsed.codec == X25519_CODEC:
        method = _method(did, X25519_CODEC, parsed.public_key, representation)
        document["verificationMethod"] = [method]
        document["keyAgreement"] = [method["id"]]
        return document
    signing = _method(did, ED25519_CODEC, parsed.public_key, representation)
    agreement_key = x25519_public_from_ed25519(parsed.public_key)
    agreement = _method(did, X25519_CODEC, agreement_key, representation)
    document["verificationMethod"] = [signing, agreement]
    for relation in (
        "assertionMethod",
        "authentication",
        "capabilityInvocation",
        "capabilityDelegation",
    ):
        document[relation] = [signing["id"]]
    document["keyAgreement"] = [agreement["id"]]
    return document


def _fingerprint(codec: str, public_key: bytes) -> str:
    return "z" + b58.encode(_PREFIXES[codec] + public_key)


def _codec_name(wrapped: bytes) -> str:
    """The multicodec a prefix names, for saying which key type is not supported."""
    try:
        codec, _raw = multicodec.unwrap(wrapped)
    except Exception:  # not even a multicodec prefix
        return "unknown"
    name: str = codec.name
    return name


def _context(representation: str, codec: str) -> tuple[str, ...]:
    contexts = _CONTEXTS[representation]
    if representation == "Ed25519VerificationKey2018" and codec == X25519_CODEC:
        return contexts[1:]  # an X25519-only document has no Ed25519 key to describe
    return contexts


def _method(did: str, codec: str, public_key: bytes, representation: str) -> dict[str, Any]:
    fingerprint = _fingerprint(codec, public_key)
    method: dict[str, Any] = {
        "id": f"{did}#{fingerprint}",
        "type": representation,
        "controller": did,
    }
    if representation == "Ed25519VerificationKey2018":
        method["type"] = _LEGACY_TYPES[codec]
        method["publicKeyBase58"] = _base58(public_key)
    elif representation == "JsonWebKey2020":
        x = base64.urlsafe_b64encode(public_key).rstrip(b"=").decode("ascii")
        method["publicKeyJwk"] = {"kty": "OKP", "crv": _JWK_CURVES[codec], "x": x}
    else:
        method["publicKeyMultibase"] = fingerprint
    return method


def _base58(data: bytes) -> str:
    return b58.encode(data)  # bare base58btc, without multibase's 'z'
