"""QpiC: photos and videos kept in their owner's Qdrive, with what a photo library needs
on top — thumbnails, capture dates, albums, a timeline, near-duplicates and sharing.

Every byte lives in Qdrive, encrypted like any private file and counted in the quota:
the original at `/Photos/…`, what QpiC makes from it under `/.qpic/`. QpiC's own tables
hold metadata and links to those files (never a location; see `tables`).

Who may read a photo is Qonsent's answer for `qpic:photo:<id>`: its owner, and whoever
it was shared with. Thumbnails, a video's poster and proxy, and the shared copy are read
through the node's custody of Qdrive keys once that check has passed, so one grant
covers everything made from a photo. The original is read only by its owner, through
Qdrive's own check; a grantee gets the copy made through Qmask's profile `default`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.bus import Event
from anarq.kernel.errors import BadRequest, Forbidden, NotFound
from anarq.kernel.guard import Context
from anarq.kernel.subject import ExportItem, json_item
from anarq.qdrive.service import DriveService
from anarq.qmask.service import QmaskService
from anarq.qonsent.service import QonsentService
from anarq.qpic import dupes, tables
from anarq.qpic.albums import (
    AlbumBook,
    AlbumLocked,
    album_resource,
    library_resource,
    membership_filter,
    photo_resource,
)
from anarq.qpic.imaging import THUMB_SIZES
from anarq.qpic.importing import Importer
from anarq.qpic.models import (
    PAGE_MAX,
    Album,
    AlbumChange,
    AlbumCreate,
    Day,
    DupeGroup,
    Dupes,
    Photo,
    PhotoPage,
    Share,
    Timeline,
    Unlock,
)
from anarq.qpic.sharing import AlbumCopies, Sharing
from anarq.qpic.views import (
    ROLE_NAMES,
    Served,
    custody,
    day_range,
    make_cursor,
    photo_view,
    read_cursor,
    served,
)

HOUSEKEEPING_EVERY_SECONDS = 30.0
ORPHAN_BATCH = 200
DEFAULT_PAGE = 100
DUPES_MAX_PHOTOS = 50_000
log = logging.getLogger(__name__)


class QpicService:
    erase_order = 15  # after Qdrive has shredded the files

    def __init__(
        self, kernel: Kernel, drive: DriveService, qonsent: QonsentService, qmask: QmaskService
    ) -> None:
        self.k = kernel
        self.drive = drive
        self.qonsent = qonsent
        self.albums = AlbumBook(kernel, qonsent)
        self.importer = Importer(kernel, drive, qonsent, qmask)
        self.sharing = Sharing(kernel, drive, qonsent, self.albums, self.importer)

    # Data-subject requests -----------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """The person's photo descriptions and albums (the bytes are in Qdrive's part)."""
        p, a, ap = tables.photos, tables.albums, tables.album_photos
        with self.k.db.read() as conn:
            photos = [
                dict(r)
                for r in conn.execute(
                    select(p).where(p.c.owner == did).order_by(p.c.taken_at)
                ).mappings()
            ]
            albums = []
            for row in conn.execute(select(a).where(a.c.owner == did)).mappings().all():
                members = conn.execute(
                    select(ap.c.photo_id).where(ap.c.album_id == row["id"])
                ).scalars()
                album = {k: v for k, v in row.items() if not k.startswith("passphrase")}
                albums.append(
                    {**album, "locked": row["passphrase_hash"] is not None, "photos": list(members)}
                )
        yield json_item("photos.json", photos)
        yield json_item("albums.json", albums)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Delete the person's photo rows, albums and unlocks (Qdrive shreds the files)."""
        p, a, ap, d = tables.photos, tables.albums, tables.album_photos, tables.derived
        with self.k.change(ctx, "delete", library_resource(did)) as tx:
            photo_ids = list(tx.execute(select(p.c.id).where(p.c.owner == did)).scalars())
            album_ids = list(tx.execute(select(a.c.id).where(a.c.owner == did)).scalars())
            tx.execute(delete(ap).where(ap.c.album_id.in_(album_ids)))
            tx.execute(delete(ap).where(ap.c.photo_id.in_(photo_ids)))
            tx.execute(delete(d).where(d.c.photo_id.in_(photo_ids)))
            tx.execute(delete(tables.unlocks).where(tables.unlocks.c.actor == did))
            tx.execute(delete(tables.unlocks).where(tables.unlocks.c.album_id.in_(album_ids)))
            tx.execute(delete(a).where(a.c.id.in_(album_ids)))
            tx.execute(delete(p).where(p.c.id.in_(photo_ids)))
        return {"photos": len(photo_ids), "albums": len(album_ids)}

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """An identity administers its own library (a guard policy)."""
        return ctx.actor.kind == "identity" and resource == library_resource(ctx.actor.id)

    def _owner(self, ctx: Context) -> str:
        if ctx.actor.kind != "identity":
            raise Forbidden("a photo library belongs to an identity: sign the request as one")
        return ctx.actor.id

    # Importing -------------------------------------------------------------------------

    def upload(self, ctx: Context, name: str, data: bytes, album_id: str | None = None) -> Photo:
        """Store an image or video sent in one request, with its thumbnails.

        Anything that is not a readable image (or a video) is refused before a byte is
        stored.
        """
        owner = self._owner(ctx)
        self.k.check(ctx, "write", library_resource(owner))
        if album_id is not None:
            self._own_album(owner, album_id)
        photo_id = self.importer.upload(ctx, owner, name, data)
        return self._imported(ctx, photo_id, album_id)

    def import_file(self, ctx: Context, file_id: str, album_id: str | None = None) -> Photo:
        """Make a photo of a file already in the caller's drive (how big files come in)."""
        owner = self._owner(ctx)
        self.k.check(ctx, "write", library_resource(owner))
        if album_id is not None:
            self._own_album(owner, album_id)
        photo_id = self.importer.adopt(ctx, owner, file_id)
        return self._imported(ctx, photo_id, album_id)

    def _imported(self, ctx: Context, photo_id: str, album_id: str | None) -> Photo:
        if album_id is not None:
            self.add_to_album(ctx, album_id, [photo_id])
        row = self._row(photo_id)
        return self._describe([row], ctx)[0]

    def _own_album(self, owner: str, album_id: str) -> None:
        if self.albums.row(album_id)["owner"] != owner:
            raise NotFound(f"no album {album_id} in your library")

    # Reading one photo ----------------------------------------------------------------

    def photo(self, ctx: Context, photo_id: str, tokens: list[str]) -> Photo:
        row = self._readable(ctx, photo_id, tokens)
        return self._describe([row], ctx)[0]

    def _readable(self, ctx: Context, photo_id: str, tokens: list[str]) -> RowMapping:
        """The photo's row if the caller may read it: Qonsent, then the owner's locks."""
        row = self._row(photo_id)
        resource = photo_resource(photo_id)
        self.k.check(ctx, "read", resource)
        if ctx.actor.id == row["owner"]:
            with self.k.db.read() as conn:
                locks = self.albums.locks_on(conn, row["owner"], [photo_id])[photo_id]
            unlocked = self.albums.unlocked(ctx, tokens) if locks else set()
            for lock in sorted(locks):
                self.albums.require_open(ctx, lock, unlocked)
        self.k.guard.record(ctx, "read", resource, "allow")
        return row

    def thumb(self, ctx: Context, photo_id: str, size: int, tokens: list[str]) -> Served:
        if size not in THUMB_SIZES:
            raise BadRequest(f"thumbnail sizes are {', '.join(map(str, THUMB_SIZES))}")
        row = self._readable(ctx, photo_id, tokens)
        return self._derived(ctx, row, f"thumb{size}")

    def poster(self, ctx: Context, photo_id: str, tokens: list[str]) -> Served:
        row = self._readable(ctx, photo_id, tokens)
        return self._derived(ctx, row, "poster")

    def proxy(self, ctx: Context, photo_id: str, tokens: list[str]) -> Served:
        row = self._readable(ctx, photo_id, tokens)
        return self._derived(ctx, row, "proxy")

    def content(self, ctx: Context, photo_id: str, tokens: list[str]) -> Served:
        """The owner gets the original (through Qdrive's own check); anyone else the
        metadata-free copy made when it was shared."""
        row = self._readable(ctx, photo_id, tokens)
        if ctx.actor.id == row["owner"]:
            return served(self.drive.open(ctx, row["file_id"]))
        return self._derived(ctx, row, "proxy" if row["kind"] == "video" else "shared")

    def _derived(self, ctx: Context, row: RowMapping, role: str) -> Served:
        d = tables.derived
        with self.k.db.read() as conn:
            file_id = conn.execute(
                select(d.c.file_id).where(d.c.photo_id == row["id"], d.c.role == role)
            ).scalar_one_or_none()
        if file_id is None:
            reason = row["video_note"] if row["kind"] == "video" and row["video_note"] else ""
            raise NotFound(
                f"photo {row['id']} has no {ROLE_NAMES[role]}" + (f": {reason}" if reason else "")
            )
        return served(self.drive.open(custody(ctx), file_id))

    # Listing -----------------------------------------------------------------------------

    def photos(
        self,
        ctx: Context,
        *,
        album_id: str | None,
        cursor: str | None,
        limit: int,
        tokens: list[str],
    ) -> PhotoPage:
        """The caller's photos, newest capture first; or an album's, for whoever may read it."""
        if album_id is None:
            owner = self._owner(ctx)
            query = select(tables.photos).where(tables.photos.c.owner == owner)
            query = self._hide_locked(query, ctx, owner, tokens)
        else:
            album = self.albums.row(album_id)
            self.k.check(ctx, "read", album_resource(album_id))
            owner = album["owner"]
            query = select(tables.photos).where(membership_filter(album_id))
            if ctx.actor.id == owner:
                unlocked = self.albums.unlocked(ctx, tokens)
                with self.k.db.read() as conn:
                    lock = self.albums.tree(conn, owner).lock_of(album_id)
                self.albums.require_open(ctx, lock, unlocked)
                query = self._hide_locked(query, ctx, owner, tokens)
            else:
                # Someone the album is shared with: locked photos were never shared.
                query = self._hide_locked(query, ctx, owner, [])
            self.k.guard.record(ctx, "read", album_resource(album_id), "allow")
        rows, next_cursor = self._page(query, cursor, limit)
        return PhotoPage(photos=self._describe(rows, ctx), next_cursor=next_cursor)

    def timeline(
        self,
        ctx: Context,
        *,
        year: int | None,
        month: int | None,
        cursor: str | None,
        limit: int,
        tokens: list[str],
    ) -> Timeline:
        """The caller's photos by capture date, newest first, in per-day groups."""
        owner = self._owner(ctx)
        p = tables.photos
        if month is not None and year is None:
            raise BadRequest("a month needs its year")
        query = select(p).where(p.c.owner == owner)
        if year is not None:
            start, end = day_range(year, month)
            query = query.where(p.c.taken_day >= start, p.c.taken_day < end)
        query = self._hide_locked(query, ctx, owner, tokens)
        rows, next_cursor = self._page(query, cursor, limit)
        days = list(dict.fromkeys(row["taken_day"] for row in rows))
        counts: dict[str, int] = {}
        if days:
            counted = query.with_only_columns(p.c.taken_day, func.count()).where(
                p.c.taken_day.in_(days)
            )
            with self.k.db.read() as conn:
                counts = dict(conn.execute(counted.group_by(p.c.taken_day)).all())
        described = self._describe(rows, ctx)
        grouped: dict[str, list[Photo]] = {day: [] for day in days}
        for row, photo in zip(rows, described, strict=True):
            grouped[row["taken_day"]].append(photo)
        return Timeline(
            days=[
                Day(date=day, count=int(counts.get(day, 0)), photos=grouped[day]) for day in days
            ],
            next_cursor=next_cursor,
        )

    def duplicates(self, ctx: Context, distance: int, tokens: list[str]) -> Dupes:
        """Groups of the caller's photos whose perceptual hashes are within `distance` bits
        (multi-index hashing, see `dupes`)."""
        owner = self._owner(ctx)
        p = tables.photos
        query = select(p.c.id, p.c.phash).where(p.c.owner == owner, p.c.phash.is_not(None))
        query = self._hide_locked(query, ctx, owner, tokens)
        with self.k.db.read() as conn:
            hashes = {
                row.id: dupes.to_unsigned(row.phash)
                for row in conn.execute(query.limit(DUPES_MAX_PHOTOS))
            }
        found = dupes.groups(hashes, distance)
        ids = [pid for members, _ in found for pid in members]
        with self.k.db.read() as conn:
            rows = (
                {r["id"]: r for r in conn.execute(select(p).where(p.c.id.in_(ids))).mappings()}
                if ids
                else {}
            )
        described = {photo.id: photo for photo in self._describe(list(rows.values()), ctx)}
        return Dupes(
            distance=distance,
            photos_compared=len(hashes),
            groups=[
                DupeGroup(photos=[described[pid] for pid in members], max_distance=widest)
                for members, widest in found
            ],
        )

    def shared_with_me(self, ctx: Context) -> PhotoPage:
        """Photos others shared with the caller (newest grant first)."""
        if ctx.actor.kind != "identity":
            raise Forbidden("sign the request as an identity")
        grants = self.qonsent.what_can(ctx, ctx.actor.id)
        ids = [
            g.resource.removeprefix("qpic:photo:")
            for g in grants
            if g.resource.startswith("qpic:photo:") and "read" in g.actions
        ]
        if not ids:
            return PhotoPage(photos=[], next_cursor=None)
        with self.k.db.read() as conn:
            rows = list(
                conn.execute(
                    select(tables.photos)
                    .where(tables.photos.c.id.in_(ids))
                    .order_by(tables.photos.c.taken_at.desc())
                ).mappings()
            )
        return PhotoPage(photos=self._describe(rows, ctx), next_cursor=None)

    def _hide_locked(self, query: Any, ctx: Context, owner: str, tokens: list[str]) -> Any:
        unlocked = self.albums.unlocked(ctx, tokens)
        with self.k.db.read() as conn:
            hidden = self.albums.hidden_clause(conn, owner, unlocked)
        return query if hidden is None else query.where(hidden)

    def _page(
        self, query: Any, cursor: str | None, limit: int
    ) -> tuple[list[RowMapping], str | None]:
        p = tables.photos
        if not 1 <= limit <= PAGE_MAX:
            raise BadRequest(f"limit is 1 to {PAGE_MAX}")
        if cursor:
            taken, last = read_cursor(cursor)
            query = query.where(
                or_(p.c.taken_at < taken, and_(p.c.taken_at == taken, p.c.id < last))
            )
        query = query.order_by(p.c.taken_at.desc(), p.c.id.desc()).limit(limit + 1)
        with self.k.db.read() as conn:
            rows = list(conn.execute(query).mappings())
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, make_cursor(rows[-1]["taken_at"], rows[-1]["id"])

    def _describe(self, rows: list[RowMapping], ctx: Context) -> list[Photo]:
        if not rows:
            return []
        d = tables.derived
        with self.k.db.read() as conn:
            roles: dict[str, set[str]] = {}
            for link in conn.execute(
                select(d.c.photo_id, d.c.role).where(d.c.photo_id.in_([r["id"] for r in rows]))
            ):
                roles.setdefault(link.photo_id, set()).add(link.role)
        return [
            photo_view(row, roles.get(row["id"], set()), ctx.actor.id == row["owner"])
            for row in rows
        ]

    # Deleting ----------------------------------------------------------------------------

    def delete(self, ctx: Context, photo_id: str, *, forever: bool, tokens: list[str]) -> None:
        """Remove a photo and what was made from it; its original goes to the drive's
        trash (or, `forever`, is deleted for good)."""
        row = self._row(photo_id)
        with self.k.db.read() as conn:
            locks = self.albums.locks_on(conn, row["owner"], [photo_id])[photo_id]
        unlocked = self.albums.unlocked(ctx, tokens) if locks else set()
        self.k.check(ctx, "delete", photo_resource(photo_id))
        for lock in sorted(locks):
            self.albums.require_open(ctx, lock, unlocked)
        with self.k.change(ctx, "delete", photo_resource(photo_id)) as tx:
            self._forget(tx, row, ctx.actor.id, ctx.correlation_id or ctx.request_id)
        if forever:
            self.drive.purge(ctx, row["file_id"])
        else:
            self.drive.trash(ctx, row["file_id"])
        self.collect_orphans()

    def on_file_deleted(self, tx: Connection, event: Event) -> None:
        """Bus handler for `qdrive.file.deleted`: an original purged in Qdrive takes its
        photo with it; a derived file purged there is simply forgotten. Idempotent."""
        file_id = str(event.data.get("file_id", ""))
        row = (
            tx.execute(select(tables.photos).where(tables.photos.c.file_id == file_id))
            .mappings()
            .first()
        )
        if row is not None:
            self._forget(tx, row, event.actor or "system", event.correlation_id or event.id)
            return
        tx.execute(delete(tables.derived).where(tables.derived.c.file_id == file_id))

    def _forget(self, tx: Connection, row: RowMapping, actor: str, correlation: str) -> None:
        """Drop a photo's rows and queue its derived files for deletion, in `tx`."""
        d = tables.derived
        photo_id = row["id"]
        files = list(tx.execute(select(d.c.file_id).where(d.c.photo_id == photo_id)).scalars())
        now = self.k.clock.now()
        for file_id in files:
            tx.execute(insert(tables.orphans).values(file_id=file_id, queued_at=now))
        tx.execute(delete(d).where(d.c.photo_id == photo_id))
        tx.execute(delete(tables.album_photos).where(tables.album_photos.c.photo_id == photo_id))
        tx.execute(delete(tables.photos).where(tables.photos.c.id == photo_id))
        self.k.bus.publish(
            tx,
            "qpic.photo.deleted",
            {"photo_id": photo_id, "owner": row["owner"], "file_id": row["file_id"]},
            actor=actor,
            subject=photo_resource(photo_id),
            correlation_id=correlation,
        )

    def collect_orphans(self) -> int:
        """Delete for good, in Qdrive, derived files whose photo is gone."""
        o = tables.orphans
        with self.k.db.read() as conn:
            waiting = list(
                conn.execute(
                    select(o.c.file_id).order_by(o.c.queued_at).limit(ORPHAN_BATCH)
                ).scalars()
            )
        ctx = Context.system()
        for file_id in waiting:
            # Already gone (purged by its owner, or by an earlier pass) is fine.
            with contextlib.suppress(NotFound):
                self.drive.purge(ctx, file_id)
            with self.k.db.write() as tx:
                tx.execute(delete(o).where(o.c.file_id == file_id))
        return len(waiting)

    async def run_housekeeping(self, stop: asyncio.Event) -> None:
        """Background task: delete orphaned derived files, drop expired unlock tokens."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.collect_orphans)
                await asyncio.to_thread(self.albums.prune_unlocks)
            except Exception:
                log.exception("QpiC housekeeping failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING_EVERY_SECONDS)
            except TimeoutError:
                continue

    # Sharing -----------------------------------------------------------------------------

    def share(
        self,
        ctx: Context,
        photo_id: str,
        grantee: str,
        expires_at: datetime | None,
    ) -> Share:
        """Let `grantee` read a photo (a metadata-free copy and its thumbnails)."""
        return self.sharing.share(ctx, self._row(photo_id), grantee, expires_at)

    def unshare(self, ctx: Context, photo_id: str, grantee: str) -> None:
        self.sharing.unshare(ctx, self._row(photo_id), grantee)

    def shares(self, ctx: Context, resource: str) -> list[Share]:
        return self.sharing.shares(ctx, resource)

    def share_album(
        self, ctx: Context, album_id: str, grantee: str, expires_at: datetime | None
    ) -> Share:
        return self.sharing.share_album(ctx, album_id, grantee, expires_at, self._row)

    def clean_copy(self, ctx: Context, photo_id: str) -> str:
        """The photo's copy without metadata, in its owner's drive (made once): its file."""
        row = self._row(photo_id)
        if row["owner"] != ctx.identity("a photo library"):
            raise Forbidden("only the photo's owner makes its copies")
        return self.importer.shared_copy(ctx, row)

    def album_copies(self, ctx: Context, album_id: str) -> AlbumCopies:
        """What sharing the album hands over, made ahead of a sharing transaction."""
        return self.sharing.album_copies(ctx, album_id, self._row)

    def share_album_in(
        self,
        tx: Connection,
        ctx: Context,
        album_id: str,
        grantee: str,
        copies: AlbumCopies,
    ) -> Share:
        """Share an album inside the caller's transaction (a sale's delivery)."""
        return self.sharing.share_album_in(tx, ctx, album_id, grantee, None, copies)

    def unshare_album(self, ctx: Context, album_id: str, grantee: str) -> None:
        self.sharing.unshare_album(ctx, album_id, grantee)

    # Albums ------------------------------------------------------------------------------

    def create_album(self, ctx: Context, request: AlbumCreate) -> Album:
        owner = self._owner(ctx)
        album_id = self.albums.create(ctx, owner, request)
        return self.album(ctx, album_id)

    def album(self, ctx: Context, album_id: str) -> Album:
        row = self.albums.row(album_id)
        self.k.check(ctx, "read", album_resource(album_id))
        with self.k.db.read() as conn:
            return self.albums.describe(conn, [row], row["owner"])[0]

    def list_albums(self, ctx: Context, parent_id: str | None = None) -> list[Album]:
        owner = self._owner(ctx)
        a = tables.albums
        query = select(a).where(a.c.owner == owner)
        if parent_id is not None:
            query = query.where(a.c.parent_id == parent_id)
        with self.k.db.read() as conn:
            rows = list(conn.execute(query.order_by(a.c.name, a.c.id)).mappings())
            return self.albums.describe(conn, rows, owner)

    def change_album(
        self, ctx: Context, album_id: str, request: AlbumChange, tokens: list[str]
    ) -> Album:
        self.albums.change(ctx, album_id, request, self.albums.unlocked(ctx, tokens))
        return self.album(ctx, album_id)

    def delete_album(self, ctx: Context, album_id: str, tokens: list[str]) -> None:
        self.albums.delete(ctx, album_id, self.albums.unlocked(ctx, tokens))

    def add_to_album(self, ctx: Context, album_id: str, photo_ids: list[str]) -> Album:
        """Add photos; those are shared with whoever the album is shared with."""
        added = self.albums.add(ctx, album_id, photo_ids)
        for grant in self.qonsent.who_can(ctx, album_resource(album_id)):
            if grant.resource != album_resource(album_id) or grant.revoked_at is not None:
                continue
            for photo_id in added:
                try:
                    self.sharing.share(ctx, self._row(photo_id), grant.grantee, grant.expires_at)
                except AlbumLocked:
                    continue
        return self.album(ctx, album_id)

    def remove_from_album(
        self, ctx: Context, album_id: str, photo_id: str, tokens: list[str]
    ) -> None:
        self.albums.remove(ctx, album_id, photo_id, self.albums.unlocked(ctx, tokens))

    def unlock(self, ctx: Context, album_id: str, passphrase: str) -> Unlock:
        return self.albums.unlock(ctx, album_id, passphrase)

    # Rows --------------------------------------------------------------------------------

    def _row(self, photo_id: str) -> RowMapping:
        with self.k.db.read() as conn:
            row = (
                conn.execute(select(tables.photos).where(tables.photos.c.id == photo_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no photo {photo_id}")
        return row
