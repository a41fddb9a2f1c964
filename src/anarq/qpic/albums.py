"""Albums: nested, private to their owner unless shared, optionally locked.

A locked album has a passphrase (Argon2id). Its contents — and those of every album
below it, down to the next one with its own passphrase — are read only with an unlock
token the owner gets by giving the passphrase again (`unlock`), valid for
`UNLOCK_LIFETIME`. A photo in a locked album is locked: it leaves the owner's timeline,
listings and duplicate search, and reading it needs the token of every lock it is
under. Anything that would take a photo out from under a lock (removing it, moving or
deleting the album) needs that lock's token too.

Locks guard the owner's own views. Someone a photo was shared with reads it by their
grant; to keep that from undoing a lock, locked photos and albums cannot be shared,
and a shared album cannot be locked or moved under a lock.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import unicodedata
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.errors import AnarqError, BadRequest, Conflict, Forbidden, NotFound
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.qlock import password_digest
from anarq.qonsent.service import QonsentService
from anarq.qpic import tables
from anarq.qpic.models import Album, AlbumChange, AlbumCreate, Unlock

UNLOCK_LIFETIME = timedelta(minutes=10)
UNLOCK_TOKEN_PREFIX = "anq_alb_"  # noqa: S105 (a prefix, not a secret)
MAX_DEPTH = 16
MAX_ALBUMS = 10_000
MAX_TOKENS = 8


class AlbumLocked(AnarqError):
    code = "qpic.album_locked"
    status = 403
    title = "Album is locked"


class WrongPassphrase(AnarqError):
    code = "qpic.wrong_passphrase"
    status = 403
    title = "Wrong album passphrase"


def album_resource(album_id: str) -> str:
    return f"qpic:album:{album_id}"


def photo_resource(photo_id: str) -> str:
    return f"qpic:photo:{photo_id}"


def library_resource(did: str) -> str:
    return f"qpic:library:{did}"


def parse_tokens(header: str | None) -> list[str]:
    """Unlock tokens from the X-Anarq-Album-Unlock header (comma-separated, a few)."""
    if not header:
        return []
    tokens = [t.strip() for t in header.split(",") if t.strip()]
    if len(tokens) > MAX_TOKENS:
        raise BadRequest(f"at most {MAX_TOKENS} unlock tokens per request")
    return tokens


class Tree:
    """An owner's albums as parent links and locks, to find what guards what."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self.parent: dict[str, str | None] = {}
        self.locked: set[str] = set()
        for row in rows:
            self.parent[row.id] = row.parent_id
            if row.passphrase_hash is not None:
                self.locked.add(row.id)

    def lock_of(self, album_id: str) -> str | None:
        """The nearest album at or above `album_id` that has a passphrase."""
        current: str | None = album_id
        for _ in range(MAX_DEPTH + 1):
            if current is None:
                return None
            if current in self.locked:
                return current
            current = self.parent.get(current)
        return None

    def depth(self, album_id: str | None) -> int:
        depth, current = 0, album_id
        while current is not None and depth <= MAX_DEPTH + 1:
            depth += 1
            current = self.parent.get(current)
        return depth

    def below(self, album_id: str, candidate: str | None) -> bool:
        """Is `candidate` `album_id` itself or one of its descendants?"""
        current = candidate
        for _ in range(MAX_DEPTH + 2):
            if current is None:
                return False
            if current == album_id:
                return True
            current = self.parent.get(current)
        return False

    def unsatisfied(self, unlocked: set[str]) -> list[str]:
        """Albums whose lock is not opened by `unlocked`: their photos stay hidden."""
        return [a for a in self.parent if (lock := self.lock_of(a)) and lock not in unlocked]


class AlbumBook:
    def __init__(self, kernel: Kernel, qonsent: QonsentService) -> None:
        self.k = kernel
        self.qonsent = qonsent

    # Reading the tree ------------------------------------------------------------------

    def tree(self, conn: Connection, owner: str) -> Tree:
        a = tables.albums
        return Tree(
            conn.execute(
                select(a.c.id, a.c.parent_id, a.c.passphrase_hash).where(a.c.owner == owner)
            )
        )

    def row(self, album_id: str, conn: Connection | None = None) -> RowMapping:
        query = select(tables.albums).where(tables.albums.c.id == album_id)
        if conn is not None:
            found = conn.execute(query).mappings().first()
        else:
            with self.k.db.read() as read:
                found = read.execute(query).mappings().first()
        if found is None:
            raise NotFound(f"no album {album_id}")
        return found

    def unlocked(self, ctx: Context, tokens: list[str]) -> set[str]:
        """Albums the caller's live unlock tokens open."""
        if not tokens:
            return set()
        u = tables.unlocks
        digests = [hashlib.sha256(t.encode()).hexdigest() for t in tokens]
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(u.c.album_id).where(
                    u.c.token_sha256.in_(digests),
                    u.c.actor == ctx.actor.id,
                    u.c.expires_at > self.k.clock.now(),
                )
            ).scalars()
            return set(rows)

    def hidden_clause(self, conn: Connection, owner: str, unlocked: set[str]) -> Any:
        """A filter on photos: those under no lock that `unlocked` leaves shut."""
        shut = self.tree(conn, owner).unsatisfied(unlocked)
        if not shut:
            return None
        ap = tables.album_photos
        return tables.photos.c.id.not_in(
            select(ap.c.photo_id).where(ap.c.album_id.in_(shut)).scalar_subquery()
        )

    def locks_on(self, conn: Connection, owner: str, photo_ids: list[str]) -> dict[str, set[str]]:
        """For each photo, the locks (album ids) it is under."""
        tree = self.tree(conn, owner)
        ap = tables.album_photos
        found: dict[str, set[str]] = {p: set() for p in photo_ids}
        if not tree.locked:
            return found
        for row in conn.execute(
            select(ap.c.photo_id, ap.c.album_id).where(ap.c.photo_id.in_(photo_ids))
        ):
            lock = tree.lock_of(row.album_id)
            if lock is not None:
                found[row.photo_id].add(lock)
        return found

    def require_open(self, ctx: Context, lock: str | None, unlocked: set[str]) -> None:
        if lock is not None and lock not in unlocked:
            self.k.guard.record(ctx, "read", album_resource(lock), "deny")
            raise AlbumLocked(
                f"album {lock} is locked: unlock it (POST /qpic/albums/{lock}/unlock) and send "
                "the token in the X-Anarq-Album-Unlock header",
                album_id=lock,
            )

    def describe(self, conn: Connection, rows: list[RowMapping], owner: str) -> list[Album]:
        if not rows:
            return []
        a, ap = tables.albums, tables.album_photos
        ids = [row["id"] for row in rows]
        counts: dict[str, int] = dict(
            conn.execute(
                select(ap.c.album_id, func.count())
                .where(ap.c.album_id.in_(ids))
                .group_by(ap.c.album_id)
            ).all()
        )
        children: dict[str, int] = dict(
            conn.execute(
                select(a.c.parent_id, func.count())
                .where(a.c.parent_id.in_(ids))
                .group_by(a.c.parent_id)
            ).all()
        )
        tree = self.tree(conn, owner)
        return [
            Album(
                id=row["id"],
                owner=row["owner"],
                name=row["name"],
                parent_id=row["parent_id"],
                locked=row["passphrase_hash"] is not None,
                locked_by=tree.lock_of(row["id"]),
                photos=int(counts.get(row["id"], 0)),
                albums=int(children.get(row["id"], 0)),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]

    # Changing ----------------------------------------------------------------------------

    def create(self, ctx: Context, owner: str, request: AlbumCreate) -> str:
        album_id = new_id()
        now = self.k.clock.now()
        salt = os.urandom(16) if request.passphrase else None
        name = _clean_name(request.name)
        with self.k.change(ctx, "write", library_resource(owner)) as tx:
            tree = self.tree(tx, owner)
            if len(tree.parent) >= MAX_ALBUMS:
                raise Conflict(f"a library holds at most {MAX_ALBUMS} albums")
            if request.parent_id is not None:
                self._own_album(tx, owner, request.parent_id)
                if tree.depth(request.parent_id) >= MAX_DEPTH:
                    raise BadRequest(f"albums nest at most {MAX_DEPTH} deep")
            self._require_free_name(tx, owner, request.parent_id, name, None)
            tx.execute(
                insert(tables.albums).values(
                    id=album_id,
                    owner=owner,
                    name=name,
                    parent_id=request.parent_id,
                    passphrase_salt=salt,
                    passphrase_hash=password_digest(request.passphrase, salt)
                    if request.passphrase and salt
                    else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            self.qonsent.register_owner(tx, album_resource(album_id), owner)
        return album_id

    def change(self, ctx: Context, album_id: str, request: AlbumChange, unlocked: set[str]) -> None:
        """Rename or move. Moving out from under a lock needs that lock's token."""
        row = self.row(album_id)
        owner = row["owner"]
        moving = "parent_id" in request.model_fields_set and request.parent_id != row["parent_id"]
        parent = request.parent_id if moving else row["parent_id"]
        if moving:
            # Checked before the write opens: a refusal is audited in its own transaction.
            with self.k.db.read() as conn:
                tree = self.tree(conn, owner)
            self.k.check(ctx, "write", album_resource(album_id))
            self.require_open(
                ctx, tree.lock_of(row["parent_id"]) if row["parent_id"] else None, unlocked
            )
        with self.k.change(ctx, "write", album_resource(album_id)) as tx:
            tree = self.tree(tx, owner)
            values: dict[str, Any] = {"updated_at": self.k.clock.now()}
            if moving:
                if parent is not None:
                    self._own_album(tx, owner, parent)
                    if tree.below(album_id, parent):
                        raise BadRequest("an album cannot move into itself or its sub-albums")
                    if tree.depth(parent) + _height(tree, album_id) > MAX_DEPTH:
                        raise BadRequest(f"albums nest at most {MAX_DEPTH} deep")
                new_lock = tree.lock_of(parent) if parent else None
                if new_lock is not None and self._shared(album_id):
                    raise Conflict("a shared album cannot go under a locked one; unshare it first")
                values["parent_id"] = parent
            name = _clean_name(request.name) if request.name is not None else row["name"]
            if request.name is not None or moving:
                self._require_free_name(tx, owner, parent, name, album_id)
                values["name"] = name
            tx.execute(update(tables.albums).where(tables.albums.c.id == album_id).values(**values))

    def delete(self, ctx: Context, album_id: str, unlocked: set[str]) -> None:
        """Delete an album (never its photos). Its sub-albums must go first."""
        row = self.row(album_id)
        a, ap = tables.albums, tables.album_photos
        self._require_open_before_write(ctx, "delete", row, unlocked)
        with self.k.change(ctx, "delete", album_resource(album_id)) as tx:
            tree = self.tree(tx, row["owner"])
            if any(parent == album_id for parent in tree.parent.values()):
                raise Conflict("the album has sub-albums: move or delete them first")
            tx.execute(delete(ap).where(ap.c.album_id == album_id))
            tx.execute(delete(tables.unlocks).where(tables.unlocks.c.album_id == album_id))
            tx.execute(delete(a).where(a.c.id == album_id))

    def add(self, ctx: Context, album_id: str, photo_ids: list[str]) -> list[str]:
        """Put the owner's photos in an album; returns those newly added."""
        row = self.row(album_id)
        p, ap = tables.photos, tables.album_photos
        wanted = sorted(set(photo_ids))
        now = self.k.clock.now()
        with self.k.change(ctx, "write", album_resource(album_id)) as tx:
            owned = set(
                tx.execute(
                    select(p.c.id).where(p.c.id.in_(wanted), p.c.owner == row["owner"])
                ).scalars()
            )
            missing = [pid for pid in wanted if pid not in owned]
            if missing:
                raise NotFound(f"no photo {missing[0]} in this album owner's library")
            present = set(
                tx.execute(
                    select(ap.c.photo_id).where(
                        ap.c.album_id == album_id, ap.c.photo_id.in_(wanted)
                    )
                ).scalars()
            )
            added = [pid for pid in wanted if pid not in present]
            for pid in added:
                tx.execute(insert(ap).values(album_id=album_id, photo_id=pid, added_at=now))
            tx.execute(
                update(tables.albums).where(tables.albums.c.id == album_id).values(updated_at=now)
            )
        return added

    def remove(self, ctx: Context, album_id: str, photo_id: str, unlocked: set[str]) -> None:
        row = self.row(album_id)
        ap = tables.album_photos
        self._require_open_before_write(ctx, "write", row, unlocked)
        with self.k.change(ctx, "write", album_resource(album_id)) as tx:
            gone = tx.execute(
                delete(ap).where(ap.c.album_id == album_id, ap.c.photo_id == photo_id)
            ).rowcount
            if not gone:
                raise NotFound(f"photo {photo_id} is not in album {album_id}")

    def unlock(self, ctx: Context, album_id: str, passphrase: str) -> Unlock:
        """A fresh unlock token for a locked album, for its owner who knows the passphrase."""
        row = self.row(album_id)
        resource = album_resource(album_id)
        if ctx.actor.id != row["owner"]:
            self.k.check(ctx, "admin", resource)
        if row["passphrase_hash"] is None:
            raise BadRequest("this album has no passphrase of its own: nothing to unlock")
        given = password_digest(passphrase, row["passphrase_salt"])
        if not hmac.compare_digest(given, row["passphrase_hash"]):
            self.k.guard.record(ctx, "read", resource, "deny")
            raise WrongPassphrase("that is not this album's passphrase")
        token = UNLOCK_TOKEN_PREFIX + secrets.token_urlsafe(24)
        expires = self.k.clock.now() + UNLOCK_LIFETIME
        with self.k.change(ctx, "read", resource) as tx:
            tx.execute(
                insert(tables.unlocks).values(
                    token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                    album_id=album_id,
                    actor=ctx.actor.id,
                    expires_at=expires,
                )
            )
        return Unlock(album_id=album_id, token=token, expires_at=expires)

    def prune_unlocks(self) -> int:
        u = tables.unlocks
        with self.k.db.write() as tx:
            return int(tx.execute(delete(u).where(u.c.expires_at <= self.k.clock.now())).rowcount)

    # Rules -------------------------------------------------------------------------------

    def _require_open_before_write(
        self, ctx: Context, action: str, row: RowMapping, unlocked: set[str]
    ) -> None:
        """Authorize, then check the album's lock, before the write transaction opens (a
        refusal is audited in a transaction of its own)."""
        self.k.check(ctx, action, album_resource(row["id"]))
        with self.k.db.read() as conn:
            lock = self.tree(conn, row["owner"]).lock_of(row["id"])
        self.require_open(ctx, lock, unlocked)

    def _own_album(self, conn: Connection, owner: str, album_id: str) -> RowMapping:
        row = self.row(album_id, conn)
        if row["owner"] != owner:
            raise NotFound(f"no album {album_id} in your library")
        return row

    def _require_free_name(
        self, conn: Connection, owner: str, parent: str | None, name: str, album_id: str | None
    ) -> None:
        a = tables.albums
        query = select(a.c.id).where(a.c.owner == owner, a.c.name == name)
        query = query.where(a.c.parent_id.is_(None) if parent is None else a.c.parent_id == parent)
        if album_id is not None:
            query = query.where(a.c.id != album_id)
        if conn.execute(query.limit(1)).first() is not None:
            raise Conflict(f"an album named {name!r} is already there")

    def _shared(self, album_id: str) -> bool:
        return bool(self.qonsent.grantees(album_resource(album_id)))


def _height(tree: Tree, album_id: str) -> int:
    """Levels from `album_id` down to its deepest sub-album (1 for a leaf)."""
    children: dict[str | None, list[str]] = {}
    for child, parent in tree.parent.items():
        children.setdefault(parent, []).append(child)
    best, stack = 1, [(album_id, 1)]
    while stack:
        current, level = stack.pop()
        best = max(best, level)
        if level <= MAX_DEPTH:
            stack += [(c, level + 1) for c in children.get(current, [])]
    return best


def _clean_name(name: str) -> str:
    cleaned = " ".join(unicodedata.normalize("NFC", name).split())
    if not cleaned or any(not c.isprintable() for c in cleaned):
        raise BadRequest("an album name is printable text")
    return cleaned


def membership_filter(album_id: str) -> ColumnElement[bool]:
    ap = tables.album_photos
    return tables.photos.c.id.in_(
        select(ap.c.photo_id).where(ap.c.album_id == album_id).scalar_subquery()
    )


__all__ = ["AlbumBook", "AlbumLocked", "Forbidden", "Tree"]
