"""kernel and node tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24 21:11:00.698672
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kernel_consumed",
        sa.Column("subscription", sa.String(length=120), nullable=False),
        sa.Column("event_id", sa.String(length=26), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscription", "event_id", name=op.f("pk_kernel_consumed")),
    )
    op.create_table(
        "kernel_dead_letters",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subscription", sa.String(length=120), nullable=False),
        sa.Column("event_id", sa.String(length=26), nullable=False),
        sa.Column(
            "envelope", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_kernel_dead_letters")),
    )
    op.create_table(
        "kernel_deliveries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("subscription", sa.String(length=120), nullable=False),
        sa.Column("event_id", sa.String(length=26), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_kernel_deliveries")),
    )
    with op.batch_alter_table("kernel_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_kernel_deliveries_due", ["next_attempt_at"], unique=False)

    op.create_table(
        "kernel_outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("type", sa.String(length=120), nullable=False),
        sa.Column(
            "envelope", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_kernel_outbox")),
        sa.UniqueConstraint("id", name=op.f("uq_kernel_outbox_id")),
    )
    with op.batch_alter_table("kernel_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_kernel_outbox_pending", ["dispatched_at", "seq"], unique=False)

    op.create_table(
        "node_activity",
        sa.Column("event_type", sa.String(length=120), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_event_id", sa.String(length=26), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_type", name=op.f("pk_node_activity")),
    )
    op.create_table(
        "node_operator_tokens",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_operator_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_node_operator_tokens_token_sha256")),
    )
    op.create_table(
        "node_profile",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("contact", sa.String(length=320), nullable=False),
        sa.Column("avatar_cid", sa.String(length=100), nullable=True),
        sa.Column("avatar_media_type", sa.String(length=40), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_profile")),
    )
    op.create_table(
        "node_workers",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_workers")),
    )


def downgrade() -> None:
    op.drop_table("node_workers")
    op.drop_table("node_profile")
    op.drop_table("node_operator_tokens")
    op.drop_table("node_activity")
    with op.batch_alter_table("kernel_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_kernel_outbox_pending")

    op.drop_table("kernel_outbox")
    with op.batch_alter_table("kernel_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_kernel_deliveries_due")

    op.drop_table("kernel_deliveries")
    op.drop_table("kernel_dead_letters")
    op.drop_table("kernel_consumed")
