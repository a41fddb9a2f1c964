"""QpiC's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from anarq.qpic.tables import ALBUM_NAME_MAX, ID

PAGE_MAX = 500
PASSPHRASE_MIN, PASSPHRASE_MAX = 8, 200


class Photo(BaseModel):
    """A photo or video. Its owner sees everything; someone it is shared with sees what
    the shared copy shows (no camera, capture time, location flag or hash)."""

    id: str
    kind: Literal["image", "video"]
    owner: str
    mine: bool
    name: str
    media_type: str
    format: str
    size_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    taken_at: datetime | None = None
    taken_offset: str | None = Field(default=None, examples=["+02:00"])
    taken_day: str | None = None
    taken_source: Literal["exif", "video", "upload"] | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    has_gps: bool | None = None
    phash: str | None = Field(default=None, description="64-bit pHash, 16 hex digits.")
    file_id: str | None = Field(default=None, description="The original in your drive.")
    thumbs: list[int] = Field(default_factory=list, description="Thumbnail sizes available.")
    poster: bool | None = Field(
        default=None, description="Videos: true when a poster frame exists, else null."
    )
    proxy: bool | None = Field(default=None, description="Videos: true when a 480p proxy exists.")
    video_note: str | None = Field(default=None, description="Why a video has no poster (null).")
    imported_at: datetime | None = None


class PhotoPage(BaseModel):
    photos: list[Photo]
    next_cursor: str | None


class Day(BaseModel):
    date: str
    count: int = Field(description="Photos on this day (under the same filters), all pages.")
    photos: list[Photo]


class Timeline(BaseModel):
    days: list[Day]
    next_cursor: str | None


class DupeGroup(BaseModel):
    photos: list[Photo]
    max_distance: int


class Dupes(BaseModel):
    distance: int
    photos_compared: int
    groups: list[DupeGroup]


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_id: str = Field(min_length=1, max_length=ID)
    album_id: str | None = Field(default=None, min_length=1, max_length=ID)


class Album(BaseModel):
    id: str
    owner: str
    name: str
    parent_id: str | None
    locked: bool = Field(description="Has its own passphrase.")
    locked_by: str | None = Field(description="The album whose passphrase guards this one.")
    photos: int
    albums: int = Field(description="Sub-albums.")
    created_at: datetime
    updated_at: datetime


class AlbumCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=ALBUM_NAME_MAX)
    parent_id: str | None = Field(default=None, min_length=1, max_length=ID)
    passphrase: str | None = Field(
        default=None,
        min_length=PASSPHRASE_MIN,
        max_length=PASSPHRASE_MAX,
        description="Lock the album: reading its contents will need an unlock.",
    )


class AlbumChange(BaseModel):
    """Rename, or move under another album (`parent_id`; null moves it to the top)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=ALBUM_NAME_MAX)
    parent_id: str | None = Field(default=None, min_length=1, max_length=ID)


class PhotoIds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    photo_ids: list[str] = Field(min_length=1, max_length=PAGE_MAX)


class UnlockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passphrase: str = Field(min_length=1, max_length=PASSPHRASE_MAX)


class Unlock(BaseModel):
    album_id: str
    token: str = Field(description="Send it as X-Anarq-Album-Unlock; the node keeps a hash.")
    expires_at: datetime


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grantee: str = Field(min_length=8, max_length=200, description="The reader's DID.")
    expires_at: datetime | None = None


class Share(BaseModel):
    resource: str
    grantee: str
    grant_id: str
    expires_at: datetime | None
    photos: int = Field(description="Photos the grantee can now read.")
