"""Qindex's tables: searchable documents, the vocabulary of indexed terms, document
vectors for semantic search, and pointers.

The full-text index itself is not a Core table. Embedded (SQLite) it is the FTS5
virtual table `qindex_fts` (rowid = `qindex_documents.seq`); in cluster mode
(PostgreSQL) it is the `search_vector` tsvector column of `qindex_documents` and its GIN
index. Both are created by migration 0015 for their dialect only (0026 adds the
PostgreSQL search helpers below), and the migration environment leaves them out of the
code-versus-schema comparison (`anarq.migrations.include_object`).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, LargeBinary, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata
from anarq.kernel.tables import SequenceKey

DID_MAX = 200
RESOURCE_MAX = 300
MODULE_MAX = 20
TYPE_MAX = 40
TITLE_MAX = 500
TERM_MAX = 64
KEY_MAX = 200
TAG_MAX = 40
CID_MAX = 100
MODEL_MAX = 60

# Made by migration 0015 for one dialect, not declared here (see the module docstring).
FULL_TEXT_TABLE = "qindex_fts"
FULL_TEXT_COLUMN = "search_vector"
FULL_TEXT_INDEX = "ix_qindex_documents_search_vector"
# Made by migration 0026 on PostgreSQL: the prominent terms (title, or held twice) as a
# stripped tsvector with its own GIN index, and a pattern index on `resource` so that
# Qonsent's pattern grants (`LIKE 'qdrive:file:%'`) are index scans.
LEAD_TEXT_COLUMN = "lead_vector"
LEAD_TEXT_INDEX = "ix_qindex_documents_lead_vector"
RESOURCE_PATTERN_INDEX = "ix_qindex_documents_resource_pattern"

documents = Table(
    "qindex_documents",
    metadata,
    # The full-text index's row id: FTS5 rowids are integers.
    Column("seq", SequenceKey, primary_key=True, autoincrement=True),
    # What the document describes, in Qonsent's `module:type:id` form; one document each.
    Column("resource", String(RESOURCE_MAX), nullable=False, unique=True),
    Column("module", String(MODULE_MAX), nullable=False),
    Column("type", String(TYPE_MAX), nullable=False),
    Column("owner", String(DID_MAX), nullable=False),
    Column("title", String(TITLE_MAX), nullable=False),
    # The indexed text as given (bounded): snippets are cut from it, and re-indexing
    # reads it to know which vocabulary terms the old version held.
    Column("body", Text, nullable=False),
    # Small display facts the indexing module chose (a file's path, media type, size).
    Column("meta", JSON, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("indexed_at", UtcDateTime(), nullable=False),
)
Index("ix_qindex_documents_owner", documents.c.owner)
Index("ix_qindex_documents_kind", documents.c.module, documents.c.type)

# Every term a document has held, with how many documents hold it now: typo tolerance
# looks for near terms here. Rows are never deleted (a term no document holds keeps
# `docs = 0`), so `seq` only grows and each worker's in-memory copy catches up by it.
terms = Table(
    "qindex_terms",
    metadata,
    Column("seq", SequenceKey, primary_key=True, autoincrement=True),
    Column("term", String(TERM_MAX), nullable=False, unique=True),
    Column("docs", Integer, nullable=False),
)

# Semantic search: each document's vector under an embedding model (float32, little
# endian). A document's new vector is a new row (its old one deleted), so `id` only grows
# and each worker's in-memory copy catches up by it.
vectors = Table(
    "qindex_vectors",
    metadata,
    Column("id", SequenceKey, primary_key=True, autoincrement=True),
    Column("seq", SequenceKey, nullable=False),
    Column("model", String(MODEL_MAX), nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Never reuse an id, even the highest one after its row is deleted (SQLite would).
    sqlite_autoincrement=True,
)
Index("ix_qindex_vectors_document", vectors.c.seq, vectors.c.model, unique=True)

# Mutable pointers: an identity's key → the current CID; one row per key.
pointers = Table(
    "qindex_pointers",
    metadata,
    Column("owner", String(DID_MAX), primary_key=True),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("cid", String(CID_MAX), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Every version a pointer has had; each names the CID it replaced.
pointer_versions = Table(
    "qindex_pointer_versions",
    metadata,
    Column("owner", String(DID_MAX), primary_key=True),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("cid", String(CID_MAX), nullable=False),
    Column("prev_cid", String(CID_MAX), nullable=True),
    Column("tags", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(DID_MAX), nullable=False),
)

# The current tags of each pointer, one row per tag, for listing by tag.
pointer_tags = Table(
    "qindex_pointer_tags",
    metadata,
    Column("owner", String(DID_MAX), primary_key=True),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("tag", String(TAG_MAX), primary_key=True),
)
Index("ix_qindex_pointer_tags_tag", pointer_tags.c.owner, pointer_tags.c.tag)

TABLES = (documents, terms, vectors, pointers, pointer_versions, pointer_tags)
