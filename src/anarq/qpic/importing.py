"""Bringing a photo in: look at it, make what a library needs from it, store it all.

Everything is examined before anything is stored: a file that is not an image (or a
video) is refused with nothing written. Work files live in a private folder under the
node's spool and are removed when the import ends, whatever happens; if storing fails
half way, the files already stored for it are deleted again.
"""

from __future__ import annotations

import io
import logging
import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.errors import AnarqError, BadRequest, Conflict, Forbidden
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.qdrive.models import FileInfo, UploadRequest
from anarq.qdrive.service import DriveService
from anarq.qmask.image import MEDIA_TYPES as QMASK_MEDIA_TYPES
from anarq.qmask.service import QmaskService
from anarq.qonsent.service import QonsentService
from anarq.qpic import imaging, tables, video
from anarq.qpic.albums import library_resource, photo_resource
from anarq.qpic.imaging import NotAnImage

PHOTOS_FOLDER = "/Photos"
WORK_FOLDER = "/.qpic"
PART_BYTES = 8 * 1024 * 1024
# Originals decoded whole for a shared copy: larger ones are refused rather than risked.
SHARE_MAX_BYTES = 256 * 1024 * 1024
CONTAINERS = {
    "video/mp4": "MP4",
    "video/quicktime": "MOV",
    "video/webm": "WEBM",
    "video/x-matroska": "MKV",
    "video/x-msvideo": "AVI",
}
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "image/avif": ".avif",
}
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
log = logging.getLogger(__name__)
SHARE_PROFILE = "default"  # the Qmask profile a shared copy goes through


@dataclass
class Analysis:
    """What an import found out before storing anything."""

    kind: str
    media_type: str
    format: str
    width: int | None
    height: int | None
    duration_ms: int | None
    taken_at: datetime
    offset_minutes: int | None
    taken_source: str
    camera_make: str | None
    camera_model: str | None
    has_gps: bool
    phash: int | None
    thumbs: dict[int, bytes] = field(default_factory=dict)
    poster: bytes | None = None
    proxy: Path | None = None
    video_note: str | None = None

    @property
    def taken_day(self) -> str:
        local = self.taken_at + timedelta(minutes=self.offset_minutes or 0)
        return local.date().isoformat()


class Importer:
    def __init__(
        self, kernel: Kernel, drive: DriveService, qonsent: QonsentService, qmask: QmaskService
    ) -> None:
        self.k = kernel
        self.drive = drive
        self.qonsent = qonsent
        self.qmask = qmask

    @contextmanager
    def _workdir(self) -> Iterator[Path]:
        spool = self.k.settings.data_dir / "spool"
        spool.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="qpic-", dir=spool) as work:
            yield Path(work)

    # The two ways in -------------------------------------------------------------------

    def upload(self, ctx: Context, owner: str, name: str, data: bytes) -> str:
        """A whole file in hand: examine, then store the original and what comes of it."""
        relative = clean_name(name)
        with self._workdir() as work:
            source = work / "original"
            source.write_bytes(data)
            analysis = self._analyse(source, work)
            photo_id = new_id()
            stored: list[str] = []
            try:
                original = self._put_original(ctx, relative, data, analysis, photo_id)
                stored.append(original.id)
                derived = self._put_derived(ctx, photo_id, analysis, stored)
                self._record(ctx, owner, photo_id, original, analysis, derived)
            except BaseException:
                self._discard(ctx, stored)
                raise
        return photo_id

    def adopt(self, ctx: Context, owner: str, file_id: str) -> str:
        """A file already in the owner's drive (a big one, uploaded in parts)."""
        opened = self.drive.open(ctx, file_id)
        if opened.file.owner != owner:
            raise Forbidden("only your own drive's files can join your library")
        if opened.file.trashed_at is not None:
            raise BadRequest("the file is in the trash; restore it first")
        with self.k.db.read() as conn:
            taken = conn.execute(
                select(tables.photos.c.id).where(tables.photos.c.file_id == file_id)
            ).scalar_one_or_none()
        if taken is not None:
            raise Conflict(f"that file is already photo {taken}", photo_id=taken)
        with self._workdir() as work:
            source = work / "original"
            with source.open("wb") as handle:
                first = True
                for chunk in opened.chunks:
                    if first and not _looks_like_media(chunk):
                        raise NotAnImage("the file is neither an image nor a video QpiC reads")
                    first = False
                    handle.write(chunk)
            if first:
                raise NotAnImage("the file is empty")
            analysis = self._analyse(source, work)
            photo_id = new_id()
            stored: list[str] = []
            try:
                derived = self._put_derived(ctx, photo_id, analysis, stored)
                self._record(ctx, owner, photo_id, opened.file, analysis, derived)
            except BaseException:
                self._discard(ctx, stored)
                raise
        return photo_id

    # Examining -------------------------------------------------------------------------

    def _analyse(self, source: Path, work: Path) -> Analysis:
        now = self.k.clock.now()
        if imaging.sniff(source) is not None:
            rendition = imaging.render(source)
            facts = rendition.facts
            taken, offset, from_exif = imaging.capture_time(facts, now)
            return Analysis(
                kind="image",
                media_type=facts.media_type,
                format=facts.format,
                width=facts.width,
                height=facts.height,
                duration_ms=None,
                taken_at=taken,
                offset_minutes=offset,
                taken_source="exif" if from_exif else "upload",
                camera_make=facts.camera_make,
                camera_model=facts.camera_model,
                has_gps=facts.has_gps,
                phash=rendition.phash,
                thumbs=rendition.thumbs,
            )
        media_type = video.sniff(source)
        if media_type is None:
            raise NotAnImage(
                "not a JPEG, PNG, WebP, GIF, HEIC or AVIF image, nor an MP4, MOV, WebM, MKV "
                "or AVI video"
            )
        if video.tools() is None:
            return Analysis(
                kind="video",
                media_type=media_type,
                format=CONTAINERS[media_type],
                width=None,
                height=None,
                duration_ms=None,
                taken_at=now,
                offset_minutes=None,
                taken_source="upload",
                camera_make=None,
                camera_model=None,
                has_gps=False,
                phash=None,
                video_note=video.NO_FFMPEG,
            )
        clip = video.probe(source, media_type)
        poster = work / "poster.jpg"
        video.poster(source, poster, clip.duration_ms)
        rendition = imaging.render(poster)
        proxy = work / "proxy.mp4"
        video.proxy(source, proxy, clip.duration_ms)
        return Analysis(
            kind="video",
            media_type=media_type,
            format=CONTAINERS[media_type],
            width=clip.width or rendition.facts.width,
            height=clip.height or rendition.facts.height,
            duration_ms=clip.duration_ms,
            taken_at=clip.taken_at or now,
            offset_minutes=clip.offset_minutes if clip.taken_at else None,
            taken_source="video" if clip.taken_at else "upload",
            camera_make=clip.camera_make,
            camera_model=clip.camera_model,
            has_gps=clip.has_gps,
            phash=rendition.phash,
            thumbs=rendition.thumbs,
            poster=poster.read_bytes(),
            proxy=proxy,
        )

    # Storing ---------------------------------------------------------------------------

    def _put_original(
        self, ctx: Context, relative: str, data: bytes, analysis: Analysis, photo_id: str
    ) -> FileInfo:
        if not relative:
            relative = photo_id + EXTENSIONS.get(analysis.media_type, "")
        path = f"{PHOTOS_FOLDER}/{relative}"
        try:
            return self.drive.put(ctx, path, data, media_type=analysis.media_type)
        except Conflict:
            # The name is taken (another camera's IMG_0001.JPG): keep both.
            stem, ext = posixpath.splitext(path)
            return self.drive.put(
                ctx, f"{stem}-{photo_id[-8:]}{ext}", data, media_type=analysis.media_type
            )

    def _put_derived(
        self, ctx: Context, photo_id: str, analysis: Analysis, stored: list[str]
    ) -> list[tuple[str, str]]:
        derived: list[tuple[str, str]] = []

        def keep(role: str, info: FileInfo) -> None:
            stored.append(info.id)
            derived.append((role, info.id))

        for size, thumb in sorted(analysis.thumbs.items()):
            path = f"{WORK_FOLDER}/thumbs/{photo_id}-{size}.webp"
            keep(
                f"thumb{size}",
                self.drive.put(ctx, path, thumb, media_type=imaging.THUMB_MEDIA_TYPE),
            )
        if analysis.poster is not None:
            path = f"{WORK_FOLDER}/posters/{photo_id}.jpg"
            keep("poster", self.drive.put(ctx, path, analysis.poster, media_type="image/jpeg"))
        if analysis.proxy is not None:
            keep(
                "proxy",
                self._put_file(
                    ctx, f"{WORK_FOLDER}/proxies/{photo_id}.mp4", analysis.proxy, "video/mp4"
                ),
            )
        return derived

    def _put_file(self, ctx: Context, path: str, local: Path, media_type: str) -> FileInfo:
        """A file of any size, through Qdrive's part uploads (memory stays flat)."""
        size = local.stat().st_size
        upload = self.drive.start_upload(
            ctx, UploadRequest(path=path, size=size, media_type=media_type)
        )
        offset = 0
        with local.open("rb") as handle:
            while piece := handle.read(min(PART_BYTES, self.drive.part_max_bytes)):
                self.drive.append(ctx, upload.id, offset, piece)
                offset += len(piece)
        return self.drive.complete(ctx, upload.id)

    def _record(
        self,
        ctx: Context,
        owner: str,
        photo_id: str,
        original: FileInfo,
        analysis: Analysis,
        derived: list[tuple[str, str]],
    ) -> None:
        now = self.k.clock.now()
        with self.k.change(ctx, "write", library_resource(owner)) as tx:
            try:
                tx.execute(
                    insert(tables.photos).values(
                        id=photo_id,
                        owner=owner,
                        file_id=original.id,
                        kind=analysis.kind,
                        name=original.name[: tables.NAME_MAX],
                        media_type=analysis.media_type,
                        format=analysis.format,
                        size_bytes=original.size,
                        width=analysis.width,
                        height=analysis.height,
                        duration_ms=analysis.duration_ms,
                        taken_at=analysis.taken_at,
                        taken_offset_minutes=analysis.offset_minutes,
                        taken_day=analysis.taken_day,
                        taken_source=analysis.taken_source,
                        camera_make=analysis.camera_make,
                        camera_model=analysis.camera_model,
                        has_gps=analysis.has_gps,
                        phash=analysis.phash,
                        video_note=analysis.video_note,
                        imported_at=now,
                    )
                )
            except IntegrityError:
                raise Conflict("that file became a photo meanwhile") from None
            for role, file_id in derived:
                tx.execute(
                    insert(tables.derived).values(file_id=file_id, photo_id=photo_id, role=role)
                )
            self.qonsent.register_owner(tx, photo_resource(photo_id), owner)
            self.k.bus.publish(
                tx,
                "qpic.photo.imported",
                {
                    "photo_id": photo_id,
                    "owner": owner,
                    "file_id": original.id,
                    "kind": analysis.kind,
                    "media_type": analysis.media_type,
                    "taken_at": analysis.taken_at.isoformat(),
                    "name": original.name,
                },
                actor=ctx.actor.id,
                subject=photo_resource(photo_id),
                correlation_id=ctx.correlation_id or ctx.request_id,
            )

    def _discard(self, ctx: Context, file_ids: list[str]) -> None:
        for file_id in file_ids:
            try:
                self.drive.purge(ctx, file_id)
            except AnarqError:
                log.warning("could not remove file %s after a failed import", file_id)

    # Sharing ---------------------------------------------------------------------------

    def _masked(self, owner: str, data: bytes) -> bytes:
        """The shared copy: Qmask's profile `default` for images (upright; EXIF, GPS, XMP,
        IPTC and comments removed). HEIC and AVIF, which Qmask does not read, become a
        clean JPEG first."""
        if imaging.media_type_of(data) not in QMASK_MEDIA_TYPES.values():
            data = imaging.strip_for_share(data)
        return self.qmask.mask_image(owner, SHARE_PROFILE, data).data

    def shared_copy(self, ctx: Context, row: RowMapping) -> str:
        """The file a grantee reads: made once per photo, from the original, stripped.

        A video's copy is its proxy (ffmpeg dropped the metadata making it).
        """
        d = tables.derived
        role = "proxy" if row["kind"] == "video" else "shared"
        with self.k.db.read() as conn:
            existing = conn.execute(
                select(d.c.file_id).where(d.c.photo_id == row["id"], d.c.role == role)
            ).scalar_one_or_none()
        if existing is not None:
            return str(existing)
        if row["kind"] == "video":
            raise Conflict(f"this video has no metadata-free proxy to share ({row['video_note']})")
        opened = self.drive.open(ctx, row["file_id"])
        if opened.version.size > SHARE_MAX_BYTES:
            raise Conflict(f"originals over {SHARE_MAX_BYTES} bytes cannot be shared yet")
        buffer = io.BytesIO()
        for chunk in opened.chunks:
            buffer.write(chunk)
        clean = self._masked(row["owner"], buffer.getvalue())
        media_type = imaging.media_type_of(clean)
        path = f"{WORK_FOLDER}/shared/{row['id']}{EXTENSIONS[media_type]}"
        info = self.drive.put(ctx, path, clean, media_type=media_type, overwrite=True)
        try:
            with self.k.change(ctx, "share", photo_resource(row["id"])) as tx:
                tx.execute(insert(d).values(file_id=info.id, photo_id=row["id"], role="shared"))
        except IntegrityError:
            pass  # made by a concurrent share: the same path, so the same file
        return info.id


def clean_name(name: str) -> str:
    """A relative drive path from a client's file name: no '..', no control characters."""
    parts = []
    for part in name.replace("\\", "/").split("/"):
        part = "".join(c for c in part if c.isprintable()).strip()
        if part and part not in (".", ".."):
            parts.append(part[:200])
    relative = "/".join(parts[-8:])
    if len(relative) > 900:
        raise BadRequest("the name is too long")
    return relative


def _looks_like_media(head: bytes) -> bool:
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI ")):
        return True
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return True
    return len(head) >= 12 and head[4:8] == b"ftyp"  # HEIC, AVIF, MP4, MOV
