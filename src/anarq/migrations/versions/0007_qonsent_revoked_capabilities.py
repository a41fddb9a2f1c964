"""qonsent revoked capabilities

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 22:25:43.416564
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "qonsent_revoked_capabilities",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("revoked_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_qonsent_revoked_capabilities")),
    )


def downgrade() -> None:

    op.drop_table("qonsent_revoked_capabilities")
