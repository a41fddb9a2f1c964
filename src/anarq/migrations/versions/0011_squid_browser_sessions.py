"""squid browser sessions

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 23:24:29.472703
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "squid_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("did", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_squid_sessions")),
    )


def downgrade() -> None:

    op.drop_table("squid_sessions")
