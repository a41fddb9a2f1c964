"""qonsent consent receipts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 22:21:40.616434
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("qonsent_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.Text(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("qonsent_grants", schema=None) as batch_op:
        batch_op.drop_column("receipt")
