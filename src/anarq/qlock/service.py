"""Qlock as a node service: the node's distributed locks, and crypto for thin clients.

What the node offers callers, and what it does not:

- `verify` and `seal` need only public keys. A client without a crypto library (a
  browser form, a shell script, a small device) may ask its node for them, and the node
  learns nothing secret. `seal` does show the plaintext to this node: use it for data
  the node may see anyway; seal on the device when even one's own node must not.
- `sign` and `open` are not offered — not even with a private key passed in the
  request body over TLS. Keys stay in the user's hands: a key sent to a server has
  been through proxies' buffers, the node's memory and possibly its logs and crash
  dumps, within the operator's reach, and is no longer the user's alone; an API that
  accepts keys teaches clients to send them. Clients sign and open where the key
  lives (the SDK, `anarq id`, WebCrypto in a browser). The node's own key signs only
  what the node itself asserts (tree heads, node records): it is never a signing
  oracle for callers.

Both are guarded like any other action (deny by default): `execute` on
`qlock:crypto:verify` and `qlock:crypto:seal`. The operator and the node may; an
identity, or "public", needs a Qonsent grant.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Final

from anarq.kernel import Kernel
from anarq.kernel.errors import BadRequest
from anarq.kernel.guard import Context
from anarq.qlock.errors import BadSignature, InvalidKey
from anarq.qlock.keys import ALG_ED25519, ALG_ED25519_MLDSA65, RecipientKey, VerifyKey
from anarq.qlock.locks import LockService
from anarq.qlock.models import (
    KEY_MAX_BYTES,
    MESSAGE_MAX_BYTES,
    SEAL_PLAINTEXT_MAX_BYTES,
    SEAL_RECIPIENTS_MAX,
    SIGNATURE_MAX_BYTES,
    Sealed,
    Verification,
    base64_chars,
)
from anarq.qlock.seal import SEAL_MAX_AAD_BYTES
from anarq.qlock.seal import seal as seal_to
from anarq.qlock.sign import verify as verify_signature

VERIFY_RESOURCE: Final = "qlock:crypto:verify"
SEAL_RESOURCE: Final = "qlock:crypto:seal"

_STANDARD_ALPHABET: Final = re.compile(r"[A-Za-z0-9+/]*")
_URLSAFE_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]*")


class QlockService:
    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel
        self.locks = LockService(kernel)

    def verify(
        self, ctx: Context, public_key_b64: str, message_b64: str, signature_b64: str
    ) -> Verification:
        """Check that `signature` is the key's over `message`.

        A hybrid key accepts only hybrid signatures. Raises `InvalidKey` for a key that is
        not a Qlock public signing key, `BadSignature` for one that does not verify.
        """
        public = decode_base64(public_key_b64, "public_key", KEY_MAX_BYTES, InvalidKey)
        message = decode_base64(message_b64, "message", MESSAGE_MAX_BYTES, BadRequest)
        signature = decode_base64(signature_b64, "signature", SIGNATURE_MAX_BYTES, BadSignature)
        self.k.check(ctx, "execute", VERIFY_RESOURCE)
        key = VerifyKey.from_bytes(public)
        verify_signature(key, message, signature)
        return Verification(valid=True, algorithm=key.algorithm, key_id=key.key_id)

    def seal(
        self,
        ctx: Context,
        recipient_public_keys_b64: Sequence[str],
        plaintext_b64: str,
        aad_b64: str | None = None,
    ) -> Sealed:
        """Seal `plaintext` to each recipient key (X25519 or X-Wing); the node keeps nothing.

        At most `SEAL_RECIPIENTS_MAX` recipients and `SEAL_PLAINTEXT_MAX_BYTES` of
        plaintext; larger data is Qdrive's streaming encryption.
        """
        if not 1 <= len(recipient_public_keys_b64) <= SEAL_RECIPIENTS_MAX:
            raise BadRequest(f"seal to 1 to {SEAL_RECIPIENTS_MAX} recipients")
        forms = [
            decode_base64(text, f"recipients[{index}]", KEY_MAX_BYTES, InvalidKey)
            for index, text in enumerate(recipient_public_keys_b64)
        ]
        plaintext = decode_base64(plaintext_b64, "plaintext", SEAL_PLAINTEXT_MAX_BYTES, BadRequest)
        aad = b""
        if aad_b64 is not None:
            aad = decode_base64(aad_b64, "aad", SEAL_MAX_AAD_BYTES, BadRequest)
        self.k.check(ctx, "execute", SEAL_RESOURCE)
        readers = [_recipient_key(form, index) for index, form in enumerate(forms)]
        envelope = seal_to(plaintext, readers, aad=aad)
        return Sealed(
            envelope=base64.b64encode(envelope).decode("ascii"),
            recipients=list(dict.fromkeys(reader.key_id for reader in readers)),
            size_bytes=len(envelope),
        )


def decode_base64(text: str, field: str, max_bytes: int, error: type[BadRequest]) -> bytes:
    """Base64 text (standard or URL-safe alphabet, padding optional) to at most `max_bytes`.

    Anything else raises `error` naming `field`, before any decoding work on oversized text.
    """
    if not isinstance(text, str):
        raise error(f"{field} must be base64 text")
    if len(text) > base64_chars(max_bytes):
        raise error(f"{field} is over {max_bytes} bytes")
    data = text.rstrip("=")
    if len(text) - len(data) > 2 or len(data) % 4 == 1:
        raise error(f"{field} is not base64: its length or padding is wrong")
    if _STANDARD_ALPHABET.fullmatch(data):
        altchars = None
    elif _URLSAFE_ALPHABET.fullmatch(data):
        altchars = b"-_"
    else:
        raise error(f"{field} is not base64: characters outside one base64 alphabet")
    try:
        raw = base64.b64decode(data + "=" * (-len(data) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{field} is not base64") from None
    if len(raw) > max_bytes:
        raise error(f"{field} is over {max_bytes} bytes")
    return raw


def _recipient_key(form: bytes, index: int) -> RecipientKey:
    if form[:1] in (bytes([ALG_ED25519]), bytes([ALG_ED25519_MLDSA65])):
        raise InvalidKey(
            f"recipients[{index}] is a signing key; seal to the identity's recipient "
            "(X25519 or X-Wing) key"
        )
    try:
        return RecipientKey.from_bytes(form)
    except InvalidKey as exc:
        raise InvalidKey(f"recipients[{index}]: {exc.detail}") from None
