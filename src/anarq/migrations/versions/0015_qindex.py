"""qindex documents terms pointers

The full-text index is made here per dialect (Core tables cannot declare it): an FTS5
virtual table on SQLite, a tsvector column with a GIN index on PostgreSQL.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 00:23:27.003740
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qindex_documents",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("resource", sa.String(length=300), nullable=False),
        sa.Column("module", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_qindex_documents")),
        sa.UniqueConstraint("resource", name=op.f("uq_qindex_documents_resource")),
    )
    with op.batch_alter_table("qindex_documents", schema=None) as batch_op:
        batch_op.create_index("ix_qindex_documents_kind", ["module", "type"], unique=False)
        batch_op.create_index("ix_qindex_documents_owner", ["owner"], unique=False)

    op.create_table(
        "qindex_pointer_tags",
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", "tag", name=op.f("pk_qindex_pointer_tags")),
    )
    with op.batch_alter_table("qindex_pointer_tags", schema=None) as batch_op:
        batch_op.create_index("ix_qindex_pointer_tags_tag", ["owner", "tag"], unique=False)

    op.create_table(
        "qindex_pointer_versions",
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cid", sa.String(length=100), nullable=False),
        sa.Column("prev_cid", sa.String(length=100), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", "version", name=op.f("pk_qindex_pointer_versions")),
    )
    op.create_table(
        "qindex_pointers",
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("cid", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name=op.f("pk_qindex_pointers")),
    )
    _create_full_text()
    op.create_table(
        "qindex_terms",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("docs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_qindex_terms")),
        sa.UniqueConstraint("term", name=op.f("uq_qindex_terms_term")),
    )


def _create_full_text() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Terms arrive made by Qindex (folded, space-separated): the tokenizer only splits.
        op.execute(
            "CREATE VIRTUAL TABLE qindex_fts USING fts5("
            "title, body, tokenize = 'unicode61 remove_diacritics 0', prefix = '2 3')"
        )
    else:
        op.execute(
            "ALTER TABLE qindex_documents "
            "ADD COLUMN search_vector tsvector NOT NULL DEFAULT ''::tsvector"
        )
        op.execute(
            "CREATE INDEX ix_qindex_documents_search_vector "
            "ON qindex_documents USING gin (search_vector)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE qindex_fts")
    op.drop_table("qindex_terms")
    op.drop_table("qindex_pointers")
    op.drop_table("qindex_pointer_versions")
    with op.batch_alter_table("qindex_pointer_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_qindex_pointer_tags_tag")

    op.drop_table("qindex_pointer_tags")
    with op.batch_alter_table("qindex_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_qindex_documents_owner")
        batch_op.drop_index("ix_qindex_documents_kind")

    op.drop_table("qindex_documents")
