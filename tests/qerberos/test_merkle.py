"""The stored Merkle tree against RFC 9162's own recursive definitions, and proof tampering."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq.qerberos.merkle import (
    EMPTY_ROOT,
    HASH_BYTES,
    MAX_PROOF_HASHES,
    MemoryNodeStore,
    NodeStore,
    append,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_of_leaves,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 300
EXHAUSTIVE_LEAVES = 33
PAIRS_PER_TREE = 6
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)


# --- RFC 9162 §2.1.3.1 and §2.1.4.1, transcribed over plain lists -----------------------


def _split(count: int) -> int:
    power = 1
    while power * 2 < count:
        power *= 2
    return power


def rfc_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*rfc_path(index, leaves[:k]), root_of_leaves(leaves[k:])]
    return [*rfc_path(index - k, leaves[k:]), root_of_leaves(leaves[:k])]


def rfc_subproof(old_size: int, leaves: Sequence[bytes], whole_old_tree: bool) -> list[bytes]:
    if old_size == len(leaves):
        return [] if whole_old_tree else [root_of_leaves(leaves)]
    k = _split(len(leaves))
    if old_size <= k:
        return [*rfc_subproof(old_size, leaves[:k], whole_old_tree), root_of_leaves(leaves[k:])]
    return [*rfc_subproof(old_size - k, leaves[k:], False), root_of_leaves(leaves[:k])]


# --- Arrangement ---------------------------------------------------------------------------


def entries(count: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + index.to_bytes(4, "big")) for index in range(count)]


def stored(leaves: Sequence[bytes]) -> MemoryNodeStore:
    store = MemoryNodeStore()
    append(store, leaves)
    return store


def flip_bit(digest: bytes, bit: int) -> bytes:
    changed = bytearray(digest)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


def all_subtrees(store: NodeStore) -> dict[tuple[int, int], bytes]:
    size = store.size()
    nodes: dict[tuple[int, int], bytes] = {}
    level = 0
    while size >> level:
        for index in range(size >> level):
            nodes[level, index] = store.get(level, index)
        with pytest.raises(LookupError):
            store.get(level, size >> level)
        level += 1
    return nodes


@st.composite
def logs(draw: st.DrawFn) -> list[bytes]:
    size = draw(st.integers(min_value=1, max_value=MAX_LEAVES))
    return entries(size, draw(st.binary(max_size=8)))


# --- Hashing -------------------------------------------------------------------------------


def test_hashes_match_rfc_6962_reference_values() -> None:
    assert EMPTY_ROOT.hex() == hashlib.sha256(b"").hexdigest()
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert node_hash(leaf_hash(b""), leaf_hash(b"\x00")).hex() == (
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
    )


def test_empty_log_has_the_empty_root() -> None:
    store = MemoryNodeStore()
    assert store.size() == 0
    assert root(store) == EMPTY_ROOT
    assert root_of_leaves([]) == EMPTY_ROOT


# --- Tree heads and appends ----------------------------------------------------------------


@PROPERTY_SETTINGS
@given(leaves=logs(), data=st.data())
def test_stored_root_equals_rfc_recursion_at_every_size(
    leaves: list[bytes], data: st.DataObject
) -> None:
    store = stored(leaves)
    assert store.size() == len(leaves)
    assert root(store) == root_of_leaves(leaves)
    for _ in range(PAIRS_PER_TREE):
        size = data.draw(st.integers(min_value=0, max_value=len(leaves)))
        assert root(store, size) == root_of_leaves(leaves[:size])


@PROPERTY_SETTINGS
@given(leaves=logs(), cuts=st.lists(st.integers(min_value=0, max_value=MAX_LEAVES), max_size=8))
def test_appending_in_batches_stores_the_same_tree_as_one_batch(
    leaves: list[bytes], cuts: list[int]
) -> None:
    batched = MemoryNodeStore()
    bounds = sorted({0, len(leaves), *(cut for cut in cuts if cut < len(leaves))})
    for start, end in itertools.pairwise(bounds):
        assert append(batched, leaves[start:end]) == end
    assert append(batched, []) == len(leaves)
    assert all_subtrees(batched) == all_subtrees(stored(leaves))


def test_bad_leaf_refuses_the_whole_batch() -> None:
    store = stored(entries(5))
    with pytest.raises(ValueError, match="leaf 1 of the batch"):
        append(store, [leaf_hash(b"fine"), b"\x00" * (HASH_BYTES - 1)])
    assert store.size() == 5
    assert root(store) == root_of_leaves(entries(5))


def test_memory_store_refuses_rewrites_and_gaps() -> None:
    store = stored(entries(4))
    with pytest.raises(ValueError):
        store.put(0, 2, leaf_hash(b"rewrite"))
    with pytest.raises(ValueError):
        store.put(0, 5, leaf_hash(b"gap"))
    with pytest.raises(ValueError):
        store.put(4, 0, leaf_hash(b"skipped level"))
    with pytest.raises(LookupError):
        store.get(0, -1)


# --- Inclusion -----------------------------------------------------------------------------


def test_every_small_inclusion_proof_is_the_rfc_path_and_verifies() -> None:
    leaves = entries(EXHAUSTIVE_LEAVES)
    store = stored(leaves)
    for size in range(1, EXHAUSTIVE_LEAVES + 1):
        head = root_of_leaves(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(store, index, size)
            assert proof == rfc_path(index, leaves[:size])
            assert verify_inclusion(leaves[index], index, size, proof, head)


@PROPERTY_SETTINGS
@given(leaves=logs(), data=st.data())
def test_inclusion_proof_verifies_and_tampering_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    store = stored(leaves)
    for _ in range(PAIRS_PER_TREE):
        size = data.draw(st.integers(min_value=1, max_value=len(leaves)))
        index = data.draw(st.integers(min_value=0, max_value=size - 1))
        bit = data.draw(st.integers(min_value=0, max_value=HASH_BYTES * 8 - 1))
        head, leaf = root(store, size), leaves[index]
        proof = inclusion_proof(store, index, size)

        assert proof == rfc_path(index, leaves[:size])
        assert verify_inclusion(leaf, index, size, proof, head)

        assert not verify_inclusion(flip_bit(leaf, bit), index, size, proof, head)
        assert not verify_inclusion(leaf, index, size, proof, flip_bit(head, bit))
        for position in range(len(proof)):
            tampered = [*proof[:position], flip_bit(proof[position], bit), *proof[position + 1 :]]
            assert not verify_inclusion(leaf, index, size, tampered, head)
        assert not verify_inclusion(leaf, index, size, [*proof, head], head)
        if proof:
            assert not verify_inclusion(leaf, index, size, proof[:-1], head)
        for other in {index - 1, index + 1, index ^ 1, size} - {index}:
            assert not verify_inclusion(leaf, other, size, proof, head)
        # Another tree's head: a proof for one size proves nothing about another.
        for other in {size - 1, size + 1, size * 2, size // 2} - {size}:
            if index < other <= len(leaves):
                assert not verify_inclusion(leaf, index, other, proof, root(store, other))


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 2), (0, 9), (0, -1)], ids=str)
def test_inclusion_proof_outside_the_log_is_refused(index: int, size: int) -> None:
    store = stored(entries(8))
    with pytest.raises(ValueError):
        inclusion_proof(store, index, size)


def test_malformed_inclusion_arguments_are_rejected_not_raised() -> None:
    leaves = entries(4)
    proof, head = rfc_path(1, leaves), root_of_leaves(leaves)
    assert not verify_inclusion(leaves[1], -1, 4, proof, head)
    assert not verify_inclusion(leaves[1], 1, 2**64, proof, head)
    assert not verify_inclusion(leaves[1], 1, 4, [*proof, b""], head)
    assert not verify_inclusion(leaves[1][:-1], 1, 4, proof, head)
    assert not verify_inclusion(leaves[1], 1, 4, proof, head + b"\x00")
    assert not verify_inclusion(leaves[1], 1, 4, [head] * (MAX_PROOF_HASHES + 1), head)


# --- Consistency ---------------------------------------------------------------------------


def test_every_small_consistency_proof_is_the_rfc_proof_and_verifies() -> None:
    leaves = entries(EXHAUSTIVE_LEAVES)
    store = stored(leaves)
    for new_size in range(1, EXHAUSTIVE_LEAVES + 1):
        new_head = root_of_leaves(leaves[:new_size])
        for old_size in range(1, new_size + 1):
            proof = consistency_proof(store, old_size, new_size)
            assert proof == rfc_subproof(old_size, leaves[:new_size], True)
            old_head = root_of_leaves(leaves[:old_size])
            assert verify_consistency(old_size, new_size, old_head, new_head, proof)


@PROPERTY_SETTINGS
@given(leaves=logs(), data=st.data())
def test_consistency_proof_verifies_and_tampering_fails(
    leaves: list[bytes], data: st.DataObject
) -> None:
    store = stored(leaves)
    for _ in range(PAIRS_PER_TREE):
        new_size = data.draw(st.integers(min_value=1, max_value=len(leaves)))
        old_size = data.draw(st.integers(min_value=1, max_value=new_size))
        bit = data.draw(st.integers(min_value=0, max_value=HASH_BYTES * 8 - 1))
        old_head, new_head = root(store, old_size), root(store, new_size)
        proof = consistency_proof(store, old_size, new_size)

        assert proof == rfc_subproof(old_size, leaves[:new_size], True)
        assert verify_consistency(old_size, new_size, old_head, new_head, proof)

        assert not verify_consistency(old_size, new_size, flip_bit(old_head, bit), new_head, proof)
        assert not verify_consistency(old_size, new_size, old_head, flip_bit(new_head, bit), proof)
        for position in range(len(proof)):
            tampered = [*proof[:position], flip_bit(proof[position], bit), *proof[position + 1 :]]
            assert not verify_consistency(old_size, new_size, old_head, new_head, tampered)
        assert not verify_consistency(old_size, new_size, old_head, new_head, [*proof, old_head])
        assert not verify_consistency(old_size, new_size, old_head, new_head, [old_head, *proof])
        if proof:
            assert not verify_consistency(old_size, new_size, old_head, new_head, proof[:-1])
        if old_size < new_size:
            assert not verify_consistency(old_size, new_size, new_head, old_head, proof)
            assert not verify_consistency(new_size, old_size, new_head, old_head, proof)
        assert not verify_consistency(0, new_size, EMPTY_ROOT, new_head, proof)


@pytest.mark.parametrize(
    ("old_size", "new_size"), [(0, 4), (5, 4), (4, 9), (-1, 4), (0, 0)], ids=str
)
def test_consistency_proof_outside_the_log_is_refused(old_size: int, new_size: int) -> None:
    store = stored(entries(8))
    with pytest.raises(ValueError):
        consistency_proof(store, old_size, new_size)


def test_malformed_consistency_arguments_are_rejected_not_raised() -> None:
    leaves = entries(7)
    old_head, new_head = root_of_leaves(leaves[:3]), root_of_leaves(leaves)
    proof = rfc_subproof(3, leaves, True)
    assert verify_consistency(3, 7, old_head, new_head, proof)
    assert not verify_consistency(3, 7, old_head, new_head, [])
    assert not verify_consistency(3, 7, old_head, new_head, [*proof[:-1], b"garbage"])
    assert not verify_consistency(3, 7, old_head[:-1], new_head, proof)
    assert not verify_consistency(3, 2**64, old_head, new_head, proof)
    assert not verify_consistency(3, 7, old_head, new_head, [new_head] * (MAX_PROOF_HASHES + 1))
    assert not verify_consistency(7, 7, new_head, new_head, [new_head])
