"""Passphrase keystore: a secret (a private key's bytes) sealed under a passphrase.

`lock` returns a small JSON document; `unlock` returns the secret or raises one error,
`KeystoreLocked`, whatever went wrong cryptographically (wrong passphrase, altered salt,
parameters or ciphertext), so a failure says nothing about which. Documents that are not
keystores at all get `BadKeystore`. Writing the document to disk is the caller's job.

Key = Argon2id(NFC(passphrase) as UTF-8, salt, parameters from the document), 32 bytes.
Cipher = ChaCha20-Poly1305 with a random nonce; the associated data is the canonical JSON
of every field but `ciphertext`, so parameters cannot be swapped without detection.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from anarq.qlock.errors import BadKeystore, KeystoreLocked, WeakPassphrase

KEYSTORE_FORMAT: Final = "anarq-qlock-keystore"
KEYSTORE_VERSION: Final = 1
KDF_NAME: Final = "argon2id"
CIPHER_NAME: Final = "chacha20-poly1305"
SALT_BYTES: Final = 16
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32
SECRET_MAX_BYTES: Final = 16 * 1024
PASSPHRASE_MAX_CHARS: Final = 1024
KEYSTORE_MAX_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Argon2Params:
    memory_kib: int
    iterations: int
    lanes: int


# RFC 9106 §4, second recommended option (64 MiB, t=3, p=4): ~0.2 s on a laptop core,
# the interactive unlock a person waits for once per session.
INTERACTIVE: Final = Argon2Params(memory_kib=64 * 1024, iterations=3, lanes=4)
# Bounds on parameters written (floor) and read (floor and ceiling): the ceiling keeps a
# hostile document from asking for gigabytes or minutes before it can be refused.
KDF_FLOOR: Final = Argon2Params(memory_kib=8 * 1024, iterations=1, lanes=1)
KDF_CEILING: Final = Argon2Params(memory_kib=1024 * 1024, iterations=16, lanes=16)


def lock(secret: bytes, passphrase: str, *, kdf: Argon2Params = INTERACTIVE) -> bytes:
    """A keystore document (UTF-8 JSON) holding `secret` under `passphrase`."""
    if not 1 <= len(secret) <= SECRET_MAX_BYTES:
        raise BadKeystore(f"a keystore holds 1..{SECRET_MAX_BYTES} bytes")
    _check_params(kdf)
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    header = _header(kdf, salt, nonce)
    key = _derive(passphrase, kdf, salt)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, secret, _canonical(header))
    document = {**header, "ciphertext": _b64(ciphertext)}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def unlock(blob: bytes, passphrase: str) -> bytes:
    """The secret in a keystore document; `KeystoreLocked` for any failure to open it."""
    kdf, salt, nonce, ciphertext = _parse(blob)
    header = _header(kdf, salt, nonce)
    key = _derive(passphrase, kdf, salt)
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, _canonical(header))
    except InvalidTag:
        raise KeystoreLocked("wrong passphrase, or the keystore was altered") from None


def _derive(passphrase: str, kdf: Argon2Params, salt: bytes) -> bytes:
    if not isinstance(passphrase, str) or not passphrase:
        raise WeakPassphrase("the passphrase must be a non-empty string")
    if len(passphrase) > PASSPHRASE_MAX_CHARS:
        raise WeakPassphrase(f"the passphrase is longer than {PASSPHRASE_MAX_CHARS} characters")
    # NFC, as RFC 8265 OpaqueString does: the same passphrase typed on another system
    # (composed vs decomposed accents) must give the same key.
    material = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Argon2id(
        salt=salt,
        length=KEY_BYTES,
        iterations=kdf.iterations,
        lanes=kdf.lanes,
        memory_cost=kdf.memory_kib,
    ).derive(material)


def _check_params(kdf: Argon2Params) -> None:
    for field in ("memory_kib", "iterations", "lanes"):
        value, low, high = (getattr(p, field) for p in (kdf, KDF_FLOOR, KDF_CEILING))
        if type(value) is not int or not low <= value <= high:
            raise BadKeystore(f"argon2id {field} must be an integer in {low}..{high}")
    if kdf.memory_kib < 8 * kdf.lanes:  # Argon2's own rule (RFC 9106 §3.1)
        raise BadKeystore("argon2id memory_kib must be at least 8 x lanes")


def _header(kdf: Argon2Params, salt: bytes, nonce: bytes) -> dict[str, Any]:
    return {
        "format": KEYSTORE_FORMAT,
        "version": KEYSTORE_VERSION,
        "kdf": {
            "name": KDF_NAME,
            "memory_kib": kdf.memory_kib,
            "iterations": kdf.iterations,
            "lanes": kdf.lanes,
            "salt": _b64(salt),
        },
        "cipher": {"name": CIPHER_NAME, "nonce": _b64(nonce)},
    }


def _canonical(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _parse(blob: bytes) -> tuple[Argon2Params, bytes, bytes, bytes]:
    if not isinstance(blob, bytes) or len(blob) > KEYSTORE_MAX_BYTES:
        raise BadKeystore(f"a keystore document is at most {KEYSTORE_MAX_BYTES} bytes")
    try:
        document = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadKeystore("keystore is not UTF-8 JSON") from None
    if not isinstance(document, dict) or document.get("format") != KEYSTORE_FORMAT:
        raise BadKeystore(f'not a keystore: "format" is not {KEYSTORE_FORMAT!r}')
    if document.get("version") != KEYSTORE_VERSION:
        raise BadKeystore(f"unsupported keystore version {str(document.get('version'))[:16]}")
    kdf_doc, cipher_doc = document.get("kdf"), document.get("cipher")
    if set(document) != {"format", "version", "kdf", "cipher", "ciphertext"}:
        raise BadKeystore("keystore fields must be format, version, kdf, cipher, ciphertext")
    if not isinstance(kdf_doc, dict) or set(kdf_doc) != {
        "name",
        "memory_kib",
        "iterations",
        "lanes",
        "salt",
    }:
        raise BadKeystore("keystore kdf needs exactly name, memory_kib, iterations, lanes, salt")
    if not isinstance(cipher_doc, dict) or set(cipher_doc) != {"name", "nonce"}:
        raise BadKeystore("keystore cipher needs exactly name and nonce")
    if kdf_doc["name"] != KDF_NAME or cipher_doc["name"] != CIPHER_NAME:
        raise BadKeystore(f"keystore must use {KDF_NAME} and {CIPHER_NAME}")
    kdf = Argon2Params(kdf_doc["memory_kib"], kdf_doc["iterations"], kdf_doc["lanes"])
    _check_params(kdf)
    salt = _unb64(kdf_doc["salt"], "salt", exact=SALT_BYTES)
    nonce = _unb64(cipher_doc["nonce"], "nonce", exact=NONCE_BYTES)
    ciphertext = _unb64(document["ciphertext"], "ciphertext", exact=None)
    if len(ciphertext) <= 16:  # a Poly1305 tag, and at least one byte of secret
        raise BadKeystore("keystore ciphertext is too short")
    return kdf, salt, nonce, ciphertext


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(value: object, what: str, *, exact: int | None) -> bytes:
    if not isinstance(value, str) or "=" in value:
        raise BadKeystore(f"keystore {what} is not unpadded base64url")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise BadKeystore(f"keystore {what} is not unpadded base64url") from None
    if _b64(raw) != value or (exact is not None and len(raw) != exact):
        raise BadKeystore(f"keystore {what} has the wrong length or spelling")
    return raw


def password_digest(password: str, salt: bytes) -> bytes:
    """Argon2id (RFC 9106) of a short-lived secret such as a share-link or album password,
    at OWASP's minimum for interactive checks (19 MiB, 2 passes): 32 bytes to store and
    compare with `hmac.compare_digest`. Keystores use `lock`, with stronger parameters."""
    kdf = Argon2id(salt=salt, length=32, iterations=2, lanes=1, memory_cost=19 * 1024)
    return kdf.derive(unicodedata.normalize("NFC", password).encode())
