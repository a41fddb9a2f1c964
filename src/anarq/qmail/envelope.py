"""The mail formats: a signed message sealed to its readers, and signed receipts.

A message is JSON (`anarq-mail/v1`), signed by its sender with Qlock (hybrid Ed25519 +
ML-DSA-65 for a hybrid identity) and sealed with Qlock's multi-recipient `seal` to every
recipient and the sender. The node only ever sees the sealed bytes. These functions run
where the keys are: in the CLI or any SDK client; the node uses only `receipt_*`.

    sealed = seal(canonical({"format", "message": {...}, "signature": {alg, kid, sig}}),
                  readers, aad=b"anarq/qmail/v1")

A receipt (`anarq-mail-receipt/v1`) names the message id, the SHA-256 of the sealed
envelope, the recipient and a time; `proof` is the issuer's detached signature over the
canonical JSON without `proof`. Delivery receipts are issued by the node, read receipts by
the reader.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from anarq.qlock import (
    AgreementKey,
    BadEnvelope,
    BadSignature,
    RecipientKey,
    SigningKey,
    VerifyKey,
    WrongKey,
    open_sealed,
    seal,
    sign_detached,
    verify_detached,
)

MESSAGE_FORMAT: Final = "anarq-mail/v1"
RECEIPT_FORMAT: Final = "anarq-mail-receipt/v1"
AAD: Final = b"anarq/qmail/v1"
SUBJECT_MAX_CHARS: Final = 998  # RFC 5322's line limit, as a familiar bound
BODY_MAX_BYTES: Final = 1024 * 1024
ATTACHMENTS_MAX: Final = 32


class MessageInvalid(Exception):
    """The sealed message cannot be trusted: not for this key, altered, or badly signed."""


def canonical(value: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes that are signed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def envelope_digest(envelope: bytes) -> str:
    return hashlib.sha256(envelope).hexdigest()


def compose(
    *,
    sender: str,
    to: list[str],
    cc: list[str] | None = None,
    subject: str,
    body: str,
    sent_at: str,
    attachments: list[dict[str, Any]] | None = None,
    in_reply_to: str | None = None,
    expires_at: str | None = None,
) -> dict[str, Any]:
    """The message fields, checked against the format's bounds."""
    if len(subject) > SUBJECT_MAX_CHARS:
        raise ValueError(f"a subject is at most {SUBJECT_MAX_CHARS} characters")
    if len(body.encode()) > BODY_MAX_BYTES:
        raise ValueError(f"a body is at most {BODY_MAX_BYTES} bytes; attach larger content")
    if len(attachments or []) > ATTACHMENTS_MAX:
        raise ValueError(f"a message has at most {ATTACHMENTS_MAX} attachments")
    return {
        "from": sender,
        "to": list(to),
        "cc": list(cc or []),
        "subject": subject,
        "body": body,
        "attachments": list(attachments or []),
        "in_reply_to": in_reply_to,
        "sent_at": sent_at,
        "expires_at": expires_at,
    }


def seal_message(key: SigningKey, message: dict[str, Any], readers: list[RecipientKey]) -> bytes:
    """Sign `message` with the sender's key and seal it to `readers` (sender included)."""
    signed = {
        "format": MESSAGE_FORMAT,
        "message": message,
        "signature": sign_detached(key, canonical(message)),
    }
    return seal(canonical(signed), readers, aad=AAD)


@dataclass(frozen=True)
class OpenedMessage:
    message: dict[str, Any]
    signature: dict[str, Any]

    @property
    def sender(self) -> str:
        return str(self.message["from"])


def open_message(envelope: bytes, key: AgreementKey) -> OpenedMessage:
    """Open a sealed message with the reader's key; the signature is checked by `verify_sender`."""
    try:
        document = json.loads(open_sealed(envelope, key, aad=AAD))
    except (BadEnvelope, WrongKey) as exc:
        raise MessageInvalid(f"cannot open the message: {exc}") from None
    except ValueError:
        raise MessageInvalid("the sealed message is not JSON") from None
    if (
        not isinstance(document, dict)
        or document.get("format") != MESSAGE_FORMAT
        or not isinstance(document.get("message"), dict)
        or not isinstance(document.get("signature"), dict)
        or not isinstance(document["message"].get("from"), str)
    ):
        raise MessageInvalid(f"the sealed content is not an {MESSAGE_FORMAT} message")
    return OpenedMessage(document["message"], document["signature"])


def verify_sender(opened: OpenedMessage, sender: str, sender_key: VerifyKey) -> None:
    """Check the message says it is from `sender` and that `sender_key` signed it."""
    if opened.sender != sender:
        raise MessageInvalid(f"the message claims to be from {opened.sender}, not {sender}")
    try:
        verify_detached(sender_key, canonical(opened.message), opened.signature)
    except BadSignature as exc:
        raise MessageInvalid(f"the sender's signature does not verify: {exc}") from None


# Receipts ------------------------------------------------------------------------------


def receipt(
    *, kind: str, message_id: str, digest: str, recipient: str, time: str, issuer: str
) -> dict[str, Any]:
    """An unsigned receipt; `sign_receipt` adds its proof."""
    assert kind in ("delivery", "read"), kind
    return {
        "format": RECEIPT_FORMAT,
        "kind": kind,
        "message_id": message_id,
        "digest": digest,
        "recipient": recipient,
        "time": time,
        "issuer": issuer,
    }


def sign_receipt(key: SigningKey, document: dict[str, Any]) -> dict[str, Any]:
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    return {**unsigned, "proof": sign_detached(key, canonical(unsigned))}


def receipt_digest(document: dict[str, Any]) -> str:
    """SHA-256 of the receipt's canonical JSON, proof included: the name the audit log records."""
    return hashlib.sha256(canonical(document)).hexdigest()


def verify_receipt(document: dict[str, Any], issuer_key: VerifyKey) -> None:
    """Raise `MessageInvalid` unless `issuer_key` signed this receipt."""
    if document.get("format") != RECEIPT_FORMAT or not isinstance(document.get("proof"), dict):
        raise MessageInvalid(f"not an {RECEIPT_FORMAT} document")
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    try:
        verify_detached(issuer_key, canonical(unsigned), document["proof"])
    except BadSignature as exc:
        raise MessageInvalid(f"the receipt's signature does not verify: {exc}") from None
