"""qmask profiles and versions

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 00:24:53.454374
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qmask_profile_versions",
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("image", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "version", name=op.f("pk_qmask_profile_versions")),
    )
    op.create_table(
        "qmask_profiles",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qmask_profiles")),
    )
    with op.batch_alter_table("qmask_profiles", schema=None) as batch_op:
        batch_op.create_index("ux_qmask_profiles_owner_name", ["owner", "name"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("qmask_profiles", schema=None) as batch_op:
        batch_op.drop_index("ux_qmask_profiles_owner_name")

    op.drop_table("qmask_profiles")
    op.drop_table("qmask_profile_versions")
