"""Qlock keys: signing (Ed25519, hybrid Ed25519 + ML-DSA-65) and recipient (X25519, X-Wing).

Every key has a self-describing byte form: one algorithm byte, then the raw parts. Public
and secret forms use different bytes (secret = public | 0x80), so a secret key can never be
read back as a public one. Every public key has a `key_id`: multibase base58btc of the
first 16 bytes of SHA-256 over its public byte form. `docs/formats.md` has the tables.

The hybrid recipient key is the 32-byte X-Wing seed of draft-connolly-cfrg-xwing-kem
(HPKE KEM 0x647A, MLKEM768-X25519): SHAKE-256 expands it into the ML-KEM-768 seed and the
X25519 key. Only `cryptography` computes primitives here; the only arithmetic is the
Edwards-to-Montgomery map did:key uses to derive an X25519 key from Ed25519, and the
point checks it needs.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Final

import gmpy2
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519

from anarq.qlock import b58
from anarq.qlock.errors import InvalidKey

# Algorithm bytes of the key forms; a signature carries its key's byte.
ALG_ED25519: Final = 0x01
ALG_ED25519_MLDSA65: Final = 0x02
ALG_X25519: Final = 0x11
ALG_MLKEM768_X25519: Final = 0x12
SECRET_FLAG: Final = 0x80

ALGORITHM_NAMES: Final[dict[int, str]] = {
    ALG_ED25519: "ed25519",
    ALG_ED25519_MLDSA65: "ed25519+mldsa65",
    ALG_X25519: "x25519",
    ALG_MLKEM768_X25519: "mlkem768x25519",
}

ED25519_KEY_BYTES: Final = 32
MLDSA65_SEED_BYTES: Final = 32
MLDSA65_PUBLIC_BYTES: Final = 1952
X25519_KEY_BYTES: Final = 32
MLKEM768_SEED_BYTES: Final = 64
MLKEM768_PUBLIC_BYTES: Final = 1184
XWING_SEED_BYTES: Final = 32
KEY_ID_DIGEST_BYTES: Final = 16

# The field prime and the Edwards constant d = -121665/121666 (RFC 8032 §5.1).
_P: Final = 2**255 - 19
_D: Final = -121665 * pow(121666, -1, _P) % _P
# Any clamped scalar sends a small-order point to zero, which cryptography refuses; a
# public constant is enough to ask "is this u-coordinate of small order?".
_SMALL_ORDER_PROBE: Final = x25519.X25519PrivateKey.from_private_bytes(bytes(range(32)))


def key_id_for(public_form: bytes) -> bytes:
    """The 16-byte digest that names a public key form (envelopes store this)."""
    return hashlib.sha256(public_form).digest()[:KEY_ID_DIGEST_BYTES]


def key_id_text(digest: bytes) -> str:
    """A key-id digest as text: multibase base58btc (`z…`)."""
    assert len(digest) == KEY_ID_DIGEST_BYTES
    return "z" + b58.encode(digest)


def _split(data: bytes, expected_tag: int, sizes: tuple[int, ...], what: str) -> list[bytes]:
    if len(data) != 1 + sum(sizes) or data[0] != expected_tag:
        raise InvalidKey(
            f"not a {what} key: expected {1 + sum(sizes)} bytes tagged {expected_tag:#04x}"
        )
    parts, offset = [], 1
    for size in sizes:
        parts.append(data[offset : offset + size])
        offset += size
    return parts


def _tag_of(data: bytes, allowed: tuple[int, ...], what: str) -> int:
    if not data or data[0] not in allowed:
        raise InvalidKey(f"not a {what}: unknown or missing algorithm byte")
    return data[0]


# --- did:key derivation (Ed25519 -> X25519) -------------------------------------------------


def _edwards_y(public_key: bytes) -> int:
    """The y-coordinate of an Ed25519 public key, refusing non-points (RFC 8032 §5.1.3)."""
    if len(public_key) != ED25519_KEY_BYTES:
        raise InvalidKey(f"an Ed25519 public key is {ED25519_KEY_BYTES} bytes")
    n = int.from_bytes(public_key, "little")
    x_is_odd, y = n >> 255, n & ((1 << 255) - 1)
    if y >= _P:
        raise InvalidKey("Ed25519 public key is not canonically encoded")
    y2 = y * y % _P
    # x^2 = (y^2 - 1) / (d y^2 + 1) must be a square; the quotient is one exactly when the
    # product is, which spares a field inversion.
    numerator, denominator = (y2 - 1) % _P, (_D * y2 + 1) % _P
    if numerator == 0 and x_is_odd:
        raise InvalidKey("Ed25519 public key is not canonically encoded")
    # The Legendre symbol (GMP's Jacobi symbol, p prime): a thousandth of pow()'s time.
    if numerator != 0 and gmpy2.jacobi(numerator * denominator, _P) != 1:
        raise InvalidKey("Ed25519 public key is not a point on the curve")
    return y


# y-coordinates of the eight points of small order (the neutral point, order 2, 4 and 8):
# a key there would verify signatures it never made. RFC 7748's map sends exactly these to
# the small-order X25519 u-coordinates.
_Y_ORDER_8: Final = 2707385501144840649318225287225658788936804267575313519463743609750303402022
_SMALL_ORDER_Y: Final = frozenset({1, _P - 1, 0, _Y_ORDER_8, _P - _Y_ORDER_8})


@functools.lru_cache(maxsize=65_536)
def _check_ed25519(public_key: bytes) -> None:
    """Refuse a public key that is no canonical point of the curve, or of small order.

    Remembered: request signatures and votes check the same keys again and again."""
    if _edwards_y(public_key) in _SMALL_ORDER_Y:
        raise InvalidKey("key is a point of small order; such keys are refused")


def _refuse_small_order(u_coordinate: bytes) -> x25519.X25519PublicKey:
    public = x25519.X25519PublicKey.from_public_bytes(u_coordinate)
    try:
        _SMALL_ORDER_PROBE.exchange(public)
    except ValueError:
        raise InvalidKey("key is a point of small order; such keys are refused") from None
    return public


def x25519_public_from_ed25519(public_key: bytes) -> bytes:
    """did:key's X25519 key for an Ed25519 public key: u = (1 + y) / (1 - y) mod p.

    Refuses non-canonical encodings, points off the curve and small-order points.
    """
    y = _edwards_y(public_key)
    if y == 1:  # the neutral element: 1 - y has no inverse
        raise InvalidKey("Ed25519 public key is the neutral point")
    u = (1 + y) * pow(1 - y, -1, _P) % _P
    encoded = u.to_bytes(X25519_KEY_BYTES, "little")
    _refuse_small_order(encoded)
    return encoded


def x25519_private_from_ed25519(seed: bytes) -> bytes:
    """did:key's X25519 private key for an Ed25519 seed: SHA-512(seed)[:32], clamped."""
    if len(seed) != ED25519_KEY_BYTES:
        raise InvalidKey(f"an Ed25519 seed is {ED25519_KEY_BYTES} bytes")
    scalar = bytearray(hashlib.sha512(seed).digest()[:X25519_KEY_BYTES])
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    return bytes(scalar)


# --- signing keys ---------------------------------------------------------------------------


class VerifyKey:
    """A public signing key: Ed25519, or Ed25519 + ML-DSA-65 (hybrid: both must verify)."""

    __slots__ = ("_ed25519", "_form", "_id", "_mldsa65")

    def __init__(
        self, ed25519_key: ed25519.Ed25519PublicKey, mldsa65_key: mldsa.MLDSA65PublicKey | None
    ) -> None:
        self._ed25519 = ed25519_key
        self._mldsa65 = mldsa65_key
        ed_raw = ed25519_key.public_bytes_raw()
        if mldsa65_key is None:
            self._form = bytes([ALG_ED25519]) + ed_raw
        else:
            self._form = bytes([ALG_ED25519_MLDSA65]) + ed_raw + mldsa65_key.public_bytes_raw()
        self._id = key_id_for(self._form)

    @classmethod
    def from_ed25519(cls, public_key: bytes) -> VerifyKey:
        """A classical key from 32 raw Ed25519 bytes; refuses non-points and small order."""
        if not isinstance(public_key, bytes):
            raise InvalidKey("an Ed25519 public key is bytes")
        _check_ed25519(public_key)
        return cls(ed25519.Ed25519PublicKey.from_public_bytes(public_key), None)

    @classmethod
    def from_bytes(cls, data: bytes) -> VerifyKey:
        tag = _tag_of(data, (ALG_ED25519, ALG_ED25519_MLDSA65), "public signing key")
        if tag == ALG_ED25519:
            (ed_raw,) = _split(data, tag, (ED25519_KEY_BYTES,), "ed25519")
            return cls.from_ed25519(ed_raw)
        ed_raw, pq_raw = _split(data, tag, (ED25519_KEY_BYTES, MLDSA65_PUBLIC_BYTES), "hybrid")
        classical = cls.from_ed25519(ed_raw)
        try:
            pq = mldsa.MLDSA65PublicKey.from_public_bytes(pq_raw)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InvalidKey(f"not an ML-DSA-65 public key: {exc}") from None
        return cls(classical._ed25519, pq)

    def to_bytes(self) -> bytes:
        return self._form

    def ed25519_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key (what did:key encodes)."""
        return self._form[1 : 1 + ED25519_KEY_BYTES]

    def mldsa65_bytes(self) -> bytes | None:
        """The raw ML-DSA-65 public key of a hybrid key (FIPS 204 encoding), else None."""
        return None if self._mldsa65 is None else self._mldsa65.public_bytes_raw()

    @property
    def algorithm(self) -> str:
        return ALGORITHM_NAMES[self._form[0]]

    @property
    def is_hybrid(self) -> bool:
        return self._mldsa65 is not None

    @property
    def key_id(self) -> str:
        return key_id_text(self._id)

    def derive_recipient_key(self) -> RecipientKey:
        """The classical X25519 recipient key did:key derives from the Ed25519 half."""
        return RecipientKey.from_x25519(x25519_public_from_ed25519(self.ed25519_bytes()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other._form == self._form

    def __hash__(self) -> int:
        return hash(self._form)

    def __repr__(self) -> str:
        return f"VerifyKey({self.algorithm}, key_id={self.key_id})"


class SigningKey:
    """A secret signing key; `sign.sign` uses it. Hybrid keys hold both halves."""

    __slots__ = ("_ed25519", "_mldsa65", "_verify_key")

    def __init__(
        self, ed25519_key: ed25519.Ed25519PrivateKey, mldsa65_key: mldsa.MLDSA65PrivateKey | None
    ) -> None:
        self._ed25519 = ed25519_key
        self._mldsa65 = mldsa65_key
        self._verify_key = VerifyKey(
            ed25519_key.public_key(), None if mldsa65_key is None else mldsa65_key.public_key()
        )

    @classmethod
    def generate(cls, *, hybrid: bool = True) -> SigningKey:
        """A fresh key; hybrid (post-quantum) unless `hybrid=False` is asked for."""
        pq = mldsa.MLDSA65PrivateKey.generate() if hybrid else None
        return cls(ed25519.Ed25519PrivateKey.generate(), pq)

    @classmethod
    def from_seeds(cls, ed25519_seed: bytes, mldsa65_seed: bytes | None = None) -> SigningKey:
        """From raw seeds: the 32-byte RFC 8032 secret key, and the 32-byte FIPS 204 seed."""
        if len(ed25519_seed) != ED25519_KEY_BYTES:
            raise InvalidKey(f"an Ed25519 seed is {ED25519_KEY_BYTES} bytes")
        pq = None
        if mldsa65_seed is not None:
            if len(mldsa65_seed) != MLDSA65_SEED_BYTES:
                raise InvalidKey(f"an ML-DSA-65 seed is {MLDSA65_SEED_BYTES} bytes")
            pq = mldsa.MLDSA65PrivateKey.from_seed_bytes(mldsa65_seed)
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(ed25519_seed), pq)

    @classmethod
    def from_bytes(cls, data: bytes) -> SigningKey:
        secret_tags = (ALG_ED25519 | SECRET_FLAG, ALG_ED25519_MLDSA65 | SECRET_FLAG)
        tag = _tag_of(data, secret_tags, "secret signing key")
        if tag == secret_tags[0]:
            (ed_seed,) = _split(data, tag, (ED25519_KEY_BYTES,), "secret ed25519")
            return cls.from_seeds(ed_seed)
        ed_seed, pq_seed = _split(
            data, tag, (ED25519_KEY_BYTES, MLDSA65_SEED_BYTES), "secret hybrid"
        )
        return cls.from_seeds(ed_seed, pq_seed)

    def to_bytes(self) -> bytes:
        """The secret form; keep it in a keystore (`keystore.lock`), never in the clear."""
        tag = self._verify_key.to_bytes()[0] | SECRET_FLAG
        pq = b"" if self._mldsa65 is None else self._mldsa65.private_bytes_raw()
        return bytes([tag]) + self.ed25519_seed() + pq

    def ed25519_seed(self) -> bytes:
        """The raw 32-byte Ed25519 secret key (RFC 8032 §5.1.5 input)."""
        return self._ed25519.private_bytes_raw()

    def mldsa65_seed(self) -> bytes | None:
        """The 32-byte ML-DSA-65 seed (FIPS 204 ξ) of a hybrid key, else None."""
        return None if self._mldsa65 is None else self._mldsa65.private_bytes_raw()

    @property
    def verify_key(self) -> VerifyKey:
        return self._verify_key

    @property
    def algorithm(self) -> str:
        return self._verify_key.algorithm

    @property
    def is_hybrid(self) -> bool:
        return self._mldsa65 is not None

    @property
    def key_id(self) -> str:
        return self._verify_key.key_id

    def derive_agreement_key(self) -> AgreementKey:
        """The classical X25519 key did:key derives from the Ed25519 half."""
        return AgreementKey.from_x25519(x25519_private_from_ed25519(self.ed25519_seed()))

    def __repr__(self) -> str:
        return f"SigningKey({self.algorithm}, key_id={self.key_id})"


# --- recipient keys -------------------------------------------------------------------------


class RecipientKey:
    """A public key to seal to: X25519, or X-Wing (ML-KEM-768 + X25519, post-quantum)."""

    __slots__ = ("_form", "_hpke", "_id")

    def __init__(
        self, hpke_key: x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey, form: bytes
    ) -> None:
        self._hpke = hpke_key
        self._form = form
        self._id = key_id_for(form)

    @classmethod
    def from_x25519(cls, public_key: bytes) -> RecipientKey:
        """A classical key from 32 raw X25519 bytes; refuses small-order points."""
        if len(public_key) != X25519_KEY_BYTES:
            raise InvalidKey(f"an X25519 public key is {X25519_KEY_BYTES} bytes")
        return cls(_refuse_small_order(public_key), bytes([ALG_X25519]) + public_key)

    @classmethod
    def from_bytes(cls, data: bytes) -> RecipientKey:
        tag = _tag_of(data, (ALG_X25519, ALG_MLKEM768_X25519), "recipient key")
        if tag == ALG_X25519:
            (raw,) = _split(data, tag, (X25519_KEY_BYTES,), "x25519")
            return cls.from_x25519(raw)
        pq_raw, x_raw = _split(data, tag, (MLKEM768_PUBLIC_BYTES, X25519_KEY_BYTES), "X-Wing")
        try:
            pq = mlkem.MLKEM768PublicKey.from_public_bytes(pq_raw)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InvalidKey(f"not an ML-KEM-768 public key: {exc}") from None
        return cls(hpke.MLKEM768X25519PublicKey(pq, _refuse_small_order(x_raw)), data)

    def to_bytes(self) -> bytes:
        return self._form

    def x25519_bytes(self) -> bytes:
        """The raw 32-byte X25519 public key (the classical half of an X-Wing key)."""
        return self._form[-X25519_KEY_BYTES:]

    @property
    def algorithm(self) -> str:
        return ALGORITHM_NAMES[self._form[0]]

    @property
    def is_hybrid(self) -> bool:
        return self._form[0] == ALG_MLKEM768_X25519

    @property
    def key_id(self) -> str:
        return key_id_text(self._id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecipientKey) and other._form == self._form

    def __hash__(self) -> int:
        return hash(self._form)

    def __repr__(self) -> str:
        return f"RecipientKey({self.algorithm}, key_id={self.key_id})"


class AgreementKey:
    """A secret key that opens sealed envelopes: X25519, or an X-Wing seed (hybrid)."""

    __slots__ = ("_hpke", "_recipient_key", "_secret")

    def __init__(
        self,
        hpke_key: x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey,
        recipient_key: RecipientKey,
        secret_form: bytes,
    ) -> None:
        self._hpke = hpke_key
        self._recipient_key = recipient_key
        self._secret = secret_form

    @classmethod
    def generate(cls, *, hybrid: bool = True) -> AgreementKey:
        """A fresh key; hybrid (post-quantum) unless `hybrid=False` is asked for."""
        if hybrid:
            return cls.from_xwing_seed(os.urandom(XWING_SEED_BYTES))
        return cls.from_x25519(x25519.X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_x25519(cls, private_key: bytes) -> AgreementKey:
        if len(private_key) != X25519_KEY_BYTES:
            raise InvalidKey(f"an X25519 private key is {X25519_KEY_BYTES} bytes")
        key = x25519.X25519PrivateKey.from_private_bytes(private_key)
        public = RecipientKey.from_x25519(key.public_key().public_bytes_raw())
        return cls(key, public, bytes([ALG_X25519 | SECRET_FLAG]) + private_key)

    @classmethod
    def from_xwing_seed(cls, seed: bytes) -> AgreementKey:
        """A hybrid key from a 32-byte X-Wing seed (SHAKE-256 -> ML-KEM-768 seed, X25519)."""
        if len(seed) != XWING_SEED_BYTES:
            raise InvalidKey(f"an X-Wing seed is {XWING_SEED_BYTES} bytes")
        expanded = hashlib.shake_256(seed).digest(MLKEM768_SEED_BYTES + X25519_KEY_BYTES)
        pq = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:MLKEM768_SEED_BYTES])
        classical = x25519.X25519PrivateKey.from_private_bytes(expanded[MLKEM768_SEED_BYTES:])
        form = (
            bytes([ALG_MLKEM768_X25519])
            + pq.public_key().public_bytes_raw()
            + classical.public_key().public_bytes_raw()
        )
        public = RecipientKey.from_bytes(form)
        secret = bytes([ALG_MLKEM768_X25519 | SECRET_FLAG]) + seed
        return cls(hpke.MLKEM768X25519PrivateKey(pq, classical), public, secret)

    @classmethod
    def from_bytes(cls, data: bytes) -> AgreementKey:
        secret_tags = (ALG_X25519 | SECRET_FLAG, ALG_MLKEM768_X25519 | SECRET_FLAG)
        tag = _tag_of(data, secret_tags, "secret recipient key")
        if tag == secret_tags[0]:
            (raw,) = _split(data, tag, (X25519_KEY_BYTES,), "secret x25519")
            return cls.from_x25519(raw)
        (seed,) = _split(data, tag, (XWING_SEED_BYTES,), "secret X-Wing")
        return cls.from_xwing_seed(seed)

    def to_bytes(self) -> bytes:
        """The secret form; keep it in a keystore (`keystore.lock`), never in the clear."""
        return self._secret

    @property
    def recipient_key(self) -> RecipientKey:
        return self._recipient_key

    @property
    def algorithm(self) -> str:
        return self._recipient_key.algorithm

    @property
    def is_hybrid(self) -> bool:
        return self._recipient_key.is_hybrid

    @property
    def key_id(self) -> str:
        return self._recipient_key.key_id

    def __repr__(self) -> str:
        return f"AgreementKey({self.algorithm}, key_id={self.key_id})"
