"""Sealed envelopes: encrypt once to many readers; add readers without re-encrypting.

A random 32-byte data key encrypts the payload; HPKE (RFC 9180, base mode) wraps that key
once per recipient. Classical recipients use DHKEM(X25519, HKDF-SHA256); post-quantum
ones X-Wing (MLKEM768-X25519). Both use HKDF-SHA256 and ChaCha20-Poly1305 — the same
AEAD as the payload: constant-time in software on every CPU a node may run on.

Layout (v1, integers big-endian; `docs/formats.md` has the full table):

    "QLSE" | 0x01 | payload AEAD id (2) | salt (16) | n (2)
    n x [ KEM id (2) | KDF id (2) | AEAD id (2) | key id (16) | L (2) | HPKE enc||ct (L) ]
    header MAC (32) | payload ciphertext

payload key || MAC key = HKDF-SHA256(data key, salt, "anarq/qlock/seal/v1/keys", 64).
The MAC (HMAC-SHA256 over every header byte before it) authenticates the whole recipient
list and commits to the data key, so no two readers can be shown different plaintexts.
The payload AEAD uses a zero nonce (its key is unique to this envelope) and authenticates
the fixed header prefix plus the caller's `aad`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from anarq.qlock.errors import BadEnvelope, WrongKey
from anarq.qlock.keys import AgreementKey, RecipientKey, key_id_text

MAGIC: Final = b"QLSE"
ENVELOPE_VERSION: Final = 0x01
# Ids from the IANA HPKE registry, so the envelope names its algorithms in a shared language.
KEM_X25519_HKDF_SHA256: Final = 0x0020
KEM_MLKEM768_X25519: Final = 0x647A
KDF_HKDF_SHA256: Final = 0x0001
AEAD_AES_256_GCM: Final = 0x0002  # HPKE registry ids; streams may use either
AEAD_CHACHA20_POLY1305: Final = 0x0003

DATA_KEY_BYTES: Final = 32
SALT_BYTES: Final = 16
KEY_ID_BYTES: Final = 16
MAC_BYTES: Final = 32
TAG_BYTES: Final = 16
MAX_RECIPIENTS: Final = 1024
WRAPPED_MAX_BYTES: Final = 4096
SEAL_MAX_PLAINTEXT_BYTES: Final = 64 * 1024 * 1024  # larger data goes through streaming AEAD
SEAL_MAX_AAD_BYTES: Final = 64 * 1024

_PREFIX = struct.Struct(f">4sBH{SALT_BYTES}s")  # magic, version, payload AEAD id, salt
_COUNT = struct.Struct(">H")
_STANZA_HEAD = struct.Struct(f">HHH{KEY_ID_BYTES}sH")  # KEM, KDF, AEAD, key id, length
ENVELOPE_MAX_BYTES: Final = (
    _PREFIX.size
    + _COUNT.size
    + MAX_RECIPIENTS * (_STANZA_HEAD.size + WRAPPED_MAX_BYTES)
    + MAC_BYTES
    + SEAL_MAX_PLAINTEXT_BYTES
    + TAG_BYTES
)
_KEYS_INFO = b"anarq/qlock/seal/v1/keys"
_WRAP_INFO = b"anarq/qlock/seal/v1/wrap"
_ZERO_NONCE = bytes(12)

# KEM id -> (HPKE suite, exact length of enc || ct for a 32-byte data key).
_SUITES: Final[dict[int, tuple[hpke.Suite, int]]] = {
    KEM_X25519_HKDF_SHA256: (
        hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305),
        hpke.KEM.X25519.enc_length() + DATA_KEY_BYTES + TAG_BYTES,
    ),
    KEM_MLKEM768_X25519: (
        hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305),
        hpke.KEM.MLKEM768_X25519.enc_length() + DATA_KEY_BYTES + TAG_BYTES,
    ),
}


@dataclass(frozen=True, slots=True)
class _Stanza:
    kem_id: int
    kdf_id: int
    aead_id: int
    key_id: bytes
    wrapped: bytes

    def encode(self) -> bytes:
        head = _STANZA_HEAD.pack(
            self.kem_id, self.kdf_id, self.aead_id, self.key_id, len(self.wrapped)
        )
        return head + self.wrapped


@dataclass(frozen=True, slots=True)
class _Envelope:
    prefix: bytes  # magic .. salt, the bytes every wrap and the payload are bound to
    stanzas: tuple[_Stanza, ...]
    mac: bytes
    payload: bytes


def seal(plaintext: bytes, recipients: Iterable[RecipientKey], *, aad: bytes = b"") -> bytes:
    """Encrypt `plaintext` so that each recipient (and only they) can open it.

    `aad` is authenticated, not stored: openers must pass the same bytes.
    """
    readers = _distinct(recipients)
    if not readers:
        raise BadEnvelope("seal needs at least one recipient")
    _check_sizes(len(plaintext), len(aad), len(readers))
    data_key = os.urandom(DATA_KEY_BYTES)
    prefix = _PREFIX.pack(MAGIC, ENVELOPE_VERSION, AEAD_CHACHA20_POLY1305, os.urandom(SALT_BYTES))
    payload_key, mac_key = _derive(data_key, prefix)
    stanzas = tuple(_wrap(data_key, prefix, reader) for reader in readers)
    payload = ChaCha20Poly1305(payload_key).encrypt(_ZERO_NONCE, plaintext, prefix + aad)
    return _assemble(prefix, stanzas, mac_key, payload)


def open_sealed(envelope: bytes, recipient_private_key: AgreementKey, *, aad: bytes = b"") -> bytes:
    """The plaintext, if `envelope` is sealed to this key and intact.

    Raises `WrongKey` if the envelope has no entry for the key, `BadEnvelope` if it is
    truncated, altered, or `aad` differs from the one it was sealed with.
    """
    parsed = _parse(envelope)
    _, payload_key, _ = _unwrap(parsed, recipient_private_key)
    try:
        return ChaCha20Poly1305(payload_key).decrypt(
            _ZERO_NONCE, parsed.payload, parsed.prefix + aad
        )
    except InvalidTag:
        raise BadEnvelope("payload fails authentication: altered, or the aad differs") from None


def rewrap(
    envelope: bytes, opener_private_key: AgreementKey, new_recipients: Iterable[RecipientKey]
) -> bytes:
    """The same envelope, readable also by `new_recipients`; the payload is not touched.

    Only a current reader can add readers. Recipients already present are skipped.
    """
    parsed = _parse(envelope)
    data_key, _, mac_key = _unwrap(parsed, opener_private_key)
    present = {stanza.key_id for stanza in parsed.stanzas}
    added = tuple(
        _wrap(data_key, parsed.prefix, reader)
        for reader in _distinct(new_recipients)
        if reader._id not in present
    )
    if len(parsed.stanzas) + len(added) > MAX_RECIPIENTS:
        raise BadEnvelope(f"an envelope has at most {MAX_RECIPIENTS} recipients")
    return _assemble(parsed.prefix, parsed.stanzas + added, mac_key, parsed.payload)


def recipients_of(envelope: bytes) -> list[str]:
    """Key ids the envelope is wrapped to, in order. A hint: only opening authenticates it."""
    return [key_id_text(stanza.key_id) for stanza in _parse(envelope).stanzas]


# --- internals ------------------------------------------------------------------------------


def _distinct(recipients: Iterable[RecipientKey]) -> list[RecipientKey]:
    seen: dict[bytes, RecipientKey] = {}
    for reader in recipients:
        if not isinstance(reader, RecipientKey):  # e.g. an AgreementKey: pass .recipient_key
            raise TypeError(f"recipients must be RecipientKey, not {type(reader).__name__}")
        seen.setdefault(reader._id, reader)
    return list(seen.values())


def _check_sizes(plaintext_bytes: int, aad_bytes: int, recipients: int) -> None:
    if plaintext_bytes > SEAL_MAX_PLAINTEXT_BYTES:
        raise BadEnvelope(f"plaintext over {SEAL_MAX_PLAINTEXT_BYTES} bytes; stream it instead")
    if aad_bytes > SEAL_MAX_AAD_BYTES:
        raise BadEnvelope(f"aad over {SEAL_MAX_AAD_BYTES} bytes")
    if recipients > MAX_RECIPIENTS:
        raise BadEnvelope(f"an envelope has at most {MAX_RECIPIENTS} recipients")


def _derive(data_key: bytes, prefix: bytes) -> tuple[bytes, bytes]:
    salt = prefix[-SALT_BYTES:]
    okm = HKDF(hashes.SHA256(), 2 * DATA_KEY_BYTES, salt, _KEYS_INFO).derive(data_key)
    return okm[:DATA_KEY_BYTES], okm[DATA_KEY_BYTES:]


def _kem_id(reader: RecipientKey | AgreementKey) -> int:
    return KEM_MLKEM768_X25519 if reader.is_hybrid else KEM_X25519_HKDF_SHA256


def _wrap(data_key: bytes, prefix: bytes, reader: RecipientKey) -> _Stanza:
    kem_id = _kem_id(reader)
    suite, _ = _SUITES[kem_id]
    wrapped = suite.encrypt(data_key, reader._hpke, info=_WRAP_INFO + prefix)
    return _Stanza(kem_id, KDF_HKDF_SHA256, AEAD_CHACHA20_POLY1305, reader._id, wrapped)


def _unwrap(parsed: _Envelope, key: AgreementKey) -> tuple[bytes, bytes, bytes]:
    """Data key, payload key and MAC key, from this key's entry, after checking the MAC."""
    if not isinstance(key, AgreementKey):
        raise TypeError(f"opening needs an AgreementKey, not {type(key).__name__}")
    my_id, kem_id = key.recipient_key._id, _kem_id(key)
    mine = [s for s in parsed.stanzas if s.key_id == my_id and s.kem_id == kem_id]
    if not mine:
        raise WrongKey(f"envelope is not sealed to key {key.key_id}")
    suite, _ = _SUITES[kem_id]
    for stanza in mine:
        try:
            data_key = suite.decrypt(stanza.wrapped, key._hpke, info=_WRAP_INFO + parsed.prefix)
        except (InvalidTag, ValueError):
            continue
        payload_key, mac_key = _derive(data_key, parsed.prefix)
        expected = hmac.digest(mac_key, _header(parsed.prefix, parsed.stanzas), hashlib.sha256)
        if hmac.compare_digest(expected, parsed.mac):
            return data_key, payload_key, mac_key
    raise BadEnvelope(f"envelope header fails authentication for key {key.key_id}")


def _header(prefix: bytes, stanzas: tuple[_Stanza, ...]) -> bytes:
    return b"".join((prefix, _COUNT.pack(len(stanzas)), *(s.encode() for s in stanzas)))


def _assemble(prefix: bytes, stanzas: tuple[_Stanza, ...], mac_key: bytes, payload: bytes) -> bytes:
    header = _header(prefix, stanzas)
    return header + hmac.digest(mac_key, header, hashlib.sha256) + payload


def _parse(envelope: bytes) -> _Envelope:
    """Split an envelope into its parts, refusing anything not exactly v1-shaped."""
    if not isinstance(envelope, bytes | bytearray | memoryview):
        raise BadEnvelope("an envelope is bytes")
    data = bytes(envelope)
    if len(data) > ENVELOPE_MAX_BYTES:
        raise BadEnvelope(f"envelope over {ENVELOPE_MAX_BYTES} bytes")
    if len(data) < _PREFIX.size + _COUNT.size:
        raise BadEnvelope(f"envelope is truncated: {len(data)} bytes is shorter than its header")
    magic, version, payload_aead, _salt = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise BadEnvelope("not a qlock sealed envelope (bad magic)")
    if version != ENVELOPE_VERSION:
        raise BadEnvelope(f"unsupported envelope version {version}")
    if payload_aead != AEAD_CHACHA20_POLY1305:
        raise BadEnvelope(f"unsupported payload AEAD id {payload_aead:#06x}")
    (count,) = _COUNT.unpack_from(data, _PREFIX.size)
    if not 1 <= count <= MAX_RECIPIENTS:
        raise BadEnvelope(f"recipient count {count} is outside 1..{MAX_RECIPIENTS}")
    stanzas = tuple(_stanzas(data, _PREFIX.size + _COUNT.size, count))
    offset = _PREFIX.size + _COUNT.size + sum(_STANZA_HEAD.size + len(s.wrapped) for s in stanzas)
    if len(data) < offset + MAC_BYTES + TAG_BYTES:
        raise BadEnvelope("envelope is truncated: header MAC or payload missing")
    return _Envelope(
        prefix=data[: _PREFIX.size],
        stanzas=stanzas,
        mac=data[offset : offset + MAC_BYTES],
        payload=data[offset + MAC_BYTES :],
    )


def _stanzas(data: bytes, offset: int, count: int) -> Iterator[_Stanza]:
    for index in range(count):
        if len(data) < offset + _STANZA_HEAD.size:
            raise BadEnvelope(f"envelope is truncated inside recipient entry {index}")
        kem_id, kdf_id, aead_id, key_id, length = _STANZA_HEAD.unpack_from(data, offset)
        offset += _STANZA_HEAD.size
        known = _SUITES.get(kem_id)
        if known is not None and (
            length != known[1] or kdf_id != KDF_HKDF_SHA256 or aead_id != AEAD_CHACHA20_POLY1305
        ):
            raise BadEnvelope(f"recipient entry {index} does not match its KEM {kem_id:#06x}")
        if length > WRAPPED_MAX_BYTES or len(data) < offset + length:
            raise BadEnvelope(f"envelope is truncated inside recipient entry {index}")
        # Entries for KEMs this version does not know are kept (and re-MACed by rewrap)
        # so a newer writer's readers survive an older node's rewrap.
        yield _Stanza(kem_id, kdf_id, aead_id, key_id, data[offset : offset + length])
        offset += length
