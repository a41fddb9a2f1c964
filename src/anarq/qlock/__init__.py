"""Qlock: signatures, sealed envelopes and keystores — few calls, safe defaults, PQ hybrid."""

from anarq.qlock.errors import (
    BadEnvelope,
    BadKeystore,
    BadSignature,
    InvalidKey,
    KeystoreLocked,
    WeakPassphrase,
    WrongKey,
)
from anarq.qlock.keys import AgreementKey, RecipientKey, SigningKey, VerifyKey
from anarq.qlock.keystore import INTERACTIVE, Argon2Params, lock, unlock
from anarq.qlock.seal import open_sealed, recipients_of, rewrap, seal
from anarq.qlock.sign import (
    decode_signature,
    encode_signature,
    sign,
    sign_detached,
    signature_algorithm,
    verify,
    verify_detached,
)

__all__ = [
    "INTERACTIVE",
    "AgreementKey",
    "Argon2Params",
    "BadEnvelope",
    "BadKeystore",
    "BadSignature",
    "InvalidKey",
    "KeystoreLocked",
    "RecipientKey",
    "SigningKey",
    "VerifyKey",
    "WeakPassphrase",
    "WrongKey",
    "decode_signature",
    "encode_signature",
    "lock",
    "open_sealed",
    "recipients_of",
    "rewrap",
    "seal",
    "sign",
    "sign_detached",
    "signature_algorithm",
    "unlock",
    "verify",
    "verify_detached",
]
