"""Qmail's tables: messages (sealed, in blob storage), one mailbox entry per reader, labels,
delivery and read receipts, contacts. No column holds message content."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200
LABEL_MAX = 40

# One row per message sent: who sent it, where its sealed envelope is, how it threads.
messages = Table(
    "qmail_messages",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("sender", String(DID_MAX), nullable=False),
    # SHA-256 (hex) of the sealed envelope: what receipts certify.
    Column("digest", String(64), nullable=False),
    Column("blob_cid", String(100), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("thread_id", String(26), nullable=False),
    Column("in_reply_to", String(26), nullable=True),
    Column("sent_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
)
# A sealed envelope is sent once (a copy would share its blob): unique, and what the
# check before a send looks up.
Index("ix_qmail_messages_digest", messages.c.digest, unique=True)
Index("ix_qmail_messages_blob", messages.c.blob_cid)
Index("ix_qmail_messages_thread", messages.c.thread_id)
Index("ix_qmail_messages_expires", messages.c.expires_at)

# A message in one identity's mailbox: each recipient's copy, and the sender's (`sent`).
entries = Table(
    "qmail_entries",
    metadata,
    Column("message_id", String(26), primary_key=True),
    Column("owner", String(DID_MAX), primary_key=True),
    Column("role", String(10), nullable=False),  # sender | recipient
    Column("folder", String(10), nullable=False),  # inbox sent archive trash requests
    # Where a trashed message came from, so it can be restored there.
    Column("previous_folder", String(10), nullable=True),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("read_at", UtcDateTime(), nullable=True),
)
Index("ix_qmail_entries_owner_folder", entries.c.owner, entries.c.folder, entries.c.message_id)

labels = Table(
    "qmail_labels",
    metadata,
    Column("message_id", String(26), primary_key=True),
    Column("owner", String(DID_MAX), primary_key=True),
    Column("label", String(LABEL_MAX), primary_key=True),
)
Index("ix_qmail_labels_owner_label", labels.c.owner, labels.c.label)

# Signed receipts: `delivery` (by the node, on storing into a mailbox) and `read` (by the
# reader's own key, when the reader chooses to send one). The document is the signed JSON.
receipts = Table(
    "qmail_receipts",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("message_id", String(26), nullable=False),
    Column("kind", String(10), nullable=False),  # delivery | read
    Column("recipient", String(DID_MAX), nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256 of the canonical document
    Column("document", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
Index(
    "ux_qmail_receipts_one_per_kind",
    receipts.c.message_id,
    receipts.c.kind,
    receipts.c.recipient,
    unique=True,
)

# Whom an identity accepts mail from straight into its inbox.
contacts = Table(
    "qmail_contacts",
    metadata,
    Column("owner", String(DID_MAX), primary_key=True),
    Column("contact", String(DID_MAX), primary_key=True),
    Column("name", String(64), nullable=True),
    Column("added_at", UtcDateTime(), nullable=False),
)
Index("ix_qmail_contacts_contact", contacts.c.contact)

# What mail from a stranger must pay to land in the inbox instead of `requests`.
postage = Table(
    "qmail_postage",
    metadata,
    Column("owner", String(DID_MAX), primary_key=True),
    Column("asset", String(16), nullable=False),
    Column("amount", String(40), nullable=False),  # the asset's smallest unit, as text
    Column("updated_at", UtcDateTime(), nullable=False),
)

# The reputation a stranger needs for their mail to reach the owner's inbox.
thresholds = Table(
    "qmail_thresholds",
    metadata,
    Column("owner", String(DID_MAX), primary_key=True),
    Column("min_reputation", Integer, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

TABLES = (messages, entries, labels, receipts, contacts, postage, thresholds)
