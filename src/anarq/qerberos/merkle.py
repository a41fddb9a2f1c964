"""RFC 9162 Merkle trees: tree heads, inclusion and consistency proofs over stored subtrees.

The log stores only the hashes of *complete* subtrees: at level L, index i, the perfect
tree over leaves [i * 2**L, (i + 1) * 2**L). Every node of the RFC 9162 tree of any size
is either such a subtree or a fold of the few that tile its leaves, so the tree head and
every proof for any past size come from O(log n) reads, without recomputing anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# RFC 9162 carries tree sizes and leaf indices as uint64.
MAX_TREE_SIZE = 2**64 - 1
# An inclusion path holds at most ceil(log2(size)) <= 64 hashes, a consistency proof at
# most one more; anything longer is refused before a single hash is computed.
MAX_PROOF_HASHES = 65
# `append` validates its whole batch before writing, so a batch is held in memory.
MAX_APPEND_LEAVES = 100_000

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one log entry."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the prefix keeps a node from passing as a leaf."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


class NodeStore(Protocol):
    """Hashes of complete subtrees, written once and never changed.

    Level 0 holds the leaf hashes; level L, index i is the perfect subtree over leaves
    [i * 2**L, (i + 1) * 2**L), stored only once all its leaves are.
    """

    def get(self, level: int, index: int) -> bytes:
        """The stored hash; `LookupError` if that subtree is not complete."""
        ...

    def put(self, level: int, index: int, digest: bytes) -> None:
        """Store a completed subtree's hash."""
        ...

    def size(self) -> int:
        """How many leaves are stored."""
        ...


class MemoryNodeStore:
    """A `NodeStore` in one list per level, for tests and small logs."""

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = []

    def get(self, level: int, index: int) -> bytes:
        # Checked by hand: a negative list index would quietly read from the other end.
        if 0 <= level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        raise LookupError(f"no complete subtree at level {level}, index {index}")

    def put(self, level: int, index: int, digest: bytes) -> None:
        """Each level grows in order and is never rewritten: anything else is refused."""
        if level == len(self._levels):
            self._levels.append([])
        if not 0 <= level < len(self._levels) or index != len(self._levels[level]):
            raise ValueError(f"subtree at level {level}, index {index} is out of order")
        self._levels[level].append(digest)

    def size(self) -> int:
        return len(self._levels[0]) if self._levels else 0


def append(store: NodeStore, leaf_hashes: Sequence[bytes]) -> int:
    """Append leaf hashes in order, storing every subtree they complete; the new size.

    Refuses (`ValueError`, nothing written) a hash that is not 32 bytes, a batch over
    `MAX_APPEND_LEAVES` and growth past `MAX_TREE_SIZE`.
    """
    if len(leaf_hashes) > MAX_APPEND_LEAVES:
        raise ValueError(f"{len(leaf_hashes)} leaves exceed the batch limit {MAX_APPEND_LEAVES}")
    for position, digest in enumerate(leaf_hashes):
        if not _is_hash(digest):
            raise ValueError(f"leaf {position} of the batch is not a {HASH_BYTES}-byte hash")
    size = store.size()
    if size + len(leaf_hashes) > MAX_TREE_SIZE:
        raise ValueError(f"the log cannot grow past {MAX_TREE_SIZE} entries")
    # The peaks of the current tree are the only left siblings new leaves can complete;
    # reading them once keeps the batch to O(log n) reads.
    peaks = [store.get(level, first >> level) for level, first in _tiles(0, size)]
    for digest in leaf_hashes:
        store.put(0, size, digest)
        level, index, carry = 0, size, digest
        while index & 1:
            carry = node_hash(peaks.pop(), carry)
            level, index = level + 1, index >> 1
            store.put(level, index, carry)
        peaks.append(carry)
        size += 1
    assert len(peaks) == size.bit_count()
    return size


def root(store: NodeStore, size: int | None = None) -> bytes:
    """The tree head (RFC 9162 MTH) of the first `size` entries; the whole log by default."""
    stored = store.size()
    size = stored if size is None else size
    _check_size(size, stored)
    return EMPTY_ROOT if size == 0 else _range_hash(store, 0, size)


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """The audit path PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf end first.

    Refuses (`ValueError`) a size beyond the log and an index not below the size.
    """
    _check_size(size, store.size())
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not below tree size {size}")
    siblings: list[bytes] = []
    low, high = 0, size
    while high - low > 1:
        middle = low + _split(high - low)
        if index < middle:
            siblings.append(_range_hash(store, middle, high))
            high = middle
        else:
            siblings.append(_range_hash(store, low, middle))
            low = middle
    siblings.reverse()
    return siblings


def consistency_proof(store: NodeStore, old_size: int, new_size: int) -> list[bytes]:
    """The consistency proof PROOF(old_size, D[new_size]) of RFC 9162 §2.1.4.1.

    Empty when the sizes are equal. Refuses (`ValueError`) an old size of 0 (every tree
    extends the empty one, there is nothing to prove), old > new and sizes beyond the log.
    """
    _check_size(new_size, store.size())
    if not 0 < old_size <= new_size:
        raise ValueError(f"consistency needs 0 < old size <= new size, got {old_size}, {new_size}")
    proof: list[bytes] = []
    low, high = 0, new_size
    while high != old_size:
        middle = low + _split(high - low)
        if old_size <= middle:
            proof.append(_range_hash(store, middle, high))
            high = middle
        else:
            proof.append(_range_hash(store, low, middle))
            low = middle
    # SUBPROOF's flag: a node starting at leaf 0 is the whole old tree, whose head the
    # verifier already holds; any other is sent.
    if low != 0:
        proof.append(_range_hash(store, low, high))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: whether `proof` puts `leaf_hash` at `index` of the tree `root`.

    False, never an exception, for any proof that does not hold: wrong lengths, hashes
    that are not 32 bytes, an index not below the size, too many or too few hashes.
    """
    if not (_is_size(index) and _is_size(size) and index < size <= MAX_TREE_SIZE):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_proof(proof)):
        return False
    fn, sn = index, size - 1
    computed = leaf_hash
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            # On the right border a node without a right sibling moves up unhashed.
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            computed = node_hash(computed, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and computed == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether `proof` shows the tree `new_root` extends `old_root`.

    Equal sizes hold with an empty proof and equal roots. False, never an exception, for
    anything else that does not hold, including an old size of 0 (nothing to prove, as
    the reference verifier says) and old > new.
    """
    if not (_is_size(old_size) and _is_size(new_size)):
        return False
    if not (0 < old_size <= new_size <= MAX_TREE_SIZE and _is_proof(proof)):
        return False
    if old_size == new_size:
        # No proof to check: the claim is that both heads are the same head.
        return len(proof) == 0 and old_root == new_root
    if not (proof and _is_hash(old_root) and _is_hash(new_root)):
        return False
    # When the old tree is a perfect subtree, its head is the proof's starting point.
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_computed = new_computed = path[0]
    for sibling in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_computed = node_hash(sibling, old_computed)
            new_computed = node_hash(sibling, new_computed)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_computed = node_hash(new_computed, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and old_computed == old_root and new_computed == new_root


def root_of_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a plain list of leaf hashes by the RFC's own recursion: a reference for tests."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    split = _split(len(leaf_hashes))
    return node_hash(root_of_leaves(leaf_hashes[:split]), root_of_leaves(leaf_hashes[split:]))


def _split(count: int) -> int:
    """The largest power of two below `count` (>= 2): where RFC 9162 cuts a tree."""
    return 1 << ((count - 1).bit_length() - 1)


def _tiles(start: int, end: int) -> list[tuple[int, int]]:
    """(level, first leaf) of the complete subtrees tiling leaves [start, end), largest first."""
    tiles: list[tuple[int, int]] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        tiles.append((level, start))
        start += 1 << level
    return tiles


def _range_hash(store: NodeStore, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a node of an RFC 9162 tree, folded from its stored tiles."""
    # Such a node starts at a multiple of its width rounded up to a power of two; only
    # then do its RFC cuts fall on stored subtrees.
    assert 0 <= start < end and start % (1 << (end - start - 1).bit_length()) == 0
    hashes = [store.get(level, first >> level) for level, first in _tiles(start, end)]
    digest = hashes.pop()
    while hashes:
        digest = node_hash(hashes.pop(), digest)
    return digest


def _check_size(size: int, stored: int) -> None:
    if not 0 <= size <= stored:
        raise ValueError(f"tree size {size} is outside the log's 0..{stored} entries")


def _is_size(value: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_hash(value: bytes) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_BYTES


def _is_proof(proof: Sequence[bytes]) -> bool:
    return len(proof) <= MAX_PROOF_HASHES and all(_is_hash(item) for item in proof)
