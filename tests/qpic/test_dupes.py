"""Multi-index hashing finds exactly the pairs a brute-force comparison finds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq.qpic import dupes


def brute_force(hashes: list[int], distance: int) -> set[tuple[int, int, int]]:
    return {
        (i, j, (hashes[i] ^ hashes[j]).bit_count())
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if (hashes[i] ^ hashes[j]).bit_count() <= distance
    }


def flip(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return value


@pytest.mark.parametrize("distance", [0, 1, 4, 8, 12])
def test_same_pairs_as_brute_force_on_a_few_thousand_hashes(distance: int) -> None:
    rng = random.Random(distance)
    hashes = [rng.getrandbits(64) for _ in range(1500)]
    # Plant near copies at every distance up to a little past the limit.
    for _ in range(300):
        hashes.append(flip(rng.choice(hashes), rng.randrange(0, distance + 3), rng))
    assert set(dupes.near_pairs(hashes, distance)) == brute_force(hashes, distance)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=0, max_size=40),
    st.integers(min_value=0, max_value=20),
)
def test_any_hashes_any_distance(hashes: list[int], distance: int) -> None:
    assert set(dupes.near_pairs(hashes, distance)) == brute_force(hashes, distance)


def test_groups_join_chains_and_report_the_widest_link() -> None:
    a = 0
    b = a ^ 0b111  # 3 from a
    c = b ^ (0b1111 << 20)  # 4 from b, 7 from a
    far = 2**64 - 1
    found = dupes.groups({"a": a, "b": b, "c": c, "far": far}, 4)
    assert found == [(["a", "b", "c"], 4)]


def test_block_choice_covers_all_bits_and_grows_with_the_collection() -> None:
    for blocks in range(1, 65):
        assert sum(dupes.block_widths(blocks)) == 64
    assert dupes.choose_blocks(5_000, 0) == 1  # exact matches: one table of whole hashes
    assert 2 <= dupes.choose_blocks(5_000, 8) <= 9


def test_signed_storage_round_trips() -> None:
    for value in (0, 1, 2**63 - 1, 2**63, 2**64 - 1):
        stored = dupes.to_signed(value)
        assert -(2**63) <= stored < 2**63
        assert dupes.to_unsigned(stored) == value
