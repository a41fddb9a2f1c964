"""qchat: rooms, members, the room timeline, sealed group keys

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-25 03:41:39.381856
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qchat_events",
        sa.Column("room_id", sa.String(length=26), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("target_seq", sa.BigInteger(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("room_id", "seq", name=op.f("pk_qchat_events")),
    )
    with op.batch_alter_table("qchat_events", schema=None) as batch_op:
        batch_op.create_index("ix_qchat_events_target", ["room_id", "target_seq"], unique=False)

    op.create_table(
        "qchat_keys",
        sa.Column("room_id", sa.String(length=26), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "epoch", name=op.f("pk_qchat_keys")),
    )
    op.create_table(
        "qchat_members",
        sa.Column("room_id", sa.String(length=26), nullable=False),
        sa.Column("did", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("muted", sa.Boolean(), nullable=False),
        sa.Column("grant_id", sa.String(length=26), nullable=True),
        sa.Column("last_read_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "did", name=op.f("pk_qchat_members")),
    )
    with op.batch_alter_table("qchat_members", schema=None) as batch_op:
        batch_op.create_index("ix_qchat_members_did", ["did", "state"], unique=False)

    op.create_table(
        "qchat_rooms",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("visibility", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("e2e", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("key_ready", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qchat_rooms")),
    )
    with op.batch_alter_table("qchat_rooms", schema=None) as batch_op:
        batch_op.create_index("ix_qchat_rooms_visibility", ["visibility"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("qchat_rooms", schema=None) as batch_op:
        batch_op.drop_index("ix_qchat_rooms_visibility")

    op.drop_table("qchat_rooms")
    with op.batch_alter_table("qchat_members", schema=None) as batch_op:
        batch_op.drop_index("ix_qchat_members_did")

    op.drop_table("qchat_members")
    op.drop_table("qchat_keys")
    with op.batch_alter_table("qchat_events", schema=None) as batch_op:
        batch_op.drop_index("ix_qchat_events_target")

    op.drop_table("qchat_events")
