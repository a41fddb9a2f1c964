"""Near-duplicate search over 64-bit perceptual hashes by multi-index hashing.

Comparing every pair of n photos costs n²/2 Hamming distances: 12.5 million for 5,000
photos. Multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space
with Multi-Index Hashing", CVPR 2012) avoids that with the pigeonhole principle: cut the
64 bits into m disjoint blocks; if two hashes differ in at most d bits, then at least one
block differs in at most ⌊d/m⌋ bits (were every block ≥ ⌊d/m⌋ + 1 apart, the total would
be ≥ m(⌊d/m⌋ + 1) > d). So each block value goes into its own table, and a hash finds its
candidates by looking up, in each table, every value within ⌊d/m⌋ bits of its own block.
Every candidate is then verified with the full distance, so the result is exact — the
same pairs as the brute-force search — and only the work changes.

The number of blocks is chosen per search to minimise the expected work: m tables x
(probes per block + candidates per probe), with n / 2^b candidates per probe for b-bit
blocks if block values were uniform (perceptual hashes are not quite, which costs
some extra verifications, never a missed pair).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from math import comb

HASH_BITS = 64
MAX_DISTANCE = 32
_MASK64 = (1 << HASH_BITS) - 1


def block_widths(blocks: int) -> list[int]:
    """The widths of `blocks` disjoint blocks covering the 64 bits, as even as they go."""
    assert 1 <= blocks <= HASH_BITS
    wide, rest = divmod(HASH_BITS, blocks)
    return [wide + 1] * rest + [wide] * (blocks - rest)


def _probes(width: int, radius: int) -> int:
    return sum(comb(width, i) for i in range(min(radius, width) + 1))


def choose_blocks(count: int, distance: int) -> int:
    """How many blocks make the search cheapest for `count` hashes and this `distance`."""
    best, best_cost = 1, float("inf")
    for blocks in range(1, HASH_BITS + 1):
        radius = distance // blocks
        widths = block_widths(blocks)
        cost = sum(_probes(w, radius) * (1 + count / 2**w) for w in widths)
        if cost < best_cost:
            best, best_cost = blocks, cost
    return best


def _flip_masks(width: int, radius: int) -> list[int]:
    """Every `width`-bit value with at most `radius` bits set: the XORs a probe tries."""
    masks = []
    for flipped in range(min(radius, width) + 1):
        for bits in combinations(range(width), flipped):
            mask = 0
            for bit in bits:
                mask |= 1 << bit
            masks.append(mask)
    return masks


def near_pairs(hashes: Sequence[int], distance: int) -> list[tuple[int, int, int]]:
    """Every pair (i, j, d) with i < j whose hashes are at most `distance` bits apart."""
    assert 0 <= distance <= MAX_DISTANCE
    values = [h & _MASK64 for h in hashes]
    if len(values) < 2:
        return []
    blocks = choose_blocks(len(values), distance)
    radius = distance // blocks
    widths = block_widths(blocks)
    shifts = [sum(widths[:k]) for k in range(blocks)]
    tables: list[dict[int, list[int]]] = [{} for _ in range(blocks)]
    for index, value in enumerate(values):
        for table, shift, width in zip(tables, shifts, widths, strict=True):
            table.setdefault((value >> shift) & ((1 << width) - 1), []).append(index)
    masks = {width: _flip_masks(width, radius) for width in set(widths)}
    pairs: list[tuple[int, int, int]] = []
    for index, value in enumerate(values):
        seen: set[int] = set()
        for table, shift, width in zip(tables, shifts, widths, strict=True):
            key = (value >> shift) & ((1 << width) - 1)
            for mask in masks[width]:
                for other in table.get(key ^ mask, ()):
                    if other <= index or other in seen:
                        continue
                    seen.add(other)
                    apart = (value ^ values[other]).bit_count()
                    if apart <= distance:
                        pairs.append((index, other, apart))
    return pairs


def groups(hashes: Mapping[str, int], distance: int) -> list[tuple[list[str], int]]:
    """Photos linked by near pairs (connected components), with each group's largest
    pairwise distance among its linking pairs; biggest groups first."""
    ids = sorted(hashes)
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    widest: dict[int, int] = {}
    pairs = near_pairs([hashes[i] for i in ids], distance)
    for a, b, _ in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra
    for a, _, apart in pairs:
        r = root(a)
        widest[r] = max(widest.get(r, 0), apart)
    members: dict[int, list[str]] = {}
    for index, photo in enumerate(ids):
        r = root(index)
        if r in widest:
            members.setdefault(r, []).append(photo)
    found = [(sorted(photos), widest[r]) for r, photos in members.items()]
    found.sort(key=lambda group: (-len(group[0]), group[0][0]))
    return found


def to_signed(value: int) -> int:
    """A 64-bit hash as the signed integer a BIGINT column holds."""
    value &= _MASK64
    return value - (1 << HASH_BITS) if value >> (HASH_BITS - 1) else value


def to_unsigned(value: int) -> int:
    return value & _MASK64
