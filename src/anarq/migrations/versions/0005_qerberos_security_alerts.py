"""qerberos security alerts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 22:17:24.712630
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "qerberos_alerts",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=14), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qerberos_alerts")),
    )
    with op.batch_alter_table("qerberos_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_qerberos_alerts_open", ["kind", "subject", "status"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("qerberos_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_qerberos_alerts_open")

    op.drop_table("qerberos_alerts")
