"""qdrive: bodies in segments; uploads encrypted once, as they arrive

A version's body becomes an ordered list of segments (one blob per upload part), so a
completed upload moves no data. Existing versions keep their single blob as segment 0.
Uploads still in progress were sealed part by part in the old way and cannot complete
under the new code: they are dropped (their clients start again; the orphaned part
blobs are unreferenced).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 00:30:26.842330
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qdrive_segments",
        sa.Column("file_id", sa.String(length=26), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("blob_cid", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("file_id", "version", "n", name=op.f("pk_qdrive_segments")),
    )
    with op.batch_alter_table("qdrive_segments", schema=None) as batch_op:
        batch_op.create_index("ix_qdrive_segments_blob", ["blob_cid"], unique=False)
    op.execute(
        "INSERT INTO qdrive_segments (file_id, version, n, blob_cid) "
        "SELECT file_id, version, 0, blob_cid FROM qdrive_versions"
    )

    op.execute("DELETE FROM qdrive_upload_parts")
    op.execute("DELETE FROM qdrive_uploads")
    with op.batch_alter_table("qdrive_upload_parts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digests", sa.LargeBinary(), nullable=False))
    with op.batch_alter_table("qdrive_uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("header", sa.LargeBinary(), nullable=True))

    with op.batch_alter_table("qdrive_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qdrive_versions_blob"))
        batch_op.drop_column("blob_cid")


def downgrade() -> None:
    op.execute("DELETE FROM qdrive_upload_parts")
    op.execute("DELETE FROM qdrive_uploads")
    with op.batch_alter_table("qdrive_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("blob_cid", sa.String(length=100), nullable=True))
    # Only single-segment bodies fit the old layout.
    op.execute(
        "UPDATE qdrive_versions SET blob_cid = (SELECT s.blob_cid FROM qdrive_segments s "
        "WHERE s.file_id = qdrive_versions.file_id AND s.version = qdrive_versions.version "
        "AND s.n = 0)"
    )
    with op.batch_alter_table("qdrive_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qdrive_versions_blob"), ["blob_cid"], unique=False)
    with op.batch_alter_table("qdrive_uploads", schema=None) as batch_op:
        batch_op.drop_column("header")
    with op.batch_alter_table("qdrive_upload_parts", schema=None) as batch_op:
        batch_op.drop_column("digests")
    with op.batch_alter_table("qdrive_segments", schema=None) as batch_op:
        batch_op.drop_index("ix_qdrive_segments_blob")
    op.drop_table("qdrive_segments")
