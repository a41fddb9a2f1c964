"""Qlock as a specification: what seals opens, what is signed verifies, and nothing else does."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq.qlock import (
    AgreementKey,
    Argon2Params,
    BadEnvelope,
    BadKeystore,
    BadSignature,
    InvalidKey,
    KeystoreLocked,
    RecipientKey,
    SigningKey,
    VerifyKey,
    WeakPassphrase,
    WrongKey,
    decode_signature,
    encode_signature,
    lock,
    open_sealed,
    recipients_of,
    rewrap,
    seal,
    sign,
    sign_detached,
    unlock,
    verify,
    verify_detached,
)
from anarq.qlock.sign import ED25519_SIGNATURE_BYTES, HEADER_BYTES

# Keys are drawn from fixed pools: generation is not what these properties are about,
# and ML-KEM/ML-DSA key generation per example would only slow the suite down.
READERS = [AgreementKey.generate(hybrid=False) for _ in range(4)] + [
    AgreementKey.generate(hybrid=True) for _ in range(4)
]
OUTSIDER = AgreementKey.generate(hybrid=True)
SIGNERS = [SigningKey.generate(hybrid=False), SigningKey.generate(hybrid=True)]
# Cheap Argon2id for property runs; the default (INTERACTIVE) has its own test.
FAST_KDF = Argon2Params(memory_kib=8 * 1024, iterations=1, lanes=1)

readers = st.lists(st.sampled_from(READERS), min_size=1, max_size=5, unique_by=id)
payloads = st.binary(max_size=2048)
aads = st.binary(max_size=64)
QUICK = settings(max_examples=40, deadline=None)


def _flip(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


# --- seal / open / rewrap -------------------------------------------------------------------


@QUICK
@given(plaintext=payloads, aad=aads, chosen=readers)
def test_every_recipient_opens_what_was_sealed(
    plaintext: bytes, aad: bytes, chosen: list[AgreementKey]
) -> None:
    envelope = seal(plaintext, [reader.recipient_key for reader in chosen], aad=aad)

    for reader in chosen:
        assert open_sealed(envelope, reader, aad=aad) == plaintext
    assert recipients_of(envelope) == [reader.key_id for reader in chosen]


@QUICK
@given(plaintext=payloads, chosen=readers)
def test_a_non_recipient_cannot_open(plaintext: bytes, chosen: list[AgreementKey]) -> None:
    envelope = seal(plaintext, [reader.recipient_key for reader in chosen])
    outsiders = [key for key in [*READERS, OUTSIDER] if key not in chosen]

    for outsider in outsiders:
        with pytest.raises(WrongKey):
            open_sealed(envelope, outsider)


@QUICK
@given(plaintext=payloads, aad=aads, wrong_aad=aads, chosen=readers)
def test_a_different_aad_is_refused(
    plaintext: bytes, aad: bytes, wrong_aad: bytes, chosen: list[AgreementKey]
) -> None:
    if aad == wrong_aad:
        return
    envelope = seal(plaintext, [reader.recipient_key for reader in chosen], aad=aad)

    with pytest.raises(BadEnvelope):
        open_sealed(envelope, chosen[0], aad=wrong_aad)


@QUICK
@given(plaintext=payloads, aad=aads, first=readers, added=readers, opener_index=st.integers(0, 4))
def test_rewrap_adds_readers_and_keeps_the_old_ones(
    plaintext: bytes,
    aad: bytes,
    first: list[AgreementKey],
    added: list[AgreementKey],
    opener_index: int,
) -> None:
    envelope = seal(plaintext, [reader.recipient_key for reader in first], aad=aad)
    opener = first[opener_index % len(first)]

    rewrapped = rewrap(envelope, opener, [reader.recipient_key for reader in added])

    everyone = first + [reader for reader in added if reader not in first]
    for reader in everyone:
        assert open_sealed(rewrapped, reader, aad=aad) == plaintext
    assert recipients_of(rewrapped) == [reader.key_id for reader in everyone]
    payload_bytes = len(plaintext) + 16
    assert rewrapped[-payload_bytes:] == envelope[-payload_bytes:]  # payload not re-encrypted


def test_only_a_reader_can_rewrap() -> None:
    envelope = seal(b"data", [READERS[0].recipient_key])

    with pytest.raises(WrongKey):
        rewrap(envelope, OUTSIDER, [OUTSIDER.recipient_key])


def test_sealing_to_the_same_reader_twice_wraps_once() -> None:
    reader = READERS[4].recipient_key

    envelope = seal(b"data", [reader, RecipientKey.from_bytes(reader.to_bytes())])

    assert recipients_of(envelope) == [reader.key_id]


def test_seal_refuses_no_recipients() -> None:
    with pytest.raises(BadEnvelope):
        seal(b"data", [])


@pytest.mark.parametrize(
    "chosen",
    [[READERS[0], READERS[1]], [READERS[4]]],
    ids=["two-classical", "one-hybrid"],
)
def test_every_bit_flip_and_truncation_of_an_envelope_is_refused(
    chosen: list[AgreementKey],
) -> None:
    envelope = seal(b"attack at dawn", [reader.recipient_key for reader in chosen], aad=b"ctx")
    opener = chosen[0]
    # Hybrid envelopes are ~1.3 KB; every 7th bit still hits each field many times.
    step = 1 if not opener.is_hybrid else 7

    for bit in range(0, len(envelope) * 8, step):
        with pytest.raises((BadEnvelope, WrongKey)):
            open_sealed(_flip(envelope, bit), opener, aad=b"ctx")
    for length in range(0, len(envelope), step):
        with pytest.raises((BadEnvelope, WrongKey)):
            open_sealed(envelope[:length], opener, aad=b"ctx")
        with pytest.raises(BadEnvelope):
            recipients_of(envelope[: min(length, 24)])


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(max_size=512))
def test_garbage_is_refused_with_a_typed_error(garbage: bytes) -> None:
    with pytest.raises((BadEnvelope, WrongKey)):
        open_sealed(garbage, READERS[0])
    with pytest.raises((BadEnvelope, WrongKey)):
        open_sealed(b"QLSE\x01\x00\x03" + garbage, READERS[0])


# --- sign / verify --------------------------------------------------------------------------


@QUICK
@given(message=st.binary(max_size=4096), signer=st.sampled_from(SIGNERS))
def test_signatures_verify_under_their_key_only(message: bytes, signer: SigningKey) -> None:
    signature = sign(signer, message)

    verify(signer.verify_key, message, signature)
    for other in SIGNERS:
        if other is not signer:
            with pytest.raises(BadSignature):
                verify(other.verify_key, message, signature)
    with pytest.raises(BadSignature):
        verify(signer.verify_key, message + b"!", signature)


def test_every_bit_flip_and_truncation_of_a_classical_signature_is_refused() -> None:
    signer = SIGNERS[0]
    signature = sign(signer, b"message")

    for bit in range(len(signature) * 8):
        with pytest.raises(BadSignature):
            verify(signer.verify_key, b"message", _flip(signature, bit))
    for length in range(len(signature)):
        with pytest.raises(BadSignature):
            verify(signer.verify_key, b"message", signature[:length])


HYBRID_SIGNATURE = sign(SIGNERS[1], b"message")


@settings(max_examples=200, deadline=None)
@given(bit=st.integers(0, len(HYBRID_SIGNATURE) * 8 - 1))
def test_any_bit_flip_of_a_hybrid_signature_is_refused(bit: int) -> None:
    with pytest.raises(BadSignature):
        verify(SIGNERS[1].verify_key, b"message", _flip(HYBRID_SIGNATURE, bit))


@settings(max_examples=100, deadline=None)
@given(length=st.integers(0, len(HYBRID_SIGNATURE) - 1))
def test_any_truncation_of_a_hybrid_signature_is_refused(length: int) -> None:
    with pytest.raises(BadSignature):
        verify(SIGNERS[1].verify_key, b"message", HYBRID_SIGNATURE[:length])


def test_hybrid_signature_with_either_half_replaced_is_refused() -> None:
    signer, other = SIGNERS[1], SigningKey.generate(hybrid=True)
    mine, theirs = sign(signer, b"message"), sign(other, b"message")
    cut = HEADER_BYTES + ED25519_SIGNATURE_BYTES
    own_again = sign(signer, b"another message")

    for spliced in (
        mine[:HEADER_BYTES] + theirs[HEADER_BYTES:cut] + mine[cut:],  # Ed25519 half swapped
        mine[:cut] + theirs[cut:],  # ML-DSA half swapped
        mine[:cut] + own_again[cut:],  # own ML-DSA half, but over another message
    ):
        with pytest.raises(BadSignature):
            verify(signer.verify_key, b"message", spliced)


def test_hybrid_signature_cannot_be_stripped_or_downgraded() -> None:
    hybrid = SIGNERS[1]
    classical_view = VerifyKey.from_ed25519(hybrid.verify_key.ed25519_bytes())
    hybrid_signature = sign(hybrid, b"message")
    ed25519_half = hybrid_signature[HEADER_BYTES : HEADER_BYTES + ED25519_SIGNATURE_BYTES]
    classical_only = SigningKey.from_seeds(hybrid.ed25519_seed())

    with pytest.raises(BadSignature):  # Ed25519 half presented as a classical signature
        verify(classical_view, b"message", bytes([1, 1]) + ed25519_half)
    with pytest.raises(BadSignature):  # a classical signature offered to the hybrid key
        verify(hybrid.verify_key, b"message", sign(classical_only, b"message"))


@QUICK
@given(message=st.binary(max_size=256), signer=st.sampled_from(SIGNERS))
def test_detached_form_round_trips_through_json(message: bytes, signer: SigningKey) -> None:
    detached = json.loads(json.dumps(sign_detached(signer, message)))

    verify_detached(signer.verify_key, message, detached)
    assert detached["alg"] == signer.algorithm and detached["kid"] == signer.key_id
    assert decode_signature(encode_signature(b"\x01\x02")) == b"\x01\x02"


def test_detached_form_refuses_a_mismatched_key_id_or_algorithm() -> None:
    signer = SIGNERS[0]
    detached = sign_detached(signer, b"m")

    with pytest.raises(BadSignature):
        verify_detached(signer.verify_key, b"m", {**detached, "kid": SIGNERS[1].key_id})
    with pytest.raises(BadSignature):
        verify_detached(signer.verify_key, b"m", {**detached, "alg": "ed25519+mldsa65"})
    with pytest.raises(BadSignature):
        verify_detached(signer.verify_key, b"m", {**detached, "sig": detached["sig"] + "="})


# --- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("hybrid", [False, True], ids=["classical", "hybrid"])
def test_key_forms_round_trip_and_secret_forms_are_not_public_ones(hybrid: bool) -> None:
    signer, reader = SigningKey.generate(hybrid=hybrid), AgreementKey.generate(hybrid=hybrid)

    assert SigningKey.from_bytes(signer.to_bytes()).verify_key == signer.verify_key
    assert VerifyKey.from_bytes(signer.verify_key.to_bytes()) == signer.verify_key
    assert AgreementKey.from_bytes(reader.to_bytes()).recipient_key == reader.recipient_key
    assert RecipientKey.from_bytes(reader.recipient_key.to_bytes()) == reader.recipient_key
    with pytest.raises(InvalidKey):
        VerifyKey.from_bytes(signer.to_bytes())
    with pytest.raises(InvalidKey):
        RecipientKey.from_bytes(reader.to_bytes())
    assert "key_id=" in repr(signer) and signer.to_bytes().hex() not in repr(signer)


def test_small_order_recipient_keys_are_refused() -> None:
    for u in (0, 1, 2**255 - 20):
        with pytest.raises(InvalidKey):
            RecipientKey.from_x25519(u.to_bytes(32, "little"))


# Small-order Ed25519 encodings, as in libsodium's blocklist: neutral, order 2, 4 and 8.
SMALL_ORDER_ED25519 = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
]


@pytest.mark.parametrize("encoded", SMALL_ORDER_ED25519)
def test_small_order_verify_keys_are_refused(encoded: str) -> None:
    with pytest.raises(InvalidKey):
        VerifyKey.from_ed25519(bytes.fromhex(encoded))


def test_verify_keys_off_the_curve_or_non_canonical_are_refused() -> None:
    off_curve = (2).to_bytes(32, "little")  # no x satisfies the curve equation for y = 2
    non_canonical = (2**255 - 19 + 3).to_bytes(32, "little")  # y = p + 3

    for encoded in (off_curve, non_canonical, b"\x01" * 31):
        with pytest.raises(InvalidKey):
            VerifyKey.from_ed25519(encoded)


# --- keystore -------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(secret=st.binary(min_size=1, max_size=128), passphrase=st.text(min_size=1, max_size=40))
def test_keystore_round_trips_and_refuses_a_wrong_passphrase(
    secret: bytes, passphrase: str
) -> None:
    blob = lock(secret, passphrase, kdf=FAST_KDF)

    assert unlock(blob, passphrase) == secret
    with pytest.raises(KeystoreLocked):
        unlock(blob, passphrase + "x")


def test_keystore_with_default_parameters_round_trips() -> None:
    secret = SigningKey.generate().to_bytes()

    blob = lock(secret, "correct horse battery staple")

    assert unlock(blob, "correct horse battery staple") == secret
    assert json.loads(blob)["kdf"]["memory_kib"] == 64 * 1024


def test_keystore_failures_are_one_error_whatever_was_altered() -> None:
    blob = lock(b"secret key bytes", "passphrase", kdf=FAST_KDF)
    document = json.loads(blob)
    altered_ciphertext = {**document, "ciphertext": "A" + document["ciphertext"][1:]}
    altered_params = {**document, "kdf": {**document["kdf"], "iterations": 2}}

    messages = set()
    for candidate in (altered_ciphertext, altered_params):
        with pytest.raises(KeystoreLocked) as caught:
            unlock(json.dumps(candidate).encode(), "passphrase")
        messages.add(caught.value.detail)
    with pytest.raises(KeystoreLocked) as caught:
        unlock(blob, "wrong passphrase")
    messages.add(caught.value.detail)
    assert len(messages) == 1


def test_keystore_passphrase_is_unicode_normalized() -> None:
    blob = lock(b"secret", "caf\u00e9", kdf=FAST_KDF)  # composed e-acute

    assert unlock(blob, "cafe\u0301") == b"secret"  # decomposed: the same passphrase


@pytest.mark.parametrize(
    "blob",
    [b"", b"not json", b"[]", b'{"format": "other"}', b"\xff\xfe"],
)
def test_non_keystores_are_refused_as_malformed(blob: bytes) -> None:
    with pytest.raises(BadKeystore):
        unlock(blob, "passphrase")


def test_keystore_refuses_hostile_parameters_and_empty_passphrases() -> None:
    document = json.loads(lock(b"secret", "passphrase", kdf=FAST_KDF))
    greedy = {**document, "kdf": {**document["kdf"], "memory_kib": 64 * 1024 * 1024}}

    with pytest.raises(BadKeystore):
        unlock(json.dumps(greedy).encode(), "passphrase")
    with pytest.raises(BadKeystore):
        lock(b"secret", "passphrase", kdf=Argon2Params(memory_kib=64, iterations=1, lanes=1))
    with pytest.raises(WeakPassphrase):
        lock(b"secret", "")
