"""RFC 9162 proofs against the transparency-dev/merkle test vectors (`shared/vectors/merkle/`).

Each file says whether its proof holds (`wantErr`): every `happy-path` does, and so do two
edge cases (a one-entry tree whose head is its leaf; equal sizes, equal heads, empty
proof). Every mutation — flipped bits, garbage, wrong sizes or roots, swapped roots,
sizes out of order — must be rejected.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from anarq.qerberos.merkle import (
    MemoryNodeStore,
    append,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "merkle"

if not VECTORS.is_dir():
    pytest.skip(f"Merkle test vectors not found at {VECTORS}", allow_module_level=True)

# The eight entries of the RFC 6962 reference tree that the happy paths are drawn from
# (transparency-dev/merkle `testonly`).
REFERENCE_ENTRIES = [
    bytes.fromhex(entry)
    for entry in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]


def _load(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [
        pytest.param(json.loads(path.read_text()), id=str(path.relative_to(VECTORS)))
        for path in files
    ]


INCLUSION = _load("inclusion")
CONSISTENCY = _load("consistency")


def _hash(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _proof(vector: dict[str, Any]) -> list[bytes]:
    return [_hash(item) for item in vector["proof"] or []]


def _holds(vector: dict[str, Any]) -> bool:
    holds = not vector["wantErr"]
    if vector["desc"] == "happy path":
        assert holds, "a happy path is always meant to verify"
    return holds


@pytest.fixture(scope="module")
def reference_store() -> MemoryNodeStore:
    store = MemoryNodeStore()
    append(store, [leaf_hash(entry) for entry in REFERENCE_ENTRIES])
    return store


def test_vector_folders_are_not_empty() -> None:
    assert len(INCLUSION) > 0 and len(CONSISTENCY) > 0


@pytest.mark.parametrize("vector", INCLUSION)
def test_inclusion_vector(vector: dict[str, Any]) -> None:
    verdict = verify_inclusion(
        _hash(vector["leafHash"]),
        vector["leafIdx"],
        vector["treeSize"],
        _proof(vector),
        _hash(vector["root"]),
    )
    assert verdict is _holds(vector)


@pytest.mark.parametrize("vector", CONSISTENCY)
def test_consistency_vector(vector: dict[str, Any]) -> None:
    verdict = verify_consistency(
        vector["size1"],
        vector["size2"],
        _hash(vector["root1"]),
        _hash(vector["root2"]),
        _proof(vector),
    )
    assert verdict is _holds(vector)


@pytest.mark.parametrize("vector", [v for v in INCLUSION if v.values[0]["desc"] == "happy path"])
def test_generated_inclusion_proof_matches_published(
    vector: dict[str, Any], reference_store: MemoryNodeStore
) -> None:
    index, size = vector["leafIdx"], vector["treeSize"]
    assert reference_store.get(0, index) == _hash(vector["leafHash"])
    assert root(reference_store, size) == _hash(vector["root"])
    assert inclusion_proof(reference_store, index, size) == _proof(vector)


@pytest.mark.parametrize("vector", [v for v in CONSISTENCY if v.values[0]["desc"] == "happy path"])
def test_generated_consistency_proof_matches_published(
    vector: dict[str, Any], reference_store: MemoryNodeStore
) -> None:
    old_size, new_size = vector["size1"], vector["size2"]
    assert root(reference_store, old_size) == _hash(vector["root1"])
    assert root(reference_store, new_size) == _hash(vector["root2"])
    assert consistency_proof(reference_store, old_size, new_size) == _proof(vector)
