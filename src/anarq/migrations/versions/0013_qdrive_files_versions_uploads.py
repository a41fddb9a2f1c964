"""qdrive files versions uploads

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 00:07:50.375023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qdrive_files",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("visibility", sa.String(length=10), nullable=False),
        sa.Column("media_type", sa.String(length=120), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trashed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qdrive_files")),
    )
    with op.batch_alter_table("qdrive_files", schema=None) as batch_op:
        batch_op.create_index("ix_qdrive_files_owner_path", ["owner", "path"], unique=False)
        batch_op.create_index(
            "ux_qdrive_files_live_path",
            ["owner", "path"],
            unique=True,
            postgresql_where=sa.text("trashed_at IS NULL"),
            sqlite_where=sa.text("trashed_at IS NULL"),
        )

    op.create_table(
        "qdrive_upload_parts",
        sa.Column("upload_id", sa.String(length=26), nullable=False),
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("blob_cid", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", "n", name=op.f("pk_qdrive_upload_parts")),
    )
    op.create_table(
        "qdrive_uploads",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("visibility", sa.String(length=10), nullable=False),
        sa.Column("media_type", sa.String(length=120), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qdrive_uploads")),
    )
    with op.batch_alter_table("qdrive_uploads", schema=None) as batch_op:
        batch_op.create_index("ix_qdrive_uploads_owner", ["owner"], unique=False)

    op.create_table(
        "qdrive_versions",
        sa.Column("file_id", sa.String(length=26), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("blob_cid", sa.String(length=100), nullable=False),
        sa.Column("unixfs_cid", sa.String(length=100), nullable=True),
        sa.Column("content_tag", sa.String(length=64), nullable=False),
        sa.Column("header", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("file_id", "version", name=op.f("pk_qdrive_versions")),
    )
    with op.batch_alter_table("qdrive_versions", schema=None) as batch_op:
        batch_op.create_index("ix_qdrive_versions_blob", ["blob_cid"], unique=False)
        batch_op.create_index("ix_qdrive_versions_tag", ["content_tag"], unique=False)
        batch_op.create_index("ix_qdrive_versions_unixfs", ["unixfs_cid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("qdrive_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_qdrive_versions_unixfs")
        batch_op.drop_index("ix_qdrive_versions_tag")
        batch_op.drop_index("ix_qdrive_versions_blob")

    op.drop_table("qdrive_versions")
    with op.batch_alter_table("qdrive_uploads", schema=None) as batch_op:
        batch_op.drop_index("ix_qdrive_uploads_owner")

    op.drop_table("qdrive_uploads")
    op.drop_table("qdrive_upload_parts")
    with op.batch_alter_table("qdrive_files", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_qdrive_files_live_path",
            postgresql_where=sa.text("trashed_at IS NULL"),
            sqlite_where=sa.text("trashed_at IS NULL"),
        )
        batch_op.drop_index("ix_qdrive_files_owner_path")

    op.drop_table("qdrive_files")
