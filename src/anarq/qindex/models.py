"""Qindex's request and response bodies, and the document other modules index."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from anarq.qindex.tables import (
    DID_MAX,
    KEY_MAX,
    MODULE_MAX,
    RESOURCE_MAX,
    TAG_MAX,
    TITLE_MAX,
    TYPE_MAX,
)

# Text indexed per document; the rest of a longer text is not searchable.
TEXT_MAX_CHARS = 1024 * 1024
META_MAX_ENTRIES = 16
META_TEXT_MAX = 1100  # a Qdrive path (1,024) and then some
TAGS_MAX = 16
QUERY_MAX_CHARS = 256

# `module:type:id`, as Qonsent names resources (see `qonsent.models.RESOURCE_RE`).
RESOURCE_PATTERN = r"^[a-z][a-z0-9]*(:[A-Za-z0-9._~@%+=-]+)+$"
KEY_PATTERN = r"^[A-Za-z0-9._~@+=-]+(/[A-Za-z0-9._~@+=-]+)*$"
TAG_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


class DocumentIn(BaseModel):
    """What a module hands `QindexService.index_document`: one searchable thing.

    `owner` must be the resource's owner: the owner finds it, others only through a
    Qonsent grant of `read` on `resource`. Text past `TEXT_MAX_CHARS` is cut off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    resource: str = Field(max_length=RESOURCE_MAX, pattern=RESOURCE_PATTERN)
    module: str = Field(max_length=MODULE_MAX, pattern=r"^[a-z][a-z0-9]*$")
    type: str = Field(max_length=TYPE_MAX, pattern=r"^[a-z][a-z0-9_]*$")
    owner: str = Field(min_length=1, max_length=DID_MAX)
    title: str = Field(max_length=TITLE_MAX)
    text: str = ""
    meta: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    updated_at: datetime

    @field_validator("text")
    @classmethod
    def _bounded(cls, value: str) -> str:
        return value[:TEXT_MAX_CHARS]

    @field_validator("meta")
    @classmethod
    def _few(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > META_MAX_ENTRIES:
            raise ValueError(f"at most {META_MAX_ENTRIES} meta entries")
        if any(len(k) > META_TEXT_MAX or len(str(v)) > META_TEXT_MAX for k, v in value.items()):
            raise ValueError(f"meta keys and values are at most {META_TEXT_MAX} characters")
        return value

    @field_validator("updated_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("updated_at must carry a timezone")
        return value


class SearchHit(BaseModel):
    resource: str
    module: str
    type: str
    owner: str
    title: str = Field(description="Plain text, not escaped.")
    snippet: str = Field(
        description="HTML-escaped text; its only markup is <mark>…</mark> around matches."
    )
    score: float = Field(description="Higher is better; comparable within one search only.")
    updated_at: datetime
    meta: dict[str, Any]


class SearchResults(BaseModel):
    query: str
    hits: list[SearchHit]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; absent on the last."
    )


class SemanticStatus(BaseModel):
    """Whether this node searches by meaning, and how far its embedder has got."""

    enabled: bool
    model: str
    # The counts are the whole node's: its operator sees them, nobody else.
    documents: int | None = Field(default=None, description="Documents in the index.")
    embedded: int | None = Field(default=None, description="Documents with a vector.")
    pending: int | None = Field(
        default=None, description="Documents waiting for the embedder (0 when off)."
    )


class PointerPut(BaseModel):
    """Point a key of your namespace at a CID (a new version each time)."""

    model_config = ConfigDict(extra="forbid")

    cid: str = Field(min_length=1, max_length=100)
    tags: list[str] | None = Field(
        default=None,
        max_length=TAGS_MAX,
        description="Replace the pointer's tags [default: keep the current ones].",
    )
    expected_version: int | None = Field(
        default=None,
        ge=0,
        description="Refuse (409) unless the pointer is at this version (0: does not exist).",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for tag in value:
            if len(tag) > TAG_MAX or not re.match(TAG_PATTERN, tag):
                raise ValueError(
                    f"a tag is 1 to {TAG_MAX} of a-z 0-9 . _ - starting with a letter or digit"
                )
        return sorted(set(value))


class Pointer(BaseModel):
    owner: str
    key: str
    version: int
    cid: str
    prev_cid: str | None = Field(description="The CID the previous version pointed at.")
    tags: list[str]
    updated_at: datetime = Field(description="When this version was written.")
    updated_by: str


class PointerList(BaseModel):
    pointers: list[Pointer]
    next_cursor: str | None = None


def valid_key(key: str) -> bool:
    return 0 < len(key) <= KEY_MAX and re.match(KEY_PATTERN, key) is not None
