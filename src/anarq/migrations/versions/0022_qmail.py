"""qmail: sealed messages, mailbox entries, labels, receipts, contacts

Revision ID: 0022
Revises: 0020
Create Date: 2026-11-25 03:27:07.931281
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qmail_contacts",
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "contact", name=op.f("pk_qmail_contacts")),
    )
    with op.batch_alter_table("qmail_contacts", schema=None) as batch_op:
        batch_op.create_index("ix_qmail_contacts_contact", ["contact"], unique=False)

    op.create_table(
        "qmail_entries",
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("folder", sa.String(length=10), nullable=False),
        sa.Column("previous_folder", sa.String(length=10), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("message_id", "owner", name=op.f("pk_qmail_entries")),
    )
    with op.batch_alter_table("qmail_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_qmail_entries_owner_folder", ["owner", "folder", "message_id"], unique=False
        )

    op.create_table(
        "qmail_labels",
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "owner", "label", name=op.f("pk_qmail_labels")),
    )
    with op.batch_alter_table("qmail_labels", schema=None) as batch_op:
        batch_op.create_index("ix_qmail_labels_owner_label", ["owner", "label"], unique=False)

    op.create_table(
        "qmail_messages",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("blob_cid", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.String(length=26), nullable=False),
        sa.Column("in_reply_to", sa.String(length=26), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qmail_messages")),
    )
    with op.batch_alter_table("qmail_messages", schema=None) as batch_op:
        batch_op.create_index("ix_qmail_messages_expires", ["expires_at"], unique=False)
        batch_op.create_index("ix_qmail_messages_thread", ["thread_id"], unique=False)

    op.create_table(
        "qmail_receipts",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qmail_receipts")),
    )
    with op.batch_alter_table("qmail_receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ux_qmail_receipts_one_per_kind", ["message_id", "kind", "recipient"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("qmail_receipts", schema=None) as batch_op:
        batch_op.drop_index("ux_qmail_receipts_one_per_kind")

    op.drop_table("qmail_receipts")
    with op.batch_alter_table("qmail_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_qmail_messages_thread")
        batch_op.drop_index("ix_qmail_messages_expires")

    op.drop_table("qmail_messages")
    with op.batch_alter_table("qmail_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_qmail_labels_owner_label")

    op.drop_table("qmail_labels")
    with op.batch_alter_table("qmail_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_qmail_entries_owner_folder")

    op.drop_table("qmail_entries")
    with op.batch_alter_table("qmail_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_qmail_contacts_contact")

    op.drop_table("qmail_contacts")
