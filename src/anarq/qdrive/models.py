"""Qdrive's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from anarq.qdrive.tables import PATH_MAX

MEDIA_TYPE_PATTERN = r"^[\w.+-]+/[\w.+-]+$"
Visibility = Literal["private", "public"]


class UploadRequest(BaseModel):
    """Start an upload of `size` bytes to `path`; parts follow with PATCH."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=PATH_MAX, examples=["/docs/report.pdf"])
    size: int = Field(ge=0, le=2**50)
    visibility: Visibility = "private"
    media_type: str = Field(
        default="application/octet-stream", max_length=120, pattern=MEDIA_TYPE_PATTERN
    )
    overwrite: bool = Field(default=False, description="Add a version if the path exists.")


class Upload(BaseModel):
    id: str
    path: str
    size: int
    offset: int = Field(description="Bytes received so far: where the next part starts.")
    visibility: Visibility
    media_type: str
    part_max_bytes: int
    part_multiple_bytes: int = Field(
        description="Every part but the last is a multiple of this many bytes."
    )
    expires_at: datetime


class FileInfo(BaseModel):
    id: str
    owner: str
    path: str
    name: str
    visibility: Visibility
    media_type: str
    size: int
    version: int
    created_at: datetime
    updated_at: datetime
    trashed_at: datetime | None = None


class VersionInfo(BaseModel):
    version: int
    size: int
    cid: str | None = Field(default=None, description="The IPFS CID of a public version's content.")
    encrypted: bool
    created_at: datetime
    created_by: str
    readers: int | None = Field(default=None, description="Keys the data key is wrapped for.")


class Entry(BaseModel):
    kind: Literal["file", "folder"]
    name: str
    items: int | None = None
    file: FileInfo | None = None


class Listing(BaseModel):
    folder: str
    entries: list[Entry]


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=PATH_MAX)
    target: str = Field(min_length=1, max_length=PATH_MAX)


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grantee: str = Field(min_length=8, max_length=200, description="The reader's DID.")
    actions: list[Literal["read", "write", "share"]] = Field(default=["read"], min_length=1)
    expires_at: datetime | None = None


class ShareInfo(BaseModel):
    file_id: str
    grantee: str
    actions: list[str]
    grant_id: str
    expires_at: datetime | None
    key_wrapped: bool = Field(
        default=True,
        description="Every version's data key is wrapped for them; false when a version's "
        "header is full (1,024 readers): the node serves them that version through the grant.",
    )


class QuotaInfo(BaseModel):
    used_bytes: int
    limit_bytes: int
    files: int


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_at: datetime | None = None
    password: str | None = Field(default=None, min_length=4, max_length=200)
    max_downloads: int | None = Field(default=None, ge=1, le=1_000_000)


class LinkInfo(BaseModel):
    id: str
    file_id: str
    token: str | None = Field(
        default=None, description="Shown once, when the link is made; the node keeps a hash."
    )
    url_path: str | None = None
    password: bool
    expires_at: datetime | None
    max_downloads: int | None
    downloads: int
    created_at: datetime
    revoked_at: datetime | None
