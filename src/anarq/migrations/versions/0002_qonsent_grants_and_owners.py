"""qonsent grants and owners

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 21:59:06.110132
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "qonsent_grants",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("grantor", sa.String(length=200), nullable=False),
        sa.Column("grantee", sa.String(length=200), nullable=False),
        sa.Column("resource", sa.String(length=300), nullable=False),
        sa.Column("actions", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qonsent_grants")),
    )
    with op.batch_alter_table("qonsent_grants", schema=None) as batch_op:
        batch_op.create_index("ix_qonsent_grants_grantor", ["grantor"], unique=False)
        batch_op.create_index("ix_qonsent_grants_lookup", ["grantee", "resource"], unique=False)

    op.create_table(
        "qonsent_owners",
        sa.Column("resource", sa.String(length=300), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resource", name=op.f("pk_qonsent_owners")),
    )
    with op.batch_alter_table("qonsent_owners", schema=None) as batch_op:
        batch_op.create_index("ix_qonsent_owners_owner", ["owner"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("qonsent_owners", schema=None) as batch_op:
        batch_op.drop_index("ix_qonsent_owners_owner")

    op.drop_table("qonsent_owners")
    with op.batch_alter_table("qonsent_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_qonsent_grants_lookup")
        batch_op.drop_index("ix_qonsent_grants_grantor")

    op.drop_table("qonsent_grants")
