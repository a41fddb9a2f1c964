"""Conditional release: hash-locks (open with a preimage) and time-locks (open after T).

Hash-locks are the HTLC condition of Lightning, Bitcoin atomic swaps and Interledger:
`digest = SHA-256(preimage)` with a 32-byte preimage. Whoever reveals the preimage to
claim on one ledger reveals it to the other, which is what makes a cross-ledger swap
atomic. The preimage is exactly 32 bytes, as those protocols require, so one preimage is
valid everywhere a swap may run (a script that checks its size would refuse another).

Time-locks here are a *policy enforced by a node*, not a cryptographic time-lock puzzle:
the secret is sealed (`seal.seal`) to the node's key and to its owner, with `not_before`
in a header the envelope authenticates. The guarantee is "the node holding the key
refuses to release before T" — the node itself could read it earlier, and so can the
owner (`time_lock_reclaim`), whose secret it is. Anyone else gets it only from the node,
after T. Layout (v1; `docs/formats.md` has the table):

    "QLTL" | 0x01 | not_before (8, Unix seconds, UTC) | sealed envelope (aad = the 13 bytes before)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from anarq.qlock.conditions_errors import BadHashLock, BadTimeLock, TimeLocked
from anarq.qlock.errors import BadEnvelope
from anarq.qlock.keys import AgreementKey, RecipientKey
from anarq.qlock.seal import (
    ENVELOPE_MAX_BYTES,
    SEAL_MAX_PLAINTEXT_BYTES,
    open_sealed,
    recipients_of,
    seal,
)

PREIMAGE_BYTES: Final = 32
HASH_LOCK_BYTES: Final = 32  # SHA-256

TIME_LOCK_MAGIC: Final = b"QLTL"
TIME_LOCK_VERSION: Final = 0x01
# Time-locks hold keys and short secrets; large data is streamed and its data key locked.
TIME_LOCK_MAX_SECRET_BYTES: Final = 64 * 1024
_PREFIX = struct.Struct(">4sBQ")  # magic, version, not_before (Unix seconds)
TIME_LOCK_MAX_BYTES: Final = (
    _PREFIX.size + ENVELOPE_MAX_BYTES - SEAL_MAX_PLAINTEXT_BYTES + TIME_LOCK_MAX_SECRET_BYTES
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND: Final = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class TimeLock:
    """What a time-lock says about itself, read without a key (authenticated only by opening)."""

    not_before: datetime
    key_ids: tuple[str, ...]


# --- hash-locks -----------------------------------------------------------------------------


def new_preimage() -> bytes:
    """A fresh random 32-byte preimage; keep it secret until the claim."""
    return os.urandom(PREIMAGE_BYTES)


def hash_lock(preimage: bytes) -> bytes:
    """The 32-byte SHA-256 digest that `preimage` (exactly 32 bytes) will open."""
    if not isinstance(preimage, bytes) or len(preimage) != PREIMAGE_BYTES:
        raise BadHashLock(f"a preimage is {PREIMAGE_BYTES} bytes")
    return hashlib.sha256(preimage).digest()


def check_preimage(digest: bytes, preimage: bytes) -> bool:
    """True if `preimage` opens `digest`; compared in constant time.

    A preimage of another length is simply wrong (False); a digest that is not 32 bytes
    is a malformed lock (`BadHashLock`).
    """
    if not isinstance(digest, bytes) or len(digest) != HASH_LOCK_BYTES:
        raise BadHashLock(f"a hash-lock is a {HASH_LOCK_BYTES}-byte SHA-256 digest")
    if not isinstance(preimage, bytes) or len(preimage) != PREIMAGE_BYTES:
        return False
    return hmac.compare_digest(hashlib.sha256(preimage).digest(), digest)


# --- time-locks -----------------------------------------------------------------------------


def time_lock(
    secret: bytes, *, not_before: datetime, node_key: RecipientKey, owner: RecipientKey
) -> bytes:
    """`secret` sealed so the node releases it from `not_before` on (and the owner any time).

    `not_before` must be timezone-aware; it is stored in whole seconds, rounded up, so
    the lock never opens early.
    """
    if len(secret) > TIME_LOCK_MAX_SECRET_BYTES:
        raise BadTimeLock(f"a time-locked secret is at most {TIME_LOCK_MAX_SECRET_BYTES} bytes")
    prefix = _PREFIX.pack(TIME_LOCK_MAGIC, TIME_LOCK_VERSION, _unix_seconds(not_before))
    try:
        envelope = seal(secret, [node_key, owner], aad=prefix)
    except BadEnvelope as exc:
        raise BadTimeLock(exc.detail) from None
    return prefix + envelope


def time_unlock(locked: bytes, node_private: AgreementKey, now: datetime) -> bytes:
    """The secret, if `now` is at or after the lock's time; `TimeLocked` before.

    The time is checked before any decryption. Raises `WrongKey` if the lock is not
    sealed to `node_private`, `BadTimeLock` if it was altered (its time included).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    prefix, not_before, envelope = _parse(locked)
    if now < not_before:
        raise TimeLocked(not_before)
    return _open(envelope, node_private, prefix)


def time_lock_reclaim(locked: bytes, owner_private: AgreementKey) -> bytes:
    """The secret, for its owner, at any time (to cancel the lock, or re-lock for another T)."""
    prefix, _, envelope = _parse(locked)
    return _open(envelope, owner_private, prefix)


def read_time_lock(locked: bytes) -> TimeLock:
    """When a lock opens and to which key ids it is sealed; a hint until someone opens it."""
    _, not_before, envelope = _parse(locked)
    try:
        key_ids = tuple(recipients_of(envelope))
    except BadEnvelope as exc:
        raise BadTimeLock(exc.detail) from None
    return TimeLock(not_before=not_before, key_ids=key_ids)


# --- internals ------------------------------------------------------------------------------


def _unix_seconds(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadTimeLock("not_before must be timezone-aware")
    since_epoch = moment - _EPOCH
    if since_epoch < timedelta(0):
        raise BadTimeLock("not_before is before 1970")
    whole, part = divmod(since_epoch, _SECOND)
    return int(whole) + (1 if part else 0)


def _parse(locked: bytes) -> tuple[bytes, datetime, bytes]:
    if not isinstance(locked, bytes):
        raise BadTimeLock("a time-lock is bytes")
    if len(locked) > TIME_LOCK_MAX_BYTES:
        raise BadTimeLock(f"time-lock over {TIME_LOCK_MAX_BYTES} bytes")
    if len(locked) < _PREFIX.size:
        raise BadTimeLock("time-lock is truncated")
    magic, version, seconds = _PREFIX.unpack_from(locked)
    if magic != TIME_LOCK_MAGIC:
        raise BadTimeLock("not a qlock time-lock (bad magic)")
    if version != TIME_LOCK_VERSION:
        raise BadTimeLock(f"unsupported time-lock version {version}")
    try:
        not_before = _EPOCH + seconds * _SECOND
    except OverflowError:
        raise BadTimeLock("time-lock opens after year 9999") from None
    return locked[: _PREFIX.size], not_before, locked[_PREFIX.size :]


def _open(envelope: bytes, key: AgreementKey, prefix: bytes) -> bytes:
    try:
        return open_sealed(envelope, key, aad=prefix)
    except BadEnvelope:
        raise BadTimeLock("time-lock fails authentication: altered (its time included)") from None
