"""Alembic migrations, and which database objects the schema comparison leaves alone."""

from __future__ import annotations

from typing import Any


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, _compare_to: Any
) -> bool:
    """Alembic's `include_object` hook: False for objects no Core table declares.

    Those are full-text objects migrations 0015 and 0026 make for one dialect: Qindex's
    FTS5 table (with the shadow tables SQLite keeps for it), and on PostgreSQL its
    tsvector columns with their GIN indexes and the pattern index on `resource`.
    Everything else is compared as usual.
    """
    from anarq.qindex import tables as t

    if type_ == "table" and reflected and name is not None:
        return not (name == t.FULL_TEXT_TABLE or name.startswith(f"{t.FULL_TEXT_TABLE}_"))
    if type_ == "column" and reflected and name in (t.FULL_TEXT_COLUMN, t.LEAD_TEXT_COLUMN):
        return bool(obj.table.name != t.documents.name)
    if type_ == "index" and reflected:
        return name not in (t.FULL_TEXT_INDEX, t.LEAD_TEXT_INDEX, t.RESOURCE_PATTERN_INDEX)
    return True
