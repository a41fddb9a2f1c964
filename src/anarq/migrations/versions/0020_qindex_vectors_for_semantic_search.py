"""qindex: a vector per document for semantic search (empty until the embedder runs)

Revision ID: 0020
Revises: 0018
Create Date: 2026-11-25 03:10:04.988618
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qindex_vectors",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qindex_vectors")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("qindex_vectors", schema=None) as batch_op:
        batch_op.create_index("ix_qindex_vectors_document", ["seq", "model"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("qindex_vectors", schema=None) as batch_op:
        batch_op.drop_index("ix_qindex_vectors_document")

    op.drop_table("qindex_vectors")
