"""qmail: postage, what mail from strangers pays a recipient to reach their inbox

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04 03:46:11.889711
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qmail_postage",
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_qmail_postage")),
    )


def downgrade() -> None:
    op.drop_table("qmail_postage")
