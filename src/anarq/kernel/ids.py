"""Identifiers: ULIDs, sortable by creation time and unique across workers."""

from __future__ import annotations

import re

from ulid import ULID

_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def new_id() -> str:
    """A new ULID as its 26-character Crockford base32 string."""
    return str(ULID())


def is_ulid(value: str) -> bool:
    return bool(_ULID_RE.match(value))
