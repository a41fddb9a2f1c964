"""qindex: prominent-term vector and resource pattern index for PostgreSQL search

PostgreSQL ranks at most a bounded set of candidates per search, the documents holding
the query words prominently first (see `anarq.qindex.fulltext`). This adds, on
PostgreSQL only:

- `lead_vector`: a stripped tsvector of each document's prominent terms (in its title,
  or held at least twice), filled here from `search_vector`, with a GIN index;
- a `text_pattern_ops` index on `resource`, so Qonsent's pattern grants
  (`resource LIKE 'qdrive:file:%'`) join the search as index scans whatever the
  database's collation;
- `parallel_workers = 0` on `qindex_documents`: a search is a serial plan, so the
  candidates a LIMIT keeps are the same on every page of a walk;
- a GIN pending list of at most 512 kB on both vector indexes (4 MB by default): every
  search scans the whole pending list, which at 4 MB cost a busy index about 20 ms per
  search; indexing flushes it more often instead.

SQLite (FTS5) is unchanged.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-25 09:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

PENDING_LIST_KB = 512


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE qindex_documents ADD COLUMN lead_vector tsvector NOT NULL DEFAULT ''::tsvector"
    )
    # The same rule as `fulltext.lead_tsvector`: a title (weight A) position, or two.
    op.execute(
        "UPDATE qindex_documents SET lead_vector = coalesce(("
        "SELECT array_to_tsvector(array_agg(lexeme)) FROM unnest(search_vector) "
        "WHERE 'A' = ANY(weights) OR array_length(positions, 1) >= 2), ''::tsvector) "
        "WHERE search_vector <> ''::tsvector"
    )
    op.execute(
        "CREATE INDEX ix_qindex_documents_lead_vector ON qindex_documents USING gin (lead_vector)"
    )
    op.execute(
        "CREATE INDEX ix_qindex_documents_resource_pattern "
        "ON qindex_documents (resource text_pattern_ops)"
    )
    op.execute("ALTER TABLE qindex_documents SET (parallel_workers = 0)")
    for index in ("ix_qindex_documents_search_vector", "ix_qindex_documents_lead_vector"):
        op.execute(f"ALTER INDEX {index} SET (gin_pending_list_limit = {PENDING_LIST_KB})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX ix_qindex_documents_search_vector RESET (gin_pending_list_limit)")
    op.execute("ALTER TABLE qindex_documents RESET (parallel_workers)")
    op.execute("DROP INDEX ix_qindex_documents_resource_pattern")
    op.execute("DROP INDEX ix_qindex_documents_lead_vector")
    op.execute("ALTER TABLE qindex_documents DROP COLUMN lead_vector")
