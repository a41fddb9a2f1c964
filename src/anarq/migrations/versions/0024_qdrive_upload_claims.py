"""qdrive: a private upload claims a part's position for its bytes before encrypting them

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-25 03:50:13.916185
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("qdrive_uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_offset", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("claim_digest", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("qdrive_uploads", schema=None) as batch_op:
        batch_op.drop_column("claim_digest")
        batch_op.drop_column("claim_offset")
