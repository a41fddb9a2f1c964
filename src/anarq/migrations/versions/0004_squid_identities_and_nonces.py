"""squid identities and nonces

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 22:11:45.343142
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "squid_identities",
        sa.Column("did", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("type", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("parent_did", sa.String(length=200), nullable=True),
        sa.Column("verification_level", sa.Integer(), nullable=False),
        sa.Column("governance", sa.String(length=12), nullable=False),
        sa.Column("privacy", sa.String(length=12), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("did", name=op.f("pk_squid_identities")),
    )
    with op.batch_alter_table("squid_identities", schema=None) as batch_op:
        batch_op.create_index("ix_squid_identities_parent", ["parent_did"], unique=False)

    op.create_table(
        "squid_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("did", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_squid_nonces")),
    )
    with op.batch_alter_table("squid_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_squid_nonces_expiry", ["expires_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("squid_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_squid_nonces_expiry")

    op.drop_table("squid_nonces")
    with op.batch_alter_table("squid_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_squid_identities_parent")

    op.drop_table("squid_identities")
