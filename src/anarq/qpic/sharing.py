"""Sharing photos and albums with identities.

A grantee never receives the original: the photo's copy made through Qmask's profile
`default` (a
video's metadata-free proxy) is shared in Qdrive (its key wrapped for them), and a
Qonsent grant on `qpic:photo:<id>` lets QpiC serve them the thumbnails and that copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.errors import NotFound
from anarq.kernel.guard import Context
from anarq.qdrive.service import DriveService
from anarq.qonsent.models import Grant, GrantRequest
from anarq.qonsent.service import QonsentService
from anarq.qonsent.tables import PURPOSE_MAX
from anarq.qpic import tables
from anarq.qpic.albums import AlbumBook, AlbumLocked, album_resource, photo_resource
from anarq.qpic.importing import Importer
from anarq.qpic.models import Share


@dataclass(frozen=True)
class AlbumCopies:
    """An album ready to share: (photo id, name, id of its metadata-free copy) each."""

    album_id: str
    name: str
    photos: list[tuple[str, str, str]]


class Sharing:
    def __init__(
        self,
        kernel: Kernel,
        drive: DriveService,
        qonsent: QonsentService,
        albums: AlbumBook,
        importer: Importer,
    ) -> None:
        self.k = kernel
        self.drive = drive
        self.qonsent = qonsent
        self.albums = albums
        self.importer = importer

    def share(
        self,
        ctx: Context,
        row: RowMapping,
        grantee: str,
        expires_at: datetime | None,
    ) -> Share:
        """Let `grantee` read a photo: a metadata-free copy is made (once) and shared in
        Qdrive, and a Qonsent grant on the photo covers its thumbnails and the copy."""
        self._refuse_locked(row, "a photo in a locked album cannot be shared")
        copy = self.importer.shared_copy(ctx, row)
        with self.k.change(ctx, "share", photo_resource(row["id"])) as tx:
            return self._share_in(tx, ctx, row["id"], row["name"], copy, grantee, expires_at)

    def _share_in(
        self,
        tx: Connection,
        ctx: Context,
        photo_id: str,
        name: str,
        copy: str,
        grantee: str,
        expires_at: datetime | None,
    ) -> Share:
        grant = self._grant(
            tx, ctx, photo_resource(photo_id), grantee, expires_at, f"shared photo {name}"
        )
        self.drive.share_in(tx, ctx, copy, grantee, ["read"], expires_at)
        self.k.bus.publish(
            tx,
            "qpic.photo.shared",
            {"resource": photo_resource(photo_id), "grantee": grantee},
            actor=ctx.actor.id,
            subject=photo_resource(photo_id),
            correlation_id=ctx.correlation_id or ctx.request_id,
        )
        return Share(
            resource=photo_resource(photo_id),
            grantee=grantee,
            grant_id=grant.id,
            expires_at=grant.expires_at,
            photos=1,
        )

    def unshare(self, ctx: Context, row: RowMapping, grantee: str) -> None:
        revoked = self._revoke(ctx, photo_resource(row["id"]), grantee)
        copy = self._derived_id(row["id"], "proxy" if row["kind"] == "video" else "shared")
        if copy is not None:
            with contextlib.suppress(NotFound):  # the copy was not shared with them in Qdrive
                self.drive.unshare(ctx, copy, grantee)
        if not revoked:
            raise NotFound(f"{grantee} holds no share of this photo")

    def shares(self, ctx: Context, resource: str) -> list[Share]:
        return [
            Share(
                resource=resource,
                grantee=g.grantee,
                grant_id=g.id,
                expires_at=g.expires_at,
                photos=1,
            )
            for g in self.qonsent.who_can(ctx, resource)
            if g.revoked_at is None and g.resource == resource
        ]

    def share_album(
        self,
        ctx: Context,
        album_id: str,
        grantee: str,
        expires_at: datetime | None,
        row_of: Callable[[str], RowMapping],
    ) -> Share:
        """Let `grantee` see an album and every photo in it (each shared as above), in one
        transaction; photos added later are shared with them too."""
        copies = self.album_copies(ctx, album_id, row_of)
        with self.k.change(ctx, "share", album_resource(album_id)) as tx:
            return self.share_album_in(tx, ctx, album_id, grantee, expires_at, copies)

    def album_copies(
        self, ctx: Context, album_id: str, row_of: Callable[[str], RowMapping]
    ) -> AlbumCopies:
        """What sharing an album hands over, made ahead of the sharing transaction: the
        metadata-free copy of every photo in it that may be shared (made once each)."""
        album = self.albums.row(album_id)
        with self.k.db.read() as conn:
            if self.albums.tree(conn, album["owner"]).lock_of(album_id) is not None:
                raise AlbumLocked("a locked album cannot be shared", album_id=album_id)
            members = list(
                conn.execute(
                    select(tables.album_photos.c.photo_id).where(
                        tables.album_photos.c.album_id == album_id
                    )
                ).scalars()
            )
        copies: list[tuple[str, str, str]] = []
        for photo_id in members:
            row = row_of(photo_id)
            try:
                self._refuse_locked(row, "a photo in a locked album cannot be shared")
            except AlbumLocked:
                continue  # also in another, locked album: stays unshared
            copies.append((photo_id, row["name"], self.importer.shared_copy(ctx, row)))
        return AlbumCopies(album_id=album_id, name=album["name"], photos=copies)

    def share_album_in(
        self,
        tx: Connection,
        ctx: Context,
        album_id: str,
        grantee: str,
        expires_at: datetime | None,
        copies: AlbumCopies,
    ) -> Share:
        """`share_album` inside the caller's transaction (a sale's delivery), with the
        copies `album_copies` made."""
        assert copies.album_id == album_id
        grant = self._grant(
            tx,
            ctx,
            album_resource(album_id),
            grantee,
            expires_at,
            f"shared album {copies.name}",
        )
        for photo_id, name, copy in copies.photos:
            self._share_in(tx, ctx, photo_id, name, copy, grantee, expires_at)
        return Share(
            resource=album_resource(album_id),
            grantee=grantee,
            grant_id=grant.id,
            expires_at=grant.expires_at,
            photos=len(copies.photos),
        )

    def unshare_album(self, ctx: Context, album_id: str, grantee: str) -> None:
        """Stop sharing the album; photos shared through it stay shared until unshared."""
        self.albums.row(album_id)
        if not self._revoke(ctx, album_resource(album_id), grantee):
            raise NotFound(f"{grantee} holds no share of this album")

    def _grant(
        self,
        tx: Connection,
        ctx: Context,
        resource: str,
        grantee: str,
        expires_at: datetime | None,
        purpose: str,
    ) -> Grant:
        return self.qonsent.grant_in(
            tx,
            ctx,
            GrantRequest(
                grantee=grantee,
                resource=resource,
                actions=["read"],
                purpose=purpose[:PURPOSE_MAX],
                expires_at=expires_at,
            ),
        )

    def _revoke(self, ctx: Context, resource: str, grantee: str) -> int:
        revoked = 0
        for grant in self.qonsent.who_can(ctx, resource):
            if grant.grantee == grantee and grant.resource == resource and grant.revoked_at is None:
                self.qonsent.revoke(ctx, grant.id)
                revoked += 1
        return revoked

    def _refuse_locked(self, row: RowMapping, message: str) -> None:
        with self.k.db.read() as conn:
            locks = self.albums.locks_on(conn, row["owner"], [row["id"]])[row["id"]]
        if locks:
            raise AlbumLocked(message, album_id=sorted(locks)[0])

    def _derived_id(self, photo_id: str, role: str) -> str | None:
        d = tables.derived
        with self.k.db.read() as conn:
            found: str | None = conn.execute(
                select(d.c.file_id).where(d.c.photo_id == photo_id, d.c.role == role)
            ).scalar_one_or_none()
        return found
