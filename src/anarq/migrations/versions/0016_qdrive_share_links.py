"""qdrive share links

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 00:16:08.596464
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qdrive_links",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("file_id", sa.String(length=26), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("password_salt", sa.LargeBinary(), nullable=True),
        sa.Column("password_hash", sa.LargeBinary(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_downloads", sa.Integer(), nullable=True),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qdrive_links")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_qdrive_links_token_sha256")),
    )
    with op.batch_alter_table("qdrive_links", schema=None) as batch_op:
        batch_op.create_index("ix_qdrive_links_file", ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("qdrive_links", schema=None) as batch_op:
        batch_op.drop_index("ix_qdrive_links_file")

    op.drop_table("qdrive_links")
