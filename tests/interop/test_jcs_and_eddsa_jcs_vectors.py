"""JSON canonicalization and the eddsa-jcs-2022 cryptosuite against published vectors.

- RFC 8785: cyberphone/json-canonicalization `testdata/` (../shared/vectors/jcs/): every
  `input/X.json` canonicalizes to the bytes of `output/X.json`.
- eddsa-jcs-2022: the W3C vc-di-eddsa test vector (`TestVectors/eddsa-jcs-2022/`, key
  pair from `TestVectors/keyPair.json`), typed in here: signing the unsigned credential
  with the published key gives the published proofValue, byte for byte, and it verifies.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import base58
import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from anarq.kernel import jcs
from anarq.squid import documents
from anarq.vc import dataintegrity

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "jcs"
needs_vectors = pytest.mark.skipif(
    not VECTORS.is_dir(), reason=f"JCS vectors not found at {VECTORS}"
)
NAMES = sorted(p.stem for p in (VECTORS / "input").glob("*.json")) if VECTORS.is_dir() else []


@needs_vectors
@pytest.mark.parametrize("name", NAMES)
def test_rfc8785_vectors(name: str) -> None:
    value = json.loads((VECTORS / "input" / f"{name}.json").read_text(encoding="utf-8"))
    expected = (VECTORS / "output" / f"{name}.json").read_bytes()
    assert rfc8785.dumps(value) == expected
    assert jcs.dumps(value) == expected, "the node's canonical form, fast path or not"
    if isinstance(value, dict) and "proof" not in value:
        # Signed documents (licences, receipts, votes) are canonicalized the same way.
        assert documents.jcs(value) == expected


@needs_vectors
def test_the_vectors_are_all_there() -> None:
    assert len(NAMES) >= 6


PUBLIC_MULTIBASE = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
SECRET_MULTIBASE = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
METHOD = f"https://vc.example/issuers/5678#{PUBLIC_MULTIBASE}"
UNSIGNED = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://www.w3.org/ns/credentials/examples/v2",
    ],
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": "https://vc.example/issuers/5678",
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
}
PROOF_VALUE = (
    "z63t83Y53KfzJ5ZosfKTnqfMcKB2dmTrfjSaQjeNNjAD5srBowQfmWqeRb8rRjmeEuCBEsddF9LsVogtuTsijJKh4"
)


def _key(multibase: str, codec: bytes) -> bytes:
    raw = base58.b58decode(multibase[1:])
    assert raw[:2] == codec
    return raw[2:]


SEED = _key(SECRET_MULTIBASE, bytes([0x80, 0x26]))  # multicodec ed25519-priv
PUBLIC = _key(PUBLIC_MULTIBASE, bytes([0xED, 0x01]))  # multicodec ed25519-pub


def test_eddsa_jcs_2022_signs_the_w3c_vector_byte_for_byte() -> None:
    signed = dataintegrity.sign(UNSIGNED, SEED, METHOD, created="2023-02-24T23:36:38Z")
    assert signed["proof"] == {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": "2023-02-24T23:36:38Z",
        "verificationMethod": METHOD,
        "proofPurpose": "assertionMethod",
        "@context": UNSIGNED["@context"],
        "proofValue": PROOF_VALUE,
    }
    assert dataintegrity.verify(signed, lambda method: PUBLIC)["proofValue"] == PROOF_VALUE


def test_the_w3c_vector_fails_once_changed() -> None:
    signed = dataintegrity.sign(UNSIGNED, SEED, METHOD, created="2023-02-24T23:36:38Z")
    for change in (
        lambda d: d["credentialSubject"].update(alumniOf="Another School"),
        lambda d: d["proof"].update(created="2023-02-24T23:36:39Z"),
        # (Contexts appended after the proof's are allowed by the cryptosuite; others not.)
        lambda d: d["@context"].__setitem__(1, "https://example.org/other"),
        lambda d: d["proof"].update(proofPurpose="authentication"),
    ):
        tampered = copy.deepcopy(signed)
        change(tampered)
        with pytest.raises(dataintegrity.ProofInvalid):
            dataintegrity.verify(tampered, lambda method: PUBLIC)


# Documents the fast path takes (ASCII keys, safe integers, any text, no floats), and
# beyond it (floats, huge integers, non-ASCII keys), which must go to rfc8785.
_leaves = (
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text()
)
_documents = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127)), children, max_size=4)
    ),
    max_leaves=20,
)
_beyond = st.recursive(
    _leaves
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=2**53, max_value=2**60),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


def _rfc8785_or_error(value: object) -> bytes | type[BaseException]:
    try:
        return rfc8785.dumps(value)
    except Exception as exc:
        return type(exc)


@given(_documents)
def test_the_fast_canonical_form_is_rfc8785(value: object) -> None:
    expected = _rfc8785_or_error(value)
    if isinstance(expected, bytes):
        assert jcs.dumps(value) == expected
    else:
        with pytest.raises(Exception):  # noqa: B017 (whatever rfc8785 refuses)
            jcs.dumps(value)


@given(_beyond)
def test_documents_beyond_the_fast_path_are_canonicalized_by_rfc8785(value: object) -> None:
    expected = _rfc8785_or_error(value)
    if isinstance(expected, bytes):
        assert jcs.dumps(value) == expected
