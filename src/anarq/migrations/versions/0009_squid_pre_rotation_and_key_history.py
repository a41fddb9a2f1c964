"""squid pre-rotation and key history

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 22:53:10.772104
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "squid_key_events",
        sa.Column("did", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("next_key_hash", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("did", "seq", name=op.f("pk_squid_key_events")),
    )
    with op.batch_alter_table("squid_identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_key_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("squid_identities", schema=None) as batch_op:
        batch_op.drop_column("next_key_hash")

    op.drop_table("squid_key_events")
