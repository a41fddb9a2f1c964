"""node key and qerberos audit log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 22:03:37.373506
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "node_keys",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("did", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("sealed_private_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_keys")),
    )
    op.create_table(
        "qerberos_entries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("leaf_index", sa.BigInteger(), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("resource", sa.String(length=300), nullable=False),
        sa.Column("verdict", sa.String(length=10), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("leaf", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_qerberos_entries")),
        sa.UniqueConstraint("leaf_index", name=op.f("uq_qerberos_entries_leaf_index")),
    )
    with op.batch_alter_table("qerberos_entries", schema=None) as batch_op:
        batch_op.create_index("ix_qerberos_entries_actor", ["actor", "seq"], unique=False)
        batch_op.create_index("ix_qerberos_entries_pending", ["leaf_index", "seq"], unique=False)

    op.create_table(
        "qerberos_tree_heads",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signer", sa.String(length=200), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_qerberos_tree_heads")),
    )
    op.create_table(
        "qerberos_tree_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_qerberos_tree_nodes")),
    )


def downgrade() -> None:

    op.drop_table("qerberos_tree_nodes")
    op.drop_table("qerberos_tree_heads")
    with op.batch_alter_table("qerberos_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_qerberos_entries_pending")
        batch_op.drop_index("ix_qerberos_entries_actor")

    op.drop_table("qerberos_entries")
    op.drop_table("node_keys")
