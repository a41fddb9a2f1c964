"""QpiC's tables: photos (metadata pointing at Qdrive files), derived files, albums, unlocks."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
)

from anarq.kernel.db import UtcDateTime, metadata

NAME_MAX = 255
ALBUM_NAME_MAX = 200
ID = 26  # a ULID, ours or Qdrive's

# One row per imported photo or video. The bytes live in Qdrive; this row holds what a
# timeline, a search or a duplicate finder needs. Never the location: GPS coordinates
# stay inside the encrypted original, and `has_gps` only says that they are there.
photos = Table(
    "qpic_photos",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("file_id", String(ID), nullable=False, unique=True),  # the original, in Qdrive
    Column("kind", String(10), nullable=False),  # image | video
    Column("name", String(NAME_MAX), nullable=False),
    Column("media_type", String(120), nullable=False),
    Column("format", String(20), nullable=False),  # JPEG, PNG, … or the video container
    Column("size_bytes", BigInteger, nullable=False),
    Column("width", Integer, nullable=True),  # as displayed: EXIF orientation applied
    Column("height", Integer, nullable=True),
    Column("duration_ms", BigInteger, nullable=True),
    Column("taken_at", UtcDateTime(), nullable=False),
    Column("taken_offset_minutes", Integer, nullable=True),
    Column("taken_day", String(10), nullable=False),  # YYYY-MM-DD on the camera's clock
    Column("taken_source", String(10), nullable=False),  # exif | video | upload
    Column("camera_make", String(100), nullable=True),
    Column("camera_model", String(100), nullable=True),
    Column("has_gps", Boolean, nullable=False),
    Column("phash", BigInteger, nullable=True),  # 64-bit pHash, signed
    Column("video_note", String(300), nullable=True),  # why a video has no poster
    Column("imported_at", UtcDateTime(), nullable=False),
)
Index("ix_qpic_photos_owner_taken", photos.c.owner, photos.c.taken_at, photos.c.id)
Index("ix_qpic_photos_owner_day", photos.c.owner, photos.c.taken_day)

# Files QpiC made from a photo, all in the owner's drive: thumbnails, a video's poster
# and proxy, the metadata-free copy made for sharing.
derived = Table(
    "qpic_derived",
    metadata,
    Column("file_id", String(ID), primary_key=True),
    Column("photo_id", String(ID), nullable=False),
    Column("role", String(20), nullable=False),  # thumb256 | thumb1024 | poster | proxy | shared
)
Index("ux_qpic_derived_photo_role", derived.c.photo_id, derived.c.role, unique=True)

albums = Table(
    "qpic_albums",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("name", String(ALBUM_NAME_MAX), nullable=False),
    Column("parent_id", String(ID), nullable=True),
    # A locked album: Argon2id of its passphrase. Reading its contents needs an unlock.
    Column("passphrase_salt", LargeBinary, nullable=True),
    Column("passphrase_hash", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
Index("ix_qpic_albums_owner", albums.c.owner)
Index("ix_qpic_albums_parent", albums.c.parent_id)

album_photos = Table(
    "qpic_album_photos",
    metadata,
    Column("album_id", String(ID), primary_key=True),
    Column("photo_id", String(ID), primary_key=True),
    Column("added_at", UtcDateTime(), nullable=False),
)
Index("ix_qpic_album_photos_photo", album_photos.c.photo_id)

# Unlock tokens of locked albums: kept as a SHA-256 of the token, bound to the identity
# that unlocked, short-lived.
unlocks = Table(
    "qpic_unlocks",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("album_id", String(ID), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_qpic_unlocks_expires", unlocks.c.expires_at)

# Derived files whose photo is gone, waiting to be deleted for good in Qdrive. A bus
# handler cannot call Qdrive (it runs inside its own transaction), so it queues them here.
orphans = Table(
    "qpic_orphans",
    metadata,
    Column("file_id", String(ID), primary_key=True),
    Column("queued_at", UtcDateTime(), nullable=False),
)

TABLES = (photos, derived, albums, album_photos, unlocks, orphans)
