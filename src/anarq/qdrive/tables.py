"""Qdrive's tables: files, their versions (with each version's sealed key), uploads."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table

from anarq.kernel.db import UtcDateTime, metadata

PATH_MAX = 1024

files = Table(
    "qdrive_files",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("path", String(PATH_MAX), nullable=False),
    Column("visibility", String(10), nullable=False),  # private | public
    Column("media_type", String(120), nullable=False),
    Column("size", BigInteger, nullable=False),  # of the current version, in plaintext bytes
    Column("version", Integer, nullable=False),  # the current version
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("trashed_at", UtcDateTime(), nullable=True),
)
# One live file per path in a drive; trashed files keep their path until restored.
Index(
    "ux_qdrive_files_live_path",
    files.c.owner,
    files.c.path,
    unique=True,
    postgresql_where=files.c.trashed_at.is_(None),
    sqlite_where=files.c.trashed_at.is_(None),
)
Index("ix_qdrive_files_owner_path", files.c.owner, files.c.path)

versions = Table(
    "qdrive_versions",
    metadata,
    Column("file_id", String(26), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    # The address IPFS gives the plaintext (UnixFS, CIDv1); public versions only.
    Column("unixfs_cid", String(100), nullable=True),
    # Keyed hash of the plaintext, for dedup inside one drive without revealing content.
    Column("content_tag", String(64), nullable=False),
    # Qlock stream header: the data key wrapped for the node and every reader. NULL once
    # shredded, and for public versions.
    Column("header", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(200), nullable=False),
)

# A version's stored body, in order: the blobs of its segments (one per upload part),
# ciphertext for a private version, plaintext for a public one. Dedup shares segments.
segments = Table(
    "qdrive_segments",
    metadata,
    Column("file_id", String(26), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("blob_cid", String(100), nullable=False),
)
Index("ix_qdrive_segments_blob", segments.c.blob_cid)
Index("ix_qdrive_versions_unixfs", versions.c.unixfs_cid)
Index("ix_qdrive_versions_tag", versions.c.content_tag)

uploads = Table(
    "qdrive_uploads",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("path", String(PATH_MAX), nullable=False),
    Column("visibility", String(10), nullable=False),
    Column("media_type", String(120), nullable=False),
    Column("size", BigInteger, nullable=False),  # declared total
    Column("received", BigInteger, nullable=False),
    # A private upload's stream header, made when the upload starts: each part is
    # encrypted at its place in the final stream as it arrives.
    Column("header", LargeBinary, nullable=True),
    # The part being encrypted at `received`: its offset and the SHA-256 of its chunk
    # digests, claimed before any byte is encrypted. Chunk nonces follow from positions,
    # so other bytes at a claimed position are refused: a key and nonce never seal two
    # different plaintexts, even across a crash or two racing requests.
    Column("claim_offset", BigInteger, nullable=True),
    Column("claim_digest", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_qdrive_uploads_owner", uploads.c.owner)

# Each received part, already a segment of the final body (ciphertext for a private
# upload); any worker may take the next part.
upload_parts = Table(
    "qdrive_upload_parts",
    metadata,
    Column("upload_id", String(26), primary_key=True),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("offset", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("blob_cid", String(100), nullable=False),
    # SHA-256 of each 256 KiB chunk of the part's plaintext, joined: the UnixFS leaves of a
    # public file, and what the in-drive dedup tag is computed from.
    Column("digests", LargeBinary, nullable=False),
)

# Share links: a bearer token (kept as its hash) that reads one file, optionally behind a
# password (Argon2id) and an expiry or a download cap.
links = Table(
    "qdrive_links",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("file_id", String(26), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("password_salt", LargeBinary, nullable=True),
    Column("password_hash", LargeBinary, nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("max_downloads", Integer, nullable=True),
    Column("downloads", Integer, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)
Index("ix_qdrive_links_file", links.c.file_id)

TABLES = (files, versions, segments, uploads, upload_parts, links)
