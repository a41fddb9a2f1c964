"""did:key interop: the w3c-ccg/did-method-key test vectors (../shared/vectors/did-key/)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from multiformats import multibase

from anarq.qlock.keys import SigningKey, VerifyKey, x25519_public_from_ed25519
from anarq.squid import didkey
from anarq.squid.errors import InvalidDid

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "did-key"
needs_vectors = pytest.mark.skipif(
    not VECTORS.is_dir(), reason=f"did:key vectors not found at {VECTORS}"
)


def _load(name: str) -> dict[str, Any]:
    path = VECTORS / name
    if not path.is_file():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


SEEDED = _load("ed25519-x25519.json")
X25519_DOCS = _load("x25519.json").get("didDocument", {})


def _key_bytes(method: dict[str, Any], *, private: bool = False) -> bytes:
    """The raw key a vector's key pair states, in either representation it uses."""
    if "publicKeyJwk" in method:
        text = method["privateKeyJwk"]["d"] if private else method["publicKeyJwk"]["x"]
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    text = method["privateKeyBase58"] if private else method["publicKeyBase58"]
    decoded: bytes = multibase.decode("z" + text)
    return decoded


def _representation(document: dict[str, Any]) -> didkey.Representation:
    kind = document["verificationMethod"][0]["type"]
    return "JsonWebKey2020" if kind == "JsonWebKey2020" else "Ed25519VerificationKey2018"


@needs_vectors
@pytest.mark.parametrize("did", sorted(SEEDED))
def test_seed_gives_the_did_and_public_key(did: str) -> None:
    vector = SEEDED[did]
    key = SigningKey.from_seeds(bytes.fromhex(vector["seed"]))

    public = key.verify_key.ed25519_bytes()

    assert didkey.did_from_ed25519(public) == did
    assert public == _key_bytes(vector["verificationKeyPair"])


@needs_vectors
@pytest.mark.parametrize("did", sorted(SEEDED))
def test_seed_derives_the_x25519_key_agreement_pair(did: str) -> None:
    vector = SEEDED[did]
    pair = vector["keyAgreementKeyPair"]
    key = SigningKey.from_seeds(bytes.fromhex(vector["seed"]))

    agreement = key.derive_agreement_key()
    derived_public = agreement.recipient_key.x25519_bytes()

    assert agreement.to_bytes()[1:] == _key_bytes(pair, private=True)
    assert derived_public == _key_bytes(pair)
    # The public-only path (birational map) agrees with the private-key path.
    assert x25519_public_from_ed25519(key.verify_key.ed25519_bytes()) == derived_public
    assert key.verify_key.derive_recipient_key() == agreement.recipient_key
    assert pair["id"].endswith(
        "#" + didkey.did_from_x25519(derived_public).removeprefix("did:key:")
    )


@needs_vectors
@pytest.mark.parametrize("did", sorted(SEEDED))
def test_resolve_builds_the_vector_document_for_ed25519(did: str) -> None:
    expected = SEEDED[did]["didDocument"]

    document = didkey.resolve(did, representation=_representation(expected))

    assert document == expected


@needs_vectors
@pytest.mark.parametrize("did", sorted(X25519_DOCS))
def test_resolve_builds_the_vector_document_for_x25519(did: str) -> None:
    expected = X25519_DOCS[did]

    document = didkey.resolve(did, representation=_representation(expected))

    assert document == expected
    assert didkey.did_from_x25519(didkey.decode(did).public_key) == did


@needs_vectors
def test_vectors_are_present() -> None:
    assert len(SEEDED) == 5 and len(X25519_DOCS) == 4


def test_multikey_representation_uses_the_fingerprint() -> None:
    key = SigningKey.from_seeds(bytes(32))
    did = didkey.did_from_ed25519(key.verify_key.ed25519_bytes())

    document = didkey.resolve(did, representation="Multikey")

    signing, agreement = document["verificationMethod"]
    assert signing["type"] == "Multikey" and signing["publicKeyMultibase"].startswith("z6Mk")
    assert agreement["publicKeyMultibase"].startswith("z6LS")
    assert document["keyAgreement"] == [agreement["id"]]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "did:web:example.com",
        "did:key:",
        "did:key:6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",  # no multibase prefix
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW0",  # '0' is not base58
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW",  # truncated
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWpp",  # one char too many
        "did:key:zQ3shMQoeYF51UPydwpZjhaGJrdX3rHuEJbpVtheh3ZT7zmiW",  # secp256k1: unsupported
        "did:key:z2DQUyFHStG42FqbEhyM6LhkEqqV45NGGqKCwNxVWWu7Yzj",  # ed25519-pub of 31 bytes
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#frag",
        "did:key:z" + "1" * 200,
    ],
)
def test_malformed_dids_are_refused_with_a_4xx(bad: str) -> None:
    with pytest.raises(InvalidDid) as caught:
        didkey.resolve(bad)
    assert caught.value.status == 400 and caught.value.code == "squid.invalid_did"


def test_ed25519_did_of_a_non_point_is_refused() -> None:
    non_canonical = (2**255 - 10).to_bytes(32, "little")  # y >= p
    neutral = (1).to_bytes(32, "little")
    with pytest.raises(InvalidDid):
        didkey.did_from_ed25519(non_canonical)
    with pytest.raises(InvalidDid):
        didkey.did_from_ed25519(neutral)


def test_decode_round_trips_every_supported_codec() -> None:
    public = VerifyKey.from_ed25519(SigningKey.from_seeds(bytes(32)).verify_key.ed25519_bytes())
    did = didkey.did_from_ed25519(public.ed25519_bytes())

    parsed = didkey.decode(did)

    assert parsed.codec == "ed25519-pub" and parsed.public_key == public.ed25519_bytes()
    assert parsed.fingerprint == did.removeprefix("did:key:")
