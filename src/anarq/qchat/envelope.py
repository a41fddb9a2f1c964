"""The chat formats: message bodies under a room's group key, and the sealed group key.

An end-to-end room has one 32-byte group key per *epoch*. A member's client makes it,
seals it with Qlock's multi-recipient `seal` to every joined member's current key
(`aad = "anarq/qchat/key/v1|<room>|<epoch>"`) and uploads the sealed bytes. A message
body is then

    qc1.<epoch>.<nonce: 12 bytes, base64url>.<ChaCha20-Poly1305 ciphertext, base64url>

with `aad = "anarq/qchat/v1|<room>|<epoch>"` and plaintext the UTF-8 JSON
`{"text": …}`. The node checks only the shape (`parse_body`) and that the epoch is the
room's current one; it never holds a group key. These functions run where the keys are.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from anarq.qlock import AgreementKey, BadEnvelope, RecipientKey, WrongKey, open_sealed, seal

BODY_PREFIX: Final = "qc1"
GROUP_KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
TEXT_MAX_CHARS: Final = 16 * 1024


class ChatCryptoError(Exception):
    """A body or key that cannot be opened: wrong key, altered, or not in the format."""


@dataclass(frozen=True)
class ParsedBody:
    epoch: int
    nonce: bytes
    ciphertext: bytes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ChatCryptoError("not base64url") from None


def _body_aad(room_id: str, epoch: int) -> bytes:
    return f"anarq/qchat/v1|{room_id}|{epoch}".encode()


def _key_aad(room_id: str, epoch: int) -> bytes:
    return f"anarq/qchat/key/v1|{room_id}|{epoch}".encode()


def parse_body(text: str) -> ParsedBody:
    """The parts of an encrypted body, or `ChatCryptoError` if it is not one."""
    parts = text.split(".")
    if len(parts) != 4 or parts[0] != BODY_PREFIX or not parts[1].isdigit():
        raise ChatCryptoError(f"an encrypted body is {BODY_PREFIX}.<epoch>.<nonce>.<ciphertext>")
    nonce, ciphertext = unb64url(parts[2]), unb64url(parts[3])
    if len(nonce) != NONCE_BYTES or len(ciphertext) < TAG_BYTES:
        raise ChatCryptoError("the nonce must be 12 bytes and the ciphertext hold a 16-byte tag")
    return ParsedBody(int(parts[1]), nonce, ciphertext)


def new_group_key() -> bytes:
    return os.urandom(GROUP_KEY_BYTES)


def seal_group_key(key: bytes, room_id: str, epoch: int, readers: list[RecipientKey]) -> str:
    """The group key sealed to `readers`, as base64url text (what the node stores)."""
    assert len(key) == GROUP_KEY_BYTES
    return b64url(seal(key, readers, aad=_key_aad(room_id, epoch)))


def open_group_key(sealed: str, room_id: str, epoch: int, reader: AgreementKey) -> bytes:
    try:
        key = open_sealed(unb64url(sealed), reader, aad=_key_aad(room_id, epoch))
    except (BadEnvelope, WrongKey) as exc:
        raise ChatCryptoError(f"cannot open the group key of epoch {epoch}: {exc}") from None
    if len(key) != GROUP_KEY_BYTES:
        raise ChatCryptoError("the sealed group key is not 32 bytes")
    return key


def encrypt_text(key: bytes, room_id: str, epoch: int, text: str) -> str:
    if len(text) > TEXT_MAX_CHARS:
        raise ValueError(f"a message is at most {TEXT_MAX_CHARS} characters")
    nonce = os.urandom(NONCE_BYTES)
    plaintext = json.dumps({"text": text}, ensure_ascii=False).encode()
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, _body_aad(room_id, epoch))
    return f"{BODY_PREFIX}.{epoch}.{b64url(nonce)}.{b64url(ciphertext)}"


def decrypt_text(key: bytes, room_id: str, body: str) -> str:
    parsed = parse_body(body)
    try:
        plaintext = ChaCha20Poly1305(key).decrypt(
            parsed.nonce, parsed.ciphertext, _body_aad(room_id, parsed.epoch)
        )
        document = json.loads(plaintext)
    except InvalidTag:
        raise ChatCryptoError("the body does not open with this key") from None
    except ValueError:
        raise ChatCryptoError("the decrypted body is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("text"), str):
        raise ChatCryptoError('the decrypted body is not {"text": …}')
    return str(document["text"])
