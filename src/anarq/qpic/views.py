"""How QpiC shows photos: descriptions for owners and for others, files it serves, cursors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from anarq.kernel.errors import BadRequest
from anarq.kernel.guard import Actor, Context
from anarq.qdrive.service import Opened
from anarq.qpic import dupes, tables
from anarq.qpic.models import Photo


@dataclass(frozen=True)
class Served:
    """A file QpiC hands out: its media type, size and bytes."""

    media_type: str
    size: int
    chunks: Iterator[bytes]
    name: str


ROLE_NAMES = {
    "thumb256": "256 px thumbnail",
    "thumb1024": "1024 px thumbnail",
    "poster": "poster frame",
    "proxy": "proxy video",
    "shared": "shared copy (share it first)",
}


def custody(ctx: Context) -> Context:
    """The node reading a derived file for a caller whose right to it QpiC has checked."""
    return Context(actor=Actor(id="system", kind="node"), correlation_id=ctx.request_id)


def served(opened: Opened) -> Served:
    return Served(
        media_type=opened.file.media_type,
        size=opened.version.size,
        chunks=opened.chunks,
        name=opened.file.name,
    )


def photo_view(row: RowMapping, roles: set[str], mine: bool) -> Photo:
    thumbs = sorted(int(r.removeprefix("thumb")) for r in roles if r.startswith("thumb"))
    video = row["kind"] == "video"
    common: dict[str, Any] = {
        "id": row["id"],
        "kind": row["kind"],
        "owner": row["owner"],
        "mine": mine,
        "name": row["name"],
        "media_type": row["media_type"],
        "format": row["format"],
        "width": row["width"],
        "height": row["height"],
        "duration_ms": row["duration_ms"],
        "thumbs": thumbs,
        "poster": True if video and "poster" in roles else None,
        "proxy": True if video and "proxy" in roles else None,
    }
    if not mine:
        return Photo(**common)
    offset = row["taken_offset_minutes"]
    return Photo(
        **common,
        size_bytes=row["size_bytes"],
        taken_at=row["taken_at"],
        taken_offset=_offset_text(offset) if offset is not None else None,
        taken_day=row["taken_day"],
        taken_source=row["taken_source"],
        camera_make=row["camera_make"],
        camera_model=row["camera_model"],
        has_gps=row["has_gps"],
        phash=f"{dupes.to_unsigned(row['phash']):016x}" if row["phash"] is not None else None,
        file_id=row["file_id"],
        video_note=row["video_note"],
        imported_at=row["imported_at"],
    )


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def day_range(year: int, month: int | None) -> tuple[str, str]:
    if not 1 <= year <= 9998 or (month is not None and not 1 <= month <= 12):
        raise BadRequest("year is 1 to 9998 and month 1 to 12")
    if month is None:
        return f"{year:04d}-01-01", f"{year + 1:04d}-01-01"
    after = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-01", f"{after[0]:04d}-{after[1]:02d}-01"


def make_cursor(taken_at: datetime, photo_id: str) -> str:
    raw = f"{taken_at.isoformat()}|{photo_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        taken, photo_id = raw.split("|", 1)
        moment = datetime.fromisoformat(taken)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the cursor is not one this node gave out") from None
    if moment.tzinfo is None or not photo_id or len(photo_id) > tables.ID:
        raise BadRequest("the cursor is not one this node gave out")
    return moment, photo_id
