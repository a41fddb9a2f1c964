"""Conditional release as a specification: a hash-lock opens with its preimage only, and
a time-lock is released by the node from its time on, never before, never altered."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq.qlock import AgreementKey, BadEnvelope, WrongKey
from anarq.qlock.conditions import (
    PREIMAGE_BYTES,
    TIME_LOCK_MAX_SECRET_BYTES,
    TimeLock,
    check_preimage,
    hash_lock,
    new_preimage,
    read_time_lock,
    time_lock,
    time_lock_reclaim,
    time_unlock,
)
from anarq.qlock.conditions_errors import BadHashLock, BadTimeLock, TimeLocked

QUICK = settings(max_examples=40, deadline=None)
NODE = AgreementKey.generate(hybrid=True)
OWNER = AgreementKey.generate(hybrid=False)
OUTSIDER = AgreementKey.generate(hybrid=False)
OPENS = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)

preimages = st.binary(min_size=PREIMAGE_BYTES, max_size=PREIMAGE_BYTES)


def _lock(secret: bytes = b"the key to the vault", not_before: datetime = OPENS) -> bytes:
    return time_lock(
        secret, not_before=not_before, node_key=NODE.recipient_key, owner=OWNER.recipient_key
    )


# --- hash-locks -----------------------------------------------------------------------------


@QUICK
@given(preimage=preimages, other=preimages)
def test_a_hash_lock_opens_with_its_preimage_only(preimage: bytes, other: bytes) -> None:
    digest = hash_lock(preimage)

    assert check_preimage(digest, preimage)
    assert check_preimage(digest, other) == (other == preimage)


def test_hash_lock_is_sha256_of_the_preimage() -> None:
    digest = hash_lock(bytes(32))

    assert digest.hex() == "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"


def test_new_preimages_are_fresh_32_byte_values() -> None:
    first, second = new_preimage(), new_preimage()

    assert len(first) == len(second) == PREIMAGE_BYTES
    assert first != second


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_a_preimage_of_another_length_is_wrong_not_an_error(length: int) -> None:
    digest = hash_lock(new_preimage())

    assert not check_preimage(digest, os.urandom(length))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_locking_with_a_preimage_of_another_length_is_refused(length: int) -> None:
    with pytest.raises(BadHashLock):
        hash_lock(os.urandom(length))


@pytest.mark.parametrize("digest", [b"", bytes(31), bytes(33)])
def test_a_digest_that_is_not_sha256_sized_is_refused(digest: bytes) -> None:
    with pytest.raises(BadHashLock):
        check_preimage(digest, new_preimage())


# --- time-locks -----------------------------------------------------------------------------


def test_a_time_lock_is_refused_before_its_time_with_the_time_it_opens() -> None:
    locked = _lock()

    with pytest.raises(TimeLocked) as refused:
        time_unlock(locked, NODE, OPENS - timedelta(seconds=1))

    assert refused.value.not_before == OPENS
    assert refused.value.problem()["opens_at"] == "2031-06-01T12:00:00Z"
    assert refused.value.status == 403


@pytest.mark.parametrize("after", [timedelta(0), timedelta(seconds=1), timedelta(days=3650)])
def test_a_time_lock_opens_at_and_after_its_time(after: timedelta) -> None:
    locked = _lock(b"secret")

    assert time_unlock(locked, NODE, OPENS + after) == b"secret"


def test_the_time_is_compared_across_timezones() -> None:
    locked = _lock(b"secret")
    paris = timezone(timedelta(hours=2))

    with pytest.raises(TimeLocked):
        time_unlock(locked, NODE, datetime(2031, 6, 1, 13, 59, 59, tzinfo=paris))
    assert time_unlock(locked, NODE, datetime(2031, 6, 1, 14, 0, tzinfo=paris)) == b"secret"


def test_a_time_with_a_fraction_of_a_second_rounds_up_so_it_never_opens_early() -> None:
    locked = _lock(b"secret", OPENS + timedelta(microseconds=1))

    with pytest.raises(TimeLocked):
        time_unlock(locked, NODE, OPENS + timedelta(microseconds=1))
    assert read_time_lock(locked).not_before == OPENS + timedelta(seconds=1)


def test_the_owner_can_reclaim_at_any_time() -> None:
    assert time_lock_reclaim(_lock(b"mine"), OWNER) == b"mine"


def test_nobody_else_can_open_even_after_the_time() -> None:
    locked = _lock()

    with pytest.raises(WrongKey):
        time_unlock(locked, OUTSIDER, OPENS + timedelta(days=1))
    with pytest.raises(WrongKey):
        time_lock_reclaim(locked, OUTSIDER)


def test_a_time_lock_says_when_it_opens_and_to_whom_without_a_key() -> None:
    assert read_time_lock(_lock()) == TimeLock(
        not_before=OPENS, key_ids=(NODE.key_id, OWNER.key_id)
    )


def test_moving_the_time_earlier_is_detected() -> None:
    locked = bytearray(_lock())
    earlier = int(OPENS.timestamp()) - 86_400
    locked[5:13] = earlier.to_bytes(8, "big")

    with pytest.raises(BadTimeLock):
        time_unlock(bytes(locked), NODE, OPENS - timedelta(hours=1))


LOCKED = _lock()


@settings(max_examples=300, deadline=None)
@given(bit=st.integers(0, 8 * len(LOCKED) - 1))
def test_no_bit_flip_releases_the_secret(bit: int) -> None:
    flipped = bytearray(LOCKED)
    flipped[bit // 8] ^= 1 << (bit % 8)

    # A later time is refused by the clock before anything is opened; anything else by HPKE,
    # the header MAC or the AEAD (which authenticates the time).
    with pytest.raises((BadEnvelope, WrongKey, TimeLocked)):
        time_unlock(bytes(flipped), NODE, OPENS + timedelta(days=1))


@pytest.mark.parametrize("length", [0, 4, 12, 13, 40])
def test_a_truncated_time_lock_is_refused(length: int) -> None:
    with pytest.raises(BadTimeLock):
        time_unlock(LOCKED[:length], NODE, OPENS)


def test_a_naive_opening_time_is_refused() -> None:
    with pytest.raises(BadTimeLock):
        _lock(not_before=datetime(2031, 6, 1, 12, 0))


def test_a_naive_clock_is_a_bug() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        time_unlock(LOCKED, NODE, datetime(2031, 6, 2))


def test_a_secret_over_the_limit_is_refused() -> None:
    with pytest.raises(BadTimeLock):
        _lock(bytes(TIME_LOCK_MAX_SECRET_BYTES + 1))


def test_another_format_is_not_a_time_lock() -> None:
    with pytest.raises(BadTimeLock):
        time_unlock(b"QLSE" + bytes(200), NODE, OPENS)
