"""Qmail's request and response bodies. None of them carries message content in clear."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from anarq.qmail.tables import DID_MAX, LABEL_MAX
from anarq.qwallet.models import AssetCode, Units

Folder = Literal["inbox", "sent", "archive", "trash", "requests"]
FOLDERS: tuple[str, ...] = ("inbox", "sent", "archive", "trash", "requests")
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
RECIPIENTS_MAX = 100
# The sealed envelope travels as base64url text: 4/3 of its bytes, with room for padding.
ENVELOPE_TEXT_MAX_CHARS = 32 * 1024 * 1024

DID = Field(min_length=8, max_length=DID_MAX)
RecipientDid = Annotated[str, Field(min_length=8, max_length=DID_MAX)]


class PostageOffer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: AssetCode
    max_amount: Units = Field(gt=0, description="At most this, per recipient.")


class Threshold(BaseModel):
    """The reputation (0 to 1,000) a stranger needs for their mail to reach the inbox."""

    model_config = ConfigDict(extra="forbid")

    min_reputation: int = Field(ge=0, le=1000)


class Postage(BaseModel):
    """What mail from a stranger pays to reach `owner`'s inbox (paid to them)."""

    model_config = ConfigDict(extra="forbid")

    asset: AssetCode
    amount: Units = Field(gt=0, description="In the asset's smallest unit.")


class PostageInfo(Postage):
    owner: str


class SendRequest(BaseModel):
    """A sealed message and the identities it goes to (`to` and `cc`, as in the message)."""

    model_config = ConfigDict(extra="forbid")

    to: list[RecipientDid] = Field(min_length=1, max_length=RECIPIENTS_MAX)
    cc: list[RecipientDid] = Field(default_factory=list, max_length=RECIPIENTS_MAX)
    envelope: str = Field(
        min_length=1,
        max_length=ENVELOPE_TEXT_MAX_CHARS,
        description="The Qlock sealed envelope (base64url, unpadded or padded).",
    )
    in_reply_to: str | None = Field(default=None, min_length=1, max_length=26)
    expires_at: datetime | None = Field(
        default=None, description="Deleted for good (envelope and entries) at this time."
    )
    postage: PostageOffer | None = Field(
        default=None,
        description="What you will pay each recipient who asks postage of strangers, so "
        "that the message lands in their inbox rather than their requests.",
    )


class MessageInfo(BaseModel):
    """A message as the caller's mailbox holds it: metadata, never content."""

    id: str
    thread_id: str
    in_reply_to: str | None
    sender: str
    recipients: list[str]
    role: Literal["sender", "recipient"]
    folder: Folder
    labels: list[str]
    digest: str = Field(description="SHA-256 (hex) of the sealed envelope.")
    size_bytes: int
    sent_at: datetime
    received_at: datetime
    read_at: datetime | None
    expires_at: datetime | None


class MessagePage(BaseModel):
    messages: list[MessageInfo]
    next: str | None = Field(description="Pass as `before` for the next page; null at the end.")


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    folder: Folder


class LabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=LABEL_MAX, pattern=LABEL_PATTERN)


class ReadRequest(BaseModel):
    """Mark a message read; with `receipt`, a read receipt signed by the reader's key."""

    model_config = ConfigDict(extra="forbid")

    receipt: dict[str, Any] | None = None


class Receipt(BaseModel):
    id: str
    kind: Literal["delivery", "read"]
    recipient: str
    digest: str = Field(description="SHA-256 of the receipt's canonical JSON (its audit name).")
    document: dict[str, Any]
    created_at: datetime


class ReceiptProof(BaseModel):
    """A receipt, the audit entry that names it and that entry's inclusion proof."""

    receipt: Receipt
    audit_seq: int | None
    audit_leaf: str | None
    inclusion: dict[str, Any] | None


class Proof(BaseModel):
    message_id: str
    digest: str
    receipts: list[ReceiptProof]


class Contact(BaseModel):
    contact: str
    name: str | None
    added_at: datetime


class ContactRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact: str = DID
    name: str | None = Field(default=None, max_length=64)


class MailKey(BaseModel):
    """What a sender needs to seal to an identity, and a reader to check its signatures."""

    did: str
    key_id: str
    recipient_key: str = Field(description="Qlock recipient key (base64).")
    verify_key: str = Field(description="Qlock verify key (base64).")
