"""Guardian shares as a specification: any k of n give the secret back; fewer, or shares
that are mistyped or from another split, are refused with a typed error."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shamir_mnemonic import Share  # type: ignore[import-untyped]

from anarq.qlock import AgreementKey, WeakPassphrase
from anarq.qlock.conditions_errors import (
    BadSplit,
    InconsistentShares,
    MalformedShare,
    TooFewShares,
)
from anarq.qlock.shamir import (
    SHAMIR_MAX_ITERATION_EXPONENT,
    SHAMIR_MAX_SECRET_BYTES,
    SHAMIR_MAX_SHARES,
    SHAMIR_MIN_SECRET_BYTES,
    combine,
    split,
)

QUICK = settings(max_examples=25, deadline=None)

secrets_ = st.integers(SHAMIR_MIN_SECRET_BYTES // 2, SHAMIR_MAX_SECRET_BYTES // 2).map(
    lambda half: os.urandom(2 * half)
)


@st.composite
def splits(draw: st.DrawFn) -> tuple[int, int]:
    shares = draw(st.integers(2, SHAMIR_MAX_SHARES))
    return draw(st.integers(2, shares)), shares


@QUICK
@given(secret=secrets_, k_of_n=splits(), data=st.data())
def test_any_threshold_of_the_shares_recovers_the_secret(
    secret: bytes, k_of_n: tuple[int, int], data: st.DataObject
) -> None:
    threshold, count = k_of_n
    shares = split(secret, threshold, count)

    chosen = data.draw(st.permutations(shares))[:threshold]

    assert len(shares) == count
    assert combine(chosen) == secret


@QUICK
@given(secret=secrets_, k_of_n=splits(), data=st.data())
def test_one_share_fewer_than_the_threshold_is_refused(
    secret: bytes, k_of_n: tuple[int, int], data: st.DataObject
) -> None:
    threshold, count = k_of_n
    shares = split(secret, threshold, count)

    chosen = data.draw(st.permutations(shares))[: threshold - 1]

    with pytest.raises(TooFewShares):
        combine(chosen)


def test_more_shares_than_the_threshold_recover_too() -> None:
    secret = os.urandom(32)

    assert combine(split(secret, 3, 7)) == secret


def test_a_repeated_share_counts_once() -> None:
    shares = split(os.urandom(32), 3, 5)

    with pytest.raises(TooFewShares):
        combine([shares[0], shares[0], shares[1]])


def test_no_shares_are_too_few() -> None:
    with pytest.raises(TooFewShares):
        combine([])


def test_a_one_of_one_split_is_the_secret_in_words() -> None:
    key = AgreementKey.generate()
    seed = key.to_bytes()[1:]  # the 32-byte X-Wing seed behind its algorithm byte

    (share,) = split(seed, 1, 1)

    assert AgreementKey.from_xwing_seed(combine([share])).key_id == key.key_id


def test_the_right_passphrase_recovers_and_a_wrong_one_gives_another_secret() -> None:
    secret = os.urandom(32)
    shares = split(secret, 2, 3, passphrase="correct horse")

    assert combine(shares[:2], passphrase="correct horse") == secret
    # SLIP-39 by design: no error, a different secret (callers check the key id).
    assert combine(shares[:2], passphrase="battery staple") != secret


def test_shares_of_different_splits_are_inconsistent() -> None:
    secret = os.urandom(32)
    first, second = split(secret, 2, 3), split(secret, 2, 3)

    with pytest.raises(InconsistentShares):
        combine([first[0], second[1]])


def test_two_different_shares_at_one_index_are_inconsistent() -> None:
    shares = split(os.urandom(32), 2, 3)
    original = Share.from_mnemonic(shares[0])
    forged = dataclasses.replace(original, value=os.urandom(len(original.value))).mnemonic()

    with pytest.raises(InconsistentShares):
        combine([shares[0], forged, shares[1]])


@pytest.mark.parametrize("position", [0, 5, 10, -1])
def test_a_mistyped_word_is_a_malformed_share(position: int) -> None:
    shares = split(os.urandom(32), 2, 3)
    words = shares[1].split()
    words[position] = "academic" if words[position] != "academic" else "acid"

    with pytest.raises(MalformedShare) as refused:
        combine([shares[0], " ".join(words)])

    assert "share 1" in refused.value.detail
    assert " ".join(words[:3]) not in refused.value.detail  # the share is never echoed


@pytest.mark.parametrize(
    "garbage",
    ["", "not a share at all", "academic " * 10, "x" * 5000, 42],
    ids=["empty", "prose", "too short", "too long", "not text"],
)
def test_garbage_is_a_malformed_share(garbage: object) -> None:
    with pytest.raises(MalformedShare):
        combine([garbage])  # type: ignore[list-item]


def test_spacing_and_case_of_the_words_do_not_matter() -> None:
    secret = os.urandom(16)
    shares = split(secret, 2, 2)

    assert combine(["  " + shares[0].upper().replace(" ", "\n  "), shares[1]]) == secret


def test_a_share_asking_for_too_much_key_stretching_is_refused_before_any() -> None:
    original = Share.from_mnemonic(split(os.urandom(32), 2, 2)[0])
    hostile = dataclasses.replace(
        original, iteration_exponent=SHAMIR_MAX_ITERATION_EXPONENT + 1
    ).mnemonic()

    with pytest.raises(MalformedShare):
        combine([hostile, hostile])


@pytest.mark.parametrize(
    ("secret_bytes", "threshold", "count"),
    [
        (SHAMIR_MIN_SECRET_BYTES - 2, 2, 3),
        (33, 2, 3),
        (SHAMIR_MAX_SECRET_BYTES + 2, 2, 3),
        (32, 2, SHAMIR_MAX_SHARES + 1),
        (32, 0, 3),
        (32, 4, 3),
        (32, 1, 3),
        (32, 1, 0),
    ],
    ids=[
        "short secret",
        "odd secret",
        "long secret",
        "too many shares",
        "zero threshold",
        "threshold over count",
        "threshold 1 of many",
        "no shares",
    ],
)
def test_splits_outside_slip39_limits_are_refused(
    secret_bytes: int, threshold: int, count: int
) -> None:
    with pytest.raises(BadSplit):
        split(os.urandom(secret_bytes), threshold, count)


def test_the_largest_split_is_accepted() -> None:
    secret = os.urandom(SHAMIR_MAX_SECRET_BYTES)

    shares = split(secret, SHAMIR_MAX_SHARES, SHAMIR_MAX_SHARES)

    assert combine(shares) == secret


@pytest.mark.parametrize("passphrase", ["pässword", "tab\there", "x" * 257])
def test_passphrases_outside_printable_ascii_are_refused(passphrase: str) -> None:
    with pytest.raises(WeakPassphrase):
        split(os.urandom(32), 2, 2, passphrase=passphrase)
