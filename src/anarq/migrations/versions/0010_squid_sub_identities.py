"""squid sub-identities

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 23:09:39.138942
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "squid_aid_counts",
        sa.Column("root_did", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("root_did", name=op.f("pk_squid_aid_counts")),
    )
    with op.batch_alter_table("squid_identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_commitment", sa.String(length=64), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("squid_identities", schema=None) as batch_op:
        batch_op.drop_column("link_commitment")

    op.drop_table("squid_aid_counts")
