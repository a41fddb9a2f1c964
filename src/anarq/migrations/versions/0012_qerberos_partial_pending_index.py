"""qerberos: a partial index for entries pending integration

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_PENDING = sa.text("leaf_index IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("qerberos_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_qerberos_entries_pending")
        batch_op.create_index(
            "ix_qerberos_entries_pending",
            ["seq"],
            unique=False,
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("qerberos_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_qerberos_entries_pending")
        batch_op.create_index("ix_qerberos_entries_pending", ["leaf_index", "seq"], unique=False)
