"""Qmask's tables: named profiles (one row per owner and name) and their versions."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table

from anarq.kernel.db import UtcDateTime, metadata

NAME_MAX = 64
DESCRIPTION_MAX = 500
DID_MAX = 200

profiles = Table(
    "qmask_profiles",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("owner", String(DID_MAX), nullable=False),
    Column("name", String(NAME_MAX), nullable=False),
    Column("version", Integer, nullable=False),  # the latest
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
Index("ux_qmask_profiles_owner_name", profiles.c.owner, profiles.c.name, unique=True)

# Versions are never changed: applying "version 2" today gives what it gave yesterday.
profile_versions = Table(
    "qmask_profile_versions",
    metadata,
    Column("profile_id", String(26), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(DESCRIPTION_MAX), nullable=False),
    Column("rules", JSON, nullable=False),  # [{"field": …, "action": …, "arg": …}, …]
    Column("image", JSON, nullable=True),  # {"keep_icc": …}, or null: not for images
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(DID_MAX), nullable=False),
)

TABLES = (profiles, profile_versions)
