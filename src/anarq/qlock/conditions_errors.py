"""Errors of Qlock's streams, secret shares and conditional release (hash- and time-locks).

Same rules as `qlock/errors.py`: a stable code each, 4xx, messages that say what is wrong
without echoing secrets, shares or which secret byte failed.
"""

from __future__ import annotations

from datetime import datetime

from anarq.kernel.errors import BadRequest, Forbidden
from anarq.qlock.errors import BadEnvelope


class BadStream(BadEnvelope):
    code = "qlock.bad_stream"
    title = "Encrypted stream is malformed, truncated or was tampered with"


class StreamTruncated(BadStream):
    """The stream provably stops early: what was yielded so far is not the whole plaintext."""

    code = "qlock.stream_truncated"
    title = "Encrypted stream ends before its final chunk"


class BadSplit(BadRequest):
    code = "qlock.bad_split"
    title = "Secret cannot be split that way"


class BadShares(BadRequest):
    code = "qlock.bad_shares"
    title = "Secret shares cannot be combined"


class MalformedShare(BadShares):
    code = "qlock.malformed_share"
    title = "Not a valid SLIP-39 share"


class InconsistentShares(BadShares):
    code = "qlock.inconsistent_shares"
    title = "Shares do not belong to the same split"


class TooFewShares(BadShares):
    code = "qlock.too_few_shares"
    title = "Not enough shares to recover the secret"


class BadHashLock(BadRequest):
    code = "qlock.bad_hash_lock"
    title = "Not a valid hash-lock or preimage"


class BadTimeLock(BadEnvelope):
    code = "qlock.bad_time_lock"
    title = "Time-lock is malformed or was tampered with"


class TimeLocked(Forbidden):
    """The node refuses: the lock opens at `not_before` (also in the problem as `opens_at`)."""

    code = "qlock.time_locked"
    title = "Time-locked: not released yet"

    def __init__(self, not_before: datetime) -> None:
        opens_at = not_before.isoformat().replace("+00:00", "Z")
        super().__init__(f"time-locked until {opens_at}", opens_at=opens_at)
        self.not_before = not_before
