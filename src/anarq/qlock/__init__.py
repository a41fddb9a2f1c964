"""Qlock: signatures, sealed envelopes and keystores — few calls, safe defaults, PQ hybrid.

Importing the package gives the crypto library only; `module()` adds the node module
(distributed locks, and verify/seal over HTTP) and imports its parts on demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from anarq.qlock import shamir
from anarq.qlock.conditions import (
    TimeLock,
    check_preimage,
    hash_lock,
    new_preimage,
    read_time_lock,
    time_lock,
    time_lock_reclaim,
    time_unlock,
)
from anarq.qlock.conditions_errors import (
    BadHashLock,
    BadShares,
    BadSplit,
    BadStream,
    BadTimeLock,
    InconsistentShares,
    MalformedShare,
    StreamTruncated,
    TimeLocked,
    TooFewShares,
)
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
from anarq.qlock.keystore import INTERACTIVE, Argon2Params, lock, password_digest, unlock
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
from anarq.qlock.stream import (
    decrypt_stream,
    encrypt_stream,
    encrypt_stream_part,
    read_stream_header,
    rewrap_stream_header,
    start_stream,
    stream_recipients,
)

if TYPE_CHECKING:
    from fastapi import APIRouter

    from anarq.kernel import Kernel
    from anarq.kernel.module import Module

__all__ = [
    "INTERACTIVE",
    "AgreementKey",
    "Argon2Params",
    "BadEnvelope",
    "BadHashLock",
    "BadKeystore",
    "BadShares",
    "BadSignature",
    "BadSplit",
    "BadStream",
    "BadTimeLock",
    "InconsistentShares",
    "InvalidKey",
    "KeystoreLocked",
    "MalformedShare",
    "RecipientKey",
    "SigningKey",
    "StreamTruncated",
    "TimeLock",
    "TimeLocked",
    "TooFewShares",
    "VerifyKey",
    "WeakPassphrase",
    "WrongKey",
    "check_preimage",
    "decode_signature",
    "decrypt_stream",
    "encode_signature",
    "encrypt_stream",
    "encrypt_stream_part",
    "hash_lock",
    "lock",
    "module",
    "new_preimage",
    "open_sealed",
    "password_digest",
    "read_stream_header",
    "read_time_lock",
    "recipients_of",
    "rewrap",
    "rewrap_stream_header",
    "seal",
    "shamir",
    "sign",
    "sign_detached",
    "signature_algorithm",
    "start_stream",
    "stream_recipients",
    "time_lock",
    "time_lock_reclaim",
    "time_unlock",
    "unlock",
    "verify",
    "verify_detached",
]


def _build(kernel: Kernel, _needs: Mapping[str, Any]) -> Any:
    from anarq.qlock.service import QlockService

    return QlockService(kernel)


def _router() -> APIRouter:
    from anarq.qlock.api import router

    return router


def module() -> Module:
    """This package's `Module`, built on demand so importing the library stays cheap."""
    from anarq.kernel.module import Module
    from anarq.qlock import tables
    from anarq.qlock.cli import app

    return Module(
        name="qlock",
        summary="Distributed locks with fencing tokens; verify and seal for thin clients",
        build=_build,
        tables=(tables.leases,),
        router=_router,
        cli=app,
    )
