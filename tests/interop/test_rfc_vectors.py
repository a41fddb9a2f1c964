"""Published vectors, typed in from their specs: RFC 8032 §7.1, RFC 7748 §5.2/§6.1, RFC 9180 A.1.

HPKE encryption cannot be replayed from RFC 9180: `cryptography`'s `Suite.encrypt` always
draws a fresh ephemeral key and offers no way to inject `skEm`. Decryption is
deterministic, so A.1.1's first ciphertext is opened instead (its `aad` needs the
library's private `_decrypt_with_aad`; the test skips if that disappears), and the
encryption direction is covered by round trips.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519

from anarq.qlock import (
    AgreementKey,
    BadSignature,
    SigningKey,
    VerifyKey,
    open_sealed,
    seal,
    sign,
    verify,
)
from anarq.qlock.keys import ALG_ED25519
from anarq.qlock.sign import SIGNATURE_VERSION

# RFC 8032 §7.1, TEST 1-3: SECRET KEY, PUBLIC KEY, MESSAGE, SIGNATURE.
RFC8032_ED25519 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
        "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da08"
        "5ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18"
        "ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]

# RFC 7748 §5.2: input scalar, input u-coordinate, output u-coordinate.
RFC7748_X25519 = [
    (
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
]

# RFC 7748 §6.1: Alice's and Bob's private and public keys, and their shared secret.
ALICE_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PRIVATE = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED_SECRET = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

# RFC 9180 A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
A1_INFO = "4f6465206f6e2061204772656369616e2055726e"
A1_PK_RM = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"
A1_SK_RM = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"
A1_ENC = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"
# A.1.1.1, sequence number 0.
A1_PT = "4265617574792069732074727574682c20747275746820626561757479"
A1_AAD = "436f756e742d30"
A1_CT = "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"

# draft-connolly-cfrg-xwing-kem Appendix C, first vector: the 32-byte seed, and the start
# (ML-KEM-768 encapsulation key) and end (X25519 public key) of its 1216-byte public key.
XWING_SEED = "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26"
XWING_PK_HEAD = "e2236b35a8c24b39b10aa1323a96a919a2ced88400633a7b07131713fc14b2b5b19cfc3d"
XWING_PK_TAIL = "859edb06eff389b27dce59844570216223593d4ba32d9abac8cd049040ef6534"


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_ED25519)
def test_rfc8032_ed25519_sign_gives_the_published_signature(
    secret: str, public: str, message: str, signature: str
) -> None:
    key = SigningKey.from_seeds(bytes.fromhex(secret))

    signed = sign(key, bytes.fromhex(message))

    assert key.verify_key.ed25519_bytes().hex() == public
    assert signed == bytes([SIGNATURE_VERSION, ALG_ED25519]) + bytes.fromhex(signature)


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_ED25519)
def test_rfc8032_ed25519_published_signature_verifies_and_a_flip_does_not(
    secret: str, public: str, message: str, signature: str
) -> None:
    del secret
    key = VerifyKey.from_ed25519(bytes.fromhex(public))
    wire = bytes([SIGNATURE_VERSION, ALG_ED25519]) + bytes.fromhex(signature)

    verify(key, bytes.fromhex(message), wire)
    with pytest.raises(BadSignature):
        verify(key, bytes.fromhex(message) + b"\x00", wire)
    with pytest.raises(BadSignature):
        verify(key, bytes.fromhex(message), wire[:-1] + bytes([wire[-1] ^ 1]))


@pytest.mark.parametrize(("scalar", "u", "output"), RFC7748_X25519)
def test_rfc7748_x25519_function_under_the_agreement_keys(scalar: str, u: str, output: str) -> None:
    # AgreementKey exposes no raw Diffie-Hellman; this checks the primitive it is built on.
    private = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(scalar))

    shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(bytes.fromhex(u)))

    assert shared.hex() == output


def test_rfc7748_diffie_hellman_keys_load_as_agreement_keys() -> None:
    alice = AgreementKey.from_x25519(bytes.fromhex(ALICE_PRIVATE))
    bob = AgreementKey.from_x25519(bytes.fromhex(BOB_PRIVATE))

    assert alice.recipient_key.x25519_bytes().hex() == ALICE_PUBLIC
    assert bob.recipient_key.x25519_bytes().hex() == BOB_PUBLIC
    shared = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(ALICE_PRIVATE)).exchange(
        x25519.X25519PublicKey.from_public_bytes(bytes.fromhex(BOB_PUBLIC))
    )
    assert shared.hex() == SHARED_SECRET


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_ED25519)
def test_did_key_derivation_maps_rfc8032_keys_consistently(
    secret: str, public: str, message: str, signature: str
) -> None:
    # X25519(derived private) must equal the birational image of the Ed25519 public key.
    del message, signature
    key = SigningKey.from_seeds(bytes.fromhex(secret))

    from_private = key.derive_agreement_key().recipient_key
    from_public = VerifyKey.from_ed25519(bytes.fromhex(public)).derive_recipient_key()

    assert from_private == from_public


def test_rfc9180_a11_recipient_key_and_first_ciphertext_open() -> None:
    decrypt_with_aad = getattr(rust_openssl.hpke, "_decrypt_with_aad", None)
    if decrypt_with_aad is None:
        pytest.skip("cryptography no longer exposes HPKE decryption with aad")
    recipient = AgreementKey.from_x25519(bytes.fromhex(A1_SK_RM))
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
    private = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(A1_SK_RM))

    plaintext = decrypt_with_aad(
        suite,
        bytes.fromhex(A1_ENC + A1_CT),
        private,
        info=bytes.fromhex(A1_INFO),
        aad=bytes.fromhex(A1_AAD),
    )

    assert recipient.recipient_key.x25519_bytes().hex() == A1_PK_RM
    assert plaintext == bytes.fromhex(A1_PT)


def test_rfc9180_a1_suite_round_trips_with_the_vector_keys() -> None:
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
    private = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(A1_SK_RM))
    info = bytes.fromhex(A1_INFO)

    first = suite.encrypt(bytes.fromhex(A1_PT), private.public_key(), info=info)
    second = suite.encrypt(bytes.fromhex(A1_PT), private.public_key(), info=info)

    assert first != second  # a fresh ephemeral key each time: why A.1 cannot be replayed
    assert suite.decrypt(first, private, info=info) == bytes.fromhex(A1_PT)
    assert len(first) == hpke.KEM.X25519.enc_length() + len(bytes.fromhex(A1_CT))


def test_rfc9180_vector_key_opens_a_qlock_envelope() -> None:
    recipient = AgreementKey.from_x25519(bytes.fromhex(A1_SK_RM))

    envelope = seal(bytes.fromhex(A1_PT), [recipient.recipient_key])

    assert open_sealed(envelope, recipient) == bytes.fromhex(A1_PT)


def test_xwing_seed_expands_to_the_draft_public_key() -> None:
    key = AgreementKey.from_xwing_seed(bytes.fromhex(XWING_SEED))

    public = key.recipient_key.to_bytes()[1:]

    assert len(public) == 1216
    assert public.hex().startswith(XWING_PK_HEAD)
    assert public.hex().endswith(XWING_PK_TAIL)
