"""qmail: a sealed envelope is stored once (unique digest); messages found by blob

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-25 04:00:26.365942
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("qmail_messages", schema=None) as batch_op:
        batch_op.create_index("ix_qmail_messages_blob", ["blob_cid"], unique=False)
        batch_op.create_index("ix_qmail_messages_digest", ["digest"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("qmail_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_qmail_messages_digest")
        batch_op.drop_index("ix_qmail_messages_blob")
