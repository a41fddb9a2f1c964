"""Signatures: `sign(key, message)` and `verify(public, message, signature)`.

Wire form (v1): version byte 0x01, the key's algorithm byte, then the parts:
- 0x01 `ed25519`: a plain RFC 8032 Ed25519 signature over the message (64 bytes), so
  other Ed25519 verifiers (VCs, HTTP signatures) accept the same bytes.
- 0x02 `ed25519+mldsa65`: Ed25519 (64 bytes) then ML-DSA-65 (3309 bytes), both over
  `HYBRID_PREFIX || message`. Both must verify. The prefix names the pair, so neither half
  is a valid signature of the bare message on its own (no stripping to classical).

`sign_detached` / `verify_detached` carry the same bytes in a JSON-friendly dict.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Final

from cryptography.exceptions import InvalidSignature

from anarq.qlock.errors import BadSignature
from anarq.qlock.keys import (
    ALG_ED25519,
    ALG_ED25519_MLDSA65,
    ALGORITHM_NAMES,
    SigningKey,
    VerifyKey,
)

SIGNATURE_VERSION: Final = 0x01
HEADER_BYTES: Final = 2
ED25519_SIGNATURE_BYTES: Final = 64
MLDSA65_SIGNATURE_BYTES: Final = 3309
HYBRID_PREFIX: Final = b"anarq/qlock/sig/v1/ed25519+mldsa65\x00"
SIGNATURE_BYTES: Final[dict[int, int]] = {
    ALG_ED25519: HEADER_BYTES + ED25519_SIGNATURE_BYTES,
    ALG_ED25519_MLDSA65: HEADER_BYTES + ED25519_SIGNATURE_BYTES + MLDSA65_SIGNATURE_BYTES,
}
# Text of the largest signature in base64url, with room to spare; longer text is refused
# before decoding.
SIGNATURE_TEXT_MAX_CHARS: Final = 4600


def sign(key: SigningKey, message: bytes) -> bytes:
    """Sign `message`; hybrid keys sign with both halves."""
    if key._mldsa65 is None:
        return bytes([SIGNATURE_VERSION, ALG_ED25519]) + key._ed25519.sign(message)
    bound = HYBRID_PREFIX + message
    return (
        bytes([SIGNATURE_VERSION, ALG_ED25519_MLDSA65])
        + key._ed25519.sign(bound)
        + key._mldsa65.sign(bound)
    )


def verify(public: VerifyKey, message: bytes, signature: bytes) -> None:
    """Return if `signature` is `public`'s over `message`; raise `BadSignature` otherwise.

    The signature's algorithm must be the key's: a hybrid key accepts only hybrid
    signatures, so a downgrade to Ed25519 alone is refused.
    """
    algorithm = _check_shape(signature)
    expected = public.to_bytes()[0]
    if algorithm != expected:
        raise BadSignature(
            f"signature algorithm {ALGORITHM_NAMES[algorithm]} does not match "
            f"key algorithm {ALGORITHM_NAMES[expected]}"
        )
    classical_end = HEADER_BYTES + ED25519_SIGNATURE_BYTES
    bound = message if public._mldsa65 is None else HYBRID_PREFIX + message
    try:
        public._ed25519.verify(signature[HEADER_BYTES:classical_end], bound)
    except InvalidSignature:
        raise BadSignature("Ed25519 signature does not verify") from None
    if public._mldsa65 is not None:
        try:
            public._mldsa65.verify(signature[classical_end:], bound)
        except InvalidSignature:
            raise BadSignature("ML-DSA-65 signature does not verify") from None


def signature_algorithm(signature: bytes) -> str:
    """The algorithm name a well-formed signature declares (not a verification)."""
    return ALGORITHM_NAMES[_check_shape(signature)]


def _check_shape(signature: bytes) -> int:
    if len(signature) < HEADER_BYTES:
        raise BadSignature(f"signature is {len(signature)} bytes; too short for its header")
    version, algorithm = signature[0], signature[1]
    if version != SIGNATURE_VERSION:
        raise BadSignature(f"unsupported signature version {version}")
    if algorithm not in SIGNATURE_BYTES:
        raise BadSignature(f"unknown signature algorithm byte {algorithm:#04x}")
    if len(signature) != SIGNATURE_BYTES[algorithm]:
        raise BadSignature(
            f"{ALGORITHM_NAMES[algorithm]} signature is {len(signature)} bytes, "
            f"expected {SIGNATURE_BYTES[algorithm]}"
        )
    return algorithm


# --- JSON-friendly detached form ------------------------------------------------------------


def encode_signature(signature: bytes) -> str:
    """Signature bytes as unpadded base64url text."""
    return base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")


def decode_signature(text: str) -> bytes:
    """Unpadded base64url text back to signature bytes; `BadSignature` if it is not that."""
    if len(text) > SIGNATURE_TEXT_MAX_CHARS or "=" in text:
        raise BadSignature("signature text is not unpadded base64url of a signature")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature("signature text is not unpadded base64url") from None
    if encode_signature(raw) != text:  # one text per signature: no malleable spellings
        raise BadSignature("signature text is not in canonical base64url form")
    return raw


def sign_detached(key: SigningKey, message: bytes) -> dict[str, str]:
    """`{"alg", "kid", "sig"}`: the signature as base64url, with the algorithm and key id."""
    return {
        "alg": key.algorithm,
        "kid": key.key_id,
        "sig": encode_signature(sign(key, message)),
    }


def verify_detached(public: VerifyKey, message: bytes, detached: Mapping[str, object]) -> None:
    """Verify a `sign_detached` dict; `alg` and `kid` must agree with the key and signature."""
    sig, alg, kid = detached.get("sig"), detached.get("alg"), detached.get("kid")
    if not isinstance(sig, str) or not isinstance(alg, str) or not isinstance(kid, str):
        raise BadSignature('a detached signature needs string fields "alg", "kid" and "sig"')
    if kid != public.key_id:
        raise BadSignature(f"signature names key {kid[:64]!r}, not {public.key_id}")
    signature = decode_signature(sig)
    if alg != signature_algorithm(signature):
        raise BadSignature(f"declared algorithm {alg[:32]!r} differs from the signature's")
    verify(public, message, signature)
