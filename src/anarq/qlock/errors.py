"""Qlock's errors: every refusal of a key, signature, envelope or keystore, with a stable code.

Each is a 4xx: the caller handed us bytes or a passphrase that do not do what they claim.
Messages say what is wrong without echoing secrets or hinting which secret byte failed.
"""

from __future__ import annotations

from anarq.kernel.errors import BadRequest


class InvalidKey(BadRequest):
    code = "qlock.invalid_key"
    title = "Not a valid key"


class BadSignature(BadRequest):
    code = "qlock.bad_signature"
    title = "Signature does not verify"


class BadEnvelope(BadRequest):
    code = "qlock.bad_envelope"
    title = "Sealed envelope is malformed or was tampered with"


class WrongKey(BadRequest):
    code = "qlock.wrong_key"
    title = "Envelope is not sealed to this key"


class BadKeystore(BadRequest):
    code = "qlock.bad_keystore"
    title = "Not a valid keystore document"


class KeystoreLocked(BadRequest):
    code = "qlock.keystore_locked"
    title = "Wrong passphrase, or the keystore was altered"


class WeakPassphrase(BadRequest):
    code = "qlock.weak_passphrase"
    title = "Passphrase refused"
