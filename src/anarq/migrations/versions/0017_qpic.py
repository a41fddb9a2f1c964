"""qpic photos, derived files, albums, unlocks, orphans

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 00:38:54.621105
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qpic_album_photos",
        sa.Column("album_id", sa.String(length=26), nullable=False),
        sa.Column("photo_id", sa.String(length=26), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("album_id", "photo_id", name=op.f("pk_qpic_album_photos")),
    )
    with op.batch_alter_table("qpic_album_photos", schema=None) as batch_op:
        batch_op.create_index("ix_qpic_album_photos_photo", ["photo_id"], unique=False)

    op.create_table(
        "qpic_albums",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=26), nullable=True),
        sa.Column("passphrase_salt", sa.LargeBinary(), nullable=True),
        sa.Column("passphrase_hash", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qpic_albums")),
    )
    with op.batch_alter_table("qpic_albums", schema=None) as batch_op:
        batch_op.create_index("ix_qpic_albums_owner", ["owner"], unique=False)
        batch_op.create_index("ix_qpic_albums_parent", ["parent_id"], unique=False)

    op.create_table(
        "qpic_derived",
        sa.Column("file_id", sa.String(length=26), nullable=False),
        sa.Column("photo_id", sa.String(length=26), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_qpic_derived")),
    )
    with op.batch_alter_table("qpic_derived", schema=None) as batch_op:
        batch_op.create_index("ux_qpic_derived_photo_role", ["photo_id", "role"], unique=True)

    op.create_table(
        "qpic_orphans",
        sa.Column("file_id", sa.String(length=26), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_qpic_orphans")),
    )
    op.create_table(
        "qpic_photos",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("file_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=120), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_offset_minutes", sa.Integer(), nullable=True),
        sa.Column("taken_day", sa.String(length=10), nullable=False),
        sa.Column("taken_source", sa.String(length=10), nullable=False),
        sa.Column("camera_make", sa.String(length=100), nullable=True),
        sa.Column("camera_model", sa.String(length=100), nullable=True),
        sa.Column("has_gps", sa.Boolean(), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=True),
        sa.Column("video_note", sa.String(length=300), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qpic_photos")),
        sa.UniqueConstraint("file_id", name=op.f("uq_qpic_photos_file_id")),
    )
    with op.batch_alter_table("qpic_photos", schema=None) as batch_op:
        batch_op.create_index("ix_qpic_photos_owner_day", ["owner", "taken_day"], unique=False)
        batch_op.create_index(
            "ix_qpic_photos_owner_taken", ["owner", "taken_at", "id"], unique=False
        )

    op.create_table(
        "qpic_unlocks",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("album_id", sa.String(length=26), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_qpic_unlocks")),
    )
    with op.batch_alter_table("qpic_unlocks", schema=None) as batch_op:
        batch_op.create_index("ix_qpic_unlocks_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("qpic_unlocks", schema=None) as batch_op:
        batch_op.drop_index("ix_qpic_unlocks_expires")

    op.drop_table("qpic_unlocks")
    with op.batch_alter_table("qpic_photos", schema=None) as batch_op:
        batch_op.drop_index("ix_qpic_photos_owner_taken")
        batch_op.drop_index("ix_qpic_photos_owner_day")

    op.drop_table("qpic_photos")
    op.drop_table("qpic_orphans")
    with op.batch_alter_table("qpic_derived", schema=None) as batch_op:
        batch_op.drop_index("ux_qpic_derived_photo_role")

    op.drop_table("qpic_derived")
    with op.batch_alter_table("qpic_albums", schema=None) as batch_op:
        batch_op.drop_index("ix_qpic_albums_parent")
        batch_op.drop_index("ix_qpic_albums_owner")

    op.drop_table("qpic_albums")
    with op.batch_alter_table("qpic_album_photos", schema=None) as batch_op:
        batch_op.drop_index("ix_qpic_album_photos_photo")

    op.drop_table("qpic_album_photos")
