"""Qdrive: each identity's own drive of files — encrypted at rest, versioned, shareable.

A file lives at a path in its owner's drive and has versions. A private version (the
default) is a Qlock stream: the body (ciphertext) in blob storage, the header — its data
key wrapped for the node, the owner and each reader it is shared with — in the database,
so deleting the header shreds the version. A public version is stored as its plaintext
and carries the CID IPFS gives it (see `unixfs`).

Uploads come in parts (resumable: each part is a signed request; a lost connection
resumes at the last part received). Parts wait in blob storage sealed to the node, so
any worker can take the next one, and are joined, encrypted and stored on completion,
streaming, in constant memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import posixpath
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from itertools import chain
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.blobs import put, put_bytes
from anarq.kernel.errors import (
    AnarqError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
)
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.kernel.subject import ExportItem, json_item
from anarq.node.service import NodeService
from anarq.qdrive import car, tables
from anarq.qdrive.models import (
    Entry,
    FileInfo,
    LinkInfo,
    Listing,
    QuotaInfo,
    ShareInfo,
    Upload,
    UploadRequest,
    VersionInfo,
)
from anarq.qdrive.unixfs import CHUNK_BYTES, UnixFSBuilder, root_from_digests
from anarq.qlock import (
    AgreementKey,
    RecipientKey,
    decrypt_stream,
    encrypt_stream_part,
    password_digest,
    rewrap_stream_header,
    start_stream,
    stream_recipients,
)
from anarq.qlock.seal import MAX_RECIPIENTS
from anarq.qonsent.models import GrantRequest
from anarq.qonsent.service import QonsentService
from anarq.qonsent.tables import PURPOSE_MAX
from anarq.squid.service import SquidService

UPLOAD_LIFETIME = timedelta(hours=24)
HOUSEKEEPING_EVERY_SECONDS = 300.0
READ_CHUNK_BYTES = 256 * 1024
_DEDUP_INFO = b"anarq/qdrive/content-tag/v1"
LINK_TOKEN_PREFIX = "anq_lnk_"  # noqa: S105 (a prefix, not a secret)
log = logging.getLogger(__name__)


class QuotaExceeded(AnarqError):
    code = "qdrive.quota_exceeded"
    status = 413
    title = "Drive quota exceeded"


def normalize_path(path: str) -> str:
    """`/a/b.txt` form: absolute, no `.`/`..`/empty segments, no trailing slash."""
    if not path or len(path) > tables.PATH_MAX:
        raise BadRequest(f"a path is 1 to {tables.PATH_MAX} characters")
    if "\x00" in path or any(ord(c) < 0x20 for c in path):
        raise BadRequest("a path has no control characters")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise BadRequest("a path has no '.' or '..' segments")
    if not parts:
        raise BadRequest("a file path names a file, not the drive's root")
    return "/" + "/".join(parts)


def normalize_folder(path: str | None) -> str:
    """`/` or `/a/b/`: the prefix a folder's entries share."""
    if not path or path.strip("/") == "":
        return "/"
    return normalize_path(path) + "/"


def file_resource(file_id: str) -> str:
    return f"qdrive:file:{file_id}"


def drive_resource(did: str) -> str:
    return f"qdrive:drive:{did}"


@dataclass(frozen=True)
class Opened:
    """A readable version: its description and its plaintext, chunk by chunk."""

    file: FileInfo
    version: VersionInfo
    chunks: Iterator[bytes]


class DriveService:
    erase_order = 10

    def __init__(
        self, kernel: Kernel, node: NodeService, squid: SquidService, qonsent: QonsentService
    ) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid
        self.qonsent = qonsent
        self._custody_keys: tuple[RecipientKey, AgreementKey] | None = None

    # Keys ----------------------------------------------------------------------------

    def _custody(self) -> tuple[RecipientKey, AgreementKey]:
        """The node's own reader key: lets it serve authorised reads and thumbnails.
        Derived once per process (the node key never changes while it runs)."""
        if self._custody_keys is None:
            key = self.node.identity.signing_key()
            self._custody_keys = key.verify_key.derive_recipient_key(), key.derive_agreement_key()
        return self._custody_keys

    def _content_tag(self, owner: str, sha256: bytes) -> str:
        secret = hashlib.sha256(_DEDUP_INFO + self.node.identity.signing_key().ed25519_seed())
        return hmac.new(secret.digest(), owner.encode() + b"\x00" + sha256, "sha256").hexdigest()

    # Policy --------------------------------------------------------------------------

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """An identity administers its own drive (a guard policy)."""
        return ctx.actor.kind == "identity" and resource == drive_resource(ctx.actor.id)

    def _owner(self, ctx: Context) -> str:
        if ctx.actor.kind != "identity":
            raise Forbidden("a drive belongs to an identity: sign the request as one")
        return ctx.actor.id

    # Uploads -------------------------------------------------------------------------

    def start_upload(self, ctx: Context, request: UploadRequest) -> Upload:
        """Open an upload: for a private file, its stream header (and so its key) now."""
        owner = self._owner(ctx)
        path = normalize_path(request.path)
        self._require_room(owner, request.size)
        with self.k.db.read() as conn:
            existing = self._live_file(conn, owner, path)
        if existing is not None and not request.overwrite:
            raise Conflict(f"{path} exists; upload with overwrite to add a version")
        now = self.k.clock.now()
        row = {
            "id": new_id(),
            "owner": owner,
            "path": path,
            "visibility": request.visibility,
            "media_type": request.media_type,
            "size": request.size,
            "received": 0,
            "header": self._new_header(owner, existing)
            if request.visibility == "private"
            else None,
            "created_at": now,
            "expires_at": now + UPLOAD_LIFETIME,
        }
        with self.k.change(ctx, "write", drive_resource(owner)) as tx:
            tx.execute(insert(tables.uploads).values(**row))
        return self._upload(row)

    def _new_header(self, owner: str, existing: RowMapping | None) -> bytes:
        """A fresh data key, wrapped for the node, the owner and the file's current readers
        (as many as a header holds: the node serves the others through their grant)."""
        readers = [self._custody()[0], self.squid.recipient_key(owner)]
        if existing is not None:
            readers += self._reader_keys(existing["id"])
        return start_stream(readers[:MAX_RECIPIENTS], chunk_bytes=CHUNK_BYTES)

    def upload(self, ctx: Context, upload_id: str) -> Upload:
        row = self._upload_row(ctx, upload_id)
        return self._upload(row)

    def append(self, ctx: Context, upload_id: str, offset: int, data: bytes) -> Upload:
        """Store the part starting at `offset`, encrypted as its place in the final stream.

        A part starts where the last one ended and, unless it ends the upload, holds a
        whole number of 256 KiB chunks. It is stored once, as it will stay: completing
        the upload moves no data.
        """
        row = self._upload_row(ctx, upload_id)
        if offset != row["received"]:
            raise Conflict(
                f"this upload continues at offset {row['received']}, not {offset}",
                offset=row["received"],
            )
        if not data:
            raise BadRequest("a part holds at least one byte")
        end = offset + len(data)
        if end > row["size"]:
            raise BadRequest(f"the part ends at {end}, past the declared size {row['size']}")
        final = end == row["size"]
        if not final and len(data) % CHUNK_BYTES:
            raise BadRequest(
                f"a part that does not end the upload is a multiple of {CHUNK_BYTES} bytes"
            )
        digests = _chunk_digests(data)
        if row["header"] is not None:
            self._claim(upload_id, offset, hashlib.sha256(digests).digest())
        blob_cid = self._store_part(row["header"], data, offset // CHUNK_BYTES, final)
        u, p = tables.uploads, tables.upload_parts
        with self.k.change(ctx, "write", drive_resource(row["owner"])) as tx:
            moved = tx.execute(
                update(u).where(u.c.id == upload_id, u.c.received == offset).values(received=end)
            ).rowcount
            if moved != 1:
                raise Conflict("another part landed first; ask for the upload's offset")
            count = tx.execute(
                select(func.count()).select_from(p).where(p.c.upload_id == upload_id)
            ).scalar_one()
            tx.execute(
                insert(p).values(
                    upload_id=upload_id,
                    n=count,
                    offset=offset,
                    size=len(data),
                    blob_cid=blob_cid,
                    digests=digests,
                )
            )
        return self._upload({**row, "received": end})

    def _claim(self, upload_id: str, offset: int, content: bytes) -> None:
        """Claim the position `offset` of a private upload for these bytes (`content`
        names them), before encrypting them there; refuse other bytes at a position
        once claimed. Committed on its own, so a crash cannot forget it."""
        u = tables.uploads
        with self.k.db.write() as tx:
            claimed = tx.execute(
                update(u)
                .where(
                    u.c.id == upload_id,
                    u.c.received == offset,
                    or_(
                        u.c.claim_offset.is_(None),
                        u.c.claim_offset != offset,
                        u.c.claim_digest == content,
                    ),
                )
                .values(claim_offset=offset, claim_digest=content)
            ).rowcount
            if claimed == 1:
                return
            received = tx.execute(select(u.c.received).where(u.c.id == upload_id)).scalar()
        if received != offset:
            raise Conflict(
                "another part landed first; ask for the upload's offset", offset=received
            )
        raise PartChanged(offset)

    def _store_part(self, header: bytes | None, data: bytes, first_chunk: int, final: bool) -> str:
        """Write one part as a body segment; return its blob CID."""
        if header is None:
            blob = put_bytes(self.k.blobs, data)
        else:
            _, opener = self._custody()
            sealed = encrypt_stream_part(header, opener, data, first_chunk=first_chunk, final=final)
            blob = put(self.k.blobs, sealed)
        return blob.cid

    def abort(self, ctx: Context, upload_id: str) -> None:
        row = self._upload_row(ctx, upload_id)
        with self.k.change(ctx, "write", drive_resource(row["owner"])) as tx:
            cids = self._drop_upload(tx, upload_id)
        self._delete_unused(cids)

    def complete(self, ctx: Context, upload_id: str) -> FileInfo:
        """Make the uploaded parts a new file, or a new version of the file at the path."""
        row = self._upload_row(ctx, upload_id)
        if row["received"] != row["size"]:
            raise Conflict(
                f"the upload has {row['received']} of {row['size']} bytes",
                offset=row["received"],
            )
        p = tables.upload_parts
        with self.k.db.read() as conn:
            parts = conn.execute(
                select(p.c.blob_cid, p.c.digests).where(p.c.upload_id == upload_id).order_by(p.c.n)
            ).all()
        segments = [part.blob_cid for part in parts]
        digests = b"".join(part.digests for part in parts)
        if not parts:  # an empty file: its one (empty, final) chunk
            segments = [self._store_part(row["header"], b"", 0, True)]
            digests = _chunk_digests(b"")
        return self._record(ctx, row, segments, digests, upload_id=upload_id)

    def put(
        self,
        ctx: Context,
        path: str,
        data: bytes,
        *,
        visibility: str = "private",
        media_type: str = "application/octet-stream",
        overwrite: bool = False,
    ) -> FileInfo:
        """A whole small file in one request."""
        owner = self._owner(ctx)
        path = normalize_path(path)
        self._require_room(owner, len(data))
        self.k.check(ctx, "write", drive_resource(owner))
        with self.k.db.read() as conn:
            existing = self._live_file(conn, owner, path)
        if existing is not None and not overwrite:
            raise Conflict(f"{path} exists; upload with overwrite to add a version")
        header = self._new_header(owner, existing) if visibility == "private" else None
        cid, digests = self._store_part(header, data, 0, True), _chunk_digests(data)
        row = {
            "owner": owner,
            "path": path,
            "visibility": visibility,
            "media_type": media_type,
            "size": len(data),
            "header": header,
        }
        try:
            return self._record(ctx, row, [cid], digests, upload_id=None)
        except BaseException:
            if header is not None:
                self._delete_unused([cid])
            raise

    def _record(
        self,
        ctx: Context,
        row: dict[str, Any] | RowMapping,
        segments: list[str],
        digests: bytes,
        *,
        upload_id: str | None,
    ) -> FileInfo:
        """Record the version whose body is `segments`, in one transaction with its event."""
        owner, path = row["owner"], row["path"]
        header: bytes | None = row["header"]
        size = int(row["size"])
        unixfs = None if header is not None else str(root_from_digests(digests, size))
        tag = self._content_tag(owner, hashlib.sha256(digests).digest())
        f, v, sg = tables.files, tables.versions, tables.segments
        dropped: list[str] = []
        now = self.k.clock.now()
        with self.k.db.read() as conn:
            existing = self._live_file(conn, owner, path)
        resource = file_resource(existing["id"]) if existing else drive_resource(owner)
        with self.k.change(ctx, "write", resource) as tx:
            if header is not None:
                # Dedup inside this drive: the same content is kept once, under one key.
                twin = tx.execute(
                    select(v.c.file_id, v.c.version, v.c.header)
                    .join(f, f.c.id == v.c.file_id)
                    .where(v.c.content_tag == tag, f.c.owner == owner, v.c.header.is_not(None))
                    .limit(1)
                ).first()
                if twin is not None:
                    dropped, header = segments, twin.header
                    segments = list(
                        tx.execute(
                            select(sg.c.blob_cid)
                            .where(sg.c.file_id == twin.file_id, sg.c.version == twin.version)
                            .order_by(sg.c.n)
                        ).scalars()
                    )
            if existing is None:
                file_id = new_id()
                version = 1
                try:
                    tx.execute(
                        insert(f).values(
                            id=file_id,
                            owner=owner,
                            path=path,
                            visibility=row["visibility"],
                            media_type=row["media_type"],
                            size=size,
                            version=1,
                            created_at=now,
                            updated_at=now,
                            trashed_at=None,
                        )
                    )
                except IntegrityError:
                    raise Conflict(f"{path} was created meanwhile; upload again") from None
                self.qonsent.register_owner(tx, file_resource(file_id), owner)
            else:
                file_id = existing["id"]
                version = existing["version"] + 1
                moved = tx.execute(
                    update(f)
                    .where(f.c.id == file_id, f.c.version == existing["version"])
                    .values(
                        version=version,
                        size=size,
                        visibility=row["visibility"],
                        media_type=row["media_type"],
                        updated_at=now,
                    )
                ).rowcount
                if moved != 1:
                    raise Conflict(f"{path} changed meanwhile; upload again")
            tx.execute(
                insert(v).values(
                    file_id=file_id,
                    version=version,
                    size=size,
                    unixfs_cid=unixfs,
                    content_tag=tag,
                    header=header,
                    created_at=now,
                    created_by=ctx.actor.id,
                )
            )
            tx.execute(
                insert(sg),
                [
                    {"file_id": file_id, "version": version, "n": n, "blob_cid": cid}
                    for n, cid in enumerate(segments)
                ],
            )
            if upload_id is not None:
                self._drop_upload(tx, upload_id)
            self.k.bus.publish(
                tx,
                "qdrive.file.stored",
                {
                    "file_id": file_id,
                    "version": version,
                    "owner": owner,
                    "path": path,
                    "size": size,
                    "media_type": row["media_type"],
                    "visibility": row["visibility"],
                    "cid": unixfs,
                },
                actor=ctx.actor.id,
                subject=file_resource(file_id),
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        self._delete_unused(dropped)
        return self.file(ctx, file_id)

    def _drop_upload(self, tx: Connection, upload_id: str) -> list[str]:
        """Forget an upload; return its parts' blobs (still the body, if it completed)."""
        p = tables.upload_parts
        cids = list(tx.execute(select(p.c.blob_cid).where(p.c.upload_id == upload_id)).scalars())
        tx.execute(delete(p).where(p.c.upload_id == upload_id))
        tx.execute(delete(tables.uploads).where(tables.uploads.c.id == upload_id))
        return cids

    def _upload_row(self, ctx: Context, upload_id: str) -> RowMapping:
        owner = self._owner(ctx)
        with self.k.db.read() as conn:
            row = (
                conn.execute(select(tables.uploads).where(tables.uploads.c.id == upload_id))
                .mappings()
                .first()
            )
        if row is None or row["owner"] != owner:
            raise NotFound(f"no upload {upload_id} in your drive")
        if row["expires_at"] <= self.k.clock.now():
            raise NotFound(f"upload {upload_id} has expired; start again")
        return row

    def _upload(self, row: dict[str, Any] | RowMapping) -> Upload:
        return Upload(
            id=row["id"],
            path=row["path"],
            size=row["size"],
            offset=row["received"],
            visibility=row["visibility"],
            media_type=row["media_type"],
            part_max_bytes=self.part_max_bytes,
            part_multiple_bytes=CHUNK_BYTES,
            expires_at=row["expires_at"],
        )

    @property
    def part_max_bytes(self) -> int:
        """The largest part: the body limit, rounded down to whole chunks."""
        return max(CHUNK_BYTES, self.k.settings.max_body_bytes // CHUNK_BYTES * CHUNK_BYTES)

    # Reading -------------------------------------------------------------------------

    def file(self, ctx: Context, file_id: str) -> FileInfo:
        row = self._file_row(file_id)
        self.k.check(ctx, "read", file_resource(file_id))
        return self._file_info(row)

    def resolve(self, ctx: Context, ref: str, *, include_trash: bool = False) -> RowMapping:
        """A file by path (in the caller's drive), id, or the CID of one of its versions."""
        f, v = tables.files, tables.versions
        with self.k.db.read() as conn:
            if ref.startswith("/"):
                owner = self._owner(ctx)
                row = self._live_file(conn, owner, normalize_path(ref))
                if row is None and include_trash:
                    row = (
                        conn.execute(
                            select(f)
                            .where(f.c.owner == owner, f.c.path == normalize_path(ref))
                            .order_by(f.c.trashed_at.desc())
                        )
                        .mappings()
                        .first()
                    )
            elif ref.startswith("baf"):
                row = (
                    conn.execute(
                        select(f)
                        .join(v, v.c.file_id == f.c.id)
                        .where(v.c.unixfs_cid == ref)
                        .limit(1)
                    )
                    .mappings()
                    .first()
                )
            else:
                row = conn.execute(select(f).where(f.c.id == ref)).mappings().first()
        if row is None:
            raise NotFound(f"no file {ref!r}")
        return row

    def open(
        self,
        ctx: Context,
        file_id: str,
        version: int | None = None,
        *,
        audit_tx: Connection | None = None,
    ) -> Opened:
        """Check read access, record it, and stream the plaintext of a version.

        An event handler, which runs inside a write transaction, passes it as `audit_tx`:
        the read's audit record joins it (a second write transaction would wait on it).
        """
        row = self._file_row(file_id)
        resource = file_resource(file_id)
        self.k.check(ctx, "read", resource)
        if row["trashed_at"] is not None and row["owner"] != ctx.actor.id:
            raise NotFound(f"no file {file_id}")
        ver = self._version_row(file_id, version or row["version"])
        self.k.guard.record(ctx, "read", resource, "allow", audit_tx)
        return self._opened(row, ver)

    def _opened(self, row: RowMapping, ver: RowMapping) -> Opened:
        info = self._version_info(ver)
        body = self._body(ver["file_id"], ver["version"])
        if ver["header"] is None:
            if ver["unixfs_cid"] is None:
                raise NotFound(f"version {ver['version']} of {row['id']} was shredded")
            return Opened(self._file_info(row), info, body)
        _, opener = self._custody()
        return Opened(
            self._file_info(row), info, decrypt_stream(chain((ver["header"],), body), opener)
        )

    def _body(self, file_id: str, version: int) -> Iterator[bytes]:
        """The stored body: its segments' blobs, read one after the other (lazily)."""
        sg = tables.segments
        with self.k.db.read() as conn:
            cids = list(
                conn.execute(
                    select(sg.c.blob_cid)
                    .where(sg.c.file_id == file_id, sg.c.version == version)
                    .order_by(sg.c.n)
                ).scalars()
            )
        return chain.from_iterable(self.k.blobs.open(cid) for cid in cids)

    def sealed(self, ctx: Context, file_id: str, version: int | None = None) -> Iterator[bytes]:
        """The version as its Qlock stream (header + ciphertext), for readers holding a key."""
        row = self._file_row(file_id)
        resource = file_resource(file_id)
        self.k.check(ctx, "read", resource)
        ver = self._version_row(file_id, version or row["version"])
        if ver["header"] is None:
            raise BadRequest("this version is public or shredded: it has no sealed form")
        self.k.guard.record(ctx, "read", resource, "allow")
        return chain((ver["header"],), self._body(file_id, ver["version"]))

    def listing(self, ctx: Context, folder: str | None, *, trash: bool = False) -> Listing:
        owner = self._owner(ctx)
        prefix = normalize_folder(folder)
        f = tables.files
        query = select(f).where(f.c.owner == owner)
        if prefix != "/":
            query = query.where(f.c.path.startswith(prefix, autoescape=True))
        query = query.where(f.c.trashed_at.is_not(None) if trash else f.c.trashed_at.is_(None))
        with self.k.db.read() as conn:
            rows = conn.execute(query.order_by(f.c.path)).mappings().all()
        entries: list[Entry] = []
        folders: dict[str, int] = {}
        for row in rows:
            rest = row["path"][len(prefix) :]
            if "/" in rest and not trash:
                name = rest.split("/", 1)[0]
                folders[name] = folders.get(name, 0) + 1
            else:
                entries.append(Entry(kind="file", name=rest, file=self._file_info(row)))
        entries = [
            Entry(kind="folder", name=name, items=count) for name, count in sorted(folders.items())
        ] + entries
        return Listing(folder=prefix, entries=entries)

    def versions(self, ctx: Context, file_id: str) -> list[VersionInfo]:
        self._file_row(file_id)
        self.k.check(ctx, "read", file_resource(file_id))
        v = tables.versions
        with self.k.db.read() as conn:
            rows = (
                conn.execute(select(v).where(v.c.file_id == file_id).order_by(v.c.version.desc()))
                .mappings()
                .all()
            )
        return [self._version_info(row) for row in rows]

    # Changing ------------------------------------------------------------------------

    def move(self, ctx: Context, source: str, target: str) -> list[FileInfo]:
        """Rename a file, or move a folder with everything under it."""
        owner = self._owner(ctx)
        src, dst = normalize_path(source), normalize_path(target)
        if dst == src or dst.startswith(src + "/"):
            raise BadRequest("cannot move a path onto itself or into itself")
        f = tables.files
        live = (f.c.owner == owner) & f.c.trashed_at.is_(None)
        moved: list[str] = []
        with self.k.change(ctx, "write", drive_resource(owner)) as tx:
            rows = (
                tx.execute(
                    select(f.c.id, f.c.path).where(
                        live & ((f.c.path == src) | f.c.path.startswith(src + "/", autoescape=True))
                    )
                )
                .mappings()
                .all()
            )
            if not rows:
                raise NotFound(f"nothing at {src}")
            for row in rows:
                new_path = dst + row["path"][len(src) :]
                if self._live_file(tx, owner, new_path) is not None:
                    raise Conflict(f"{new_path} exists")
                tx.execute(
                    update(f)
                    .where(f.c.id == row["id"])
                    .values(path=new_path, updated_at=self.k.clock.now())
                )
                self._publish(tx, ctx, "qdrive.file.moved", row["id"], path=new_path)
                moved.append(row["id"])
        return [self.file(ctx, file_id) for file_id in moved]

    def trash(self, ctx: Context, file_id: str) -> FileInfo:
        row = self._file_row(file_id)
        f = tables.files
        with self.k.change(ctx, "delete", file_resource(file_id)) as tx:
            if row["trashed_at"] is None:
                tx.execute(update(f).where(f.c.id == file_id).values(trashed_at=self.k.clock.now()))
                self._publish(tx, ctx, "qdrive.file.trashed", file_id, path=row["path"])
        return self.file(ctx, file_id)

    def restore(self, ctx: Context, file_id: str) -> FileInfo:
        row = self._file_row(file_id)
        f = tables.files
        with self.k.change(ctx, "delete", file_resource(file_id)) as tx:
            if row["trashed_at"] is not None:
                if self._live_file(tx, row["owner"], row["path"]) is not None:
                    raise Conflict(f"{row['path']} is taken; move that file first")
                tx.execute(update(f).where(f.c.id == file_id).values(trashed_at=None))
                self._publish(tx, ctx, "qdrive.file.restored", file_id, path=row["path"])
        return self.file(ctx, file_id)

    def purge(self, ctx: Context, file_id: str) -> None:
        """Delete for good: every version's key is shredded, unshared bodies removed."""
        row = self._file_row(file_id)
        f, v = tables.files, tables.versions
        sg = tables.segments
        with self.k.change(ctx, "delete", file_resource(file_id)) as tx:
            cids = list(tx.execute(select(sg.c.blob_cid).where(sg.c.file_id == file_id)).scalars())
            tx.execute(delete(sg).where(sg.c.file_id == file_id))
            tx.execute(delete(v).where(v.c.file_id == file_id))
            tx.execute(delete(f).where(f.c.id == file_id))
            tx.execute(delete(tables.links).where(tables.links.c.file_id == file_id))
            self.k.bus.publish(
                tx,
                "qdrive.file.deleted",
                {"file_id": file_id, "owner": row["owner"], "path": row["path"]},
                actor=ctx.actor.id,
                subject=file_resource(file_id),
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        self._delete_unused(cids)

    def _publish(self, tx: Connection, ctx: Context, kind: str, file_id: str, **data: Any) -> None:
        self.k.bus.publish(
            tx,
            kind,
            {"file_id": file_id, **data},
            actor=ctx.actor.id,
            subject=file_resource(file_id),
            correlation_id=ctx.correlation_id or ctx.request_id,
        )

    # Sharing -------------------------------------------------------------------------

    def share(
        self,
        ctx: Context,
        file_id: str,
        grantee: str,
        actions: list[str],
        expires_at: datetime | None,
    ) -> ShareInfo:
        """Grant `grantee` access and wrap every version's key for them (no re-encryption)."""
        self._file_row(file_id)
        self._custody()
        with self.k.change(ctx, "share", file_resource(file_id)) as tx:
            return self.share_in(tx, ctx, file_id, grantee, actions, expires_at)

    def share_in(
        self,
        tx: Connection,
        ctx: Context,
        file_id: str,
        grantee: str,
        actions: list[str],
        expires_at: datetime | None,
    ) -> ShareInfo:
        """`share`, inside the caller's transaction (a sale's delivery, which commits with
        the payment or not at all). The caller authorized `ctx`; Qonsent checks its right
        to grant."""
        row = self._file_row(file_id)
        reader = self.squid.recipient_key(grantee)
        grant = self.qonsent.grant_in(
            tx,
            ctx,
            GrantRequest(
                grantee=grantee,
                resource=file_resource(file_id),
                actions=actions,
                purpose=f"shared file {row['path']}"[:PURPOSE_MAX],
                expires_at=expires_at,
            ),
        )
        _, opener = self._custody()
        v = tables.versions
        wrapped = True
        for ver in tx.execute(
            select(v.c.version, v.c.header).where(v.c.file_id == file_id, v.c.header.is_not(None))
        ).all():
            held = stream_recipients(ver.header)
            if reader.key_id in held:
                continue
            if len(held) >= MAX_RECIPIENTS:
                wrapped = False  # a full header: the node serves this reader through the grant
                continue
            tx.execute(
                update(v)
                .where(v.c.file_id == file_id, v.c.version == ver.version)
                .values(header=rewrap_stream_header(ver.header, opener, [reader]))
            )
        self.k.bus.publish(
            tx,
            "qdrive.file.shared",
            {"file_id": file_id, "grantee": grantee, "actions": grant.actions},
            actor=ctx.actor.id,
            subject=file_resource(file_id),
            correlation_id=ctx.correlation_id or ctx.request_id,
        )
        return ShareInfo(
            file_id=file_id,
            grantee=grantee,
            actions=grant.actions,
            grant_id=grant.id,
            expires_at=grant.expires_at,
            key_wrapped=wrapped,
        )

    def unshare(self, ctx: Context, file_id: str, grantee: str) -> list[str]:
        """Revoke every grant `grantee` holds on the file. Later versions get new keys
        wrapped only for those who still hold a grant."""
        self._file_row(file_id)
        revoked = []
        for grant in self.qonsent.who_can(ctx, file_resource(file_id)):
            if grant.grantee == grantee and grant.revoked_at is None:
                self.qonsent.revoke(ctx, grant.id)
                revoked.append(grant.id)
        if not revoked:
            raise NotFound(f"{grantee} holds no share of this file")
        return revoked

    def shares(self, ctx: Context, file_id: str) -> list[ShareInfo]:
        self._file_row(file_id)
        return [
            ShareInfo(
                file_id=file_id,
                grantee=grant.grantee,
                actions=grant.actions,
                grant_id=grant.id,
                expires_at=grant.expires_at,
            )
            for grant in self.qonsent.who_can(ctx, file_resource(file_id))
            if grant.revoked_at is None
        ]

    def _reader_keys(self, file_id: str) -> list[RecipientKey]:
        """Keys of identities that hold a live grant on the file now."""
        keys = []
        for grantee in self.qonsent.grantees(file_resource(file_id)):
            try:
                keys.append(self.squid.recipient_key(grantee))
            except BadRequest:
                continue  # e.g. "public", or a revoked identity: nobody to wrap for
        return keys

    # Links ---------------------------------------------------------------------------

    def create_link(
        self,
        ctx: Context,
        file_id: str,
        *,
        expires_at: datetime | None,
        password: str | None,
        max_downloads: int | None,
    ) -> LinkInfo:
        """A bearer link that reads the file's current version without an identity."""
        self._file_row(file_id)
        now = self.k.clock.now()
        if expires_at is not None and expires_at <= now:
            raise BadRequest("expires_at is in the past")
        token = LINK_TOKEN_PREFIX + secrets.token_urlsafe(24)
        salt = os.urandom(16) if password else None
        row = {
            "id": new_id(),
            "file_id": file_id,
            "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
            "password_salt": salt,
            "password_hash": password_digest(password, salt) if password and salt else None,
            "expires_at": expires_at,
            "max_downloads": max_downloads,
            "downloads": 0,
            "created_by": ctx.actor.id,
            "created_at": now,
            "revoked_at": None,
        }
        with self.k.change(ctx, "share", file_resource(file_id)) as tx:
            tx.execute(insert(tables.links).values(**row))
        return _link_info(row, token)

    def links(self, ctx: Context, file_id: str) -> list[LinkInfo]:
        self._file_row(file_id)
        self.k.check(ctx, "share", file_resource(file_id))
        ln = tables.links
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(ln).where(ln.c.file_id == file_id).order_by(ln.c.created_at)
            ).mappings()
            return [_link_info(row, None) for row in rows]

    def revoke_link(self, ctx: Context, link_id: str) -> LinkInfo:
        ln = tables.links
        with self.k.db.read() as conn:
            row = conn.execute(select(ln).where(ln.c.id == link_id)).mappings().first()
        if row is None:
            raise NotFound(f"no link {link_id}")
        now = self.k.clock.now()
        with self.k.change(ctx, "share", file_resource(row["file_id"])) as tx:
            tx.execute(
                update(ln)
                .where(ln.c.id == link_id, ln.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return _link_info({**row, "revoked_at": row["revoked_at"] or now}, None)

    def open_link(self, ctx: Context, token: str, password: str | None) -> Opened:
        """What a link reads: the file's current version, if the link still allows it.

        The token is the authority (checked here, not by Qonsent); every use is audited
        under the file, and a wrong password counts as a failed authentication.
        """
        ln = tables.links
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.k.db.read() as conn:
            row = conn.execute(select(ln).where(ln.c.token_sha256 == digest)).mappings().first()
        now = self.k.clock.now()
        if (
            row is None
            or row["revoked_at"] is not None
            or (row["expires_at"] is not None and row["expires_at"] <= now)
        ):
            raise NotFound("this link does not exist, has expired or was revoked")
        resource = file_resource(row["file_id"])
        if row["password_hash"] is not None:
            given = password_digest(password, row["password_salt"]) if password else b""
            if not hmac.compare_digest(given, row["password_hash"]):
                self.k.guard.record(ctx, "read", resource, "deny")
                raise Unauthenticated(
                    "this link needs its password in the X-Anarq-Link-Password header"
                )
        file = self._file_row(row["file_id"])
        if file["trashed_at"] is not None:
            raise NotFound("this link's file is in the trash")
        with self.k.db.write() as tx:
            taken = tx.execute(
                update(ln)
                .where(
                    ln.c.id == row["id"],
                    (ln.c.max_downloads.is_(None)) | (ln.c.downloads < ln.c.max_downloads),
                )
                .values(downloads=ln.c.downloads + 1)
            ).rowcount
            self.k.guard.record(ctx, "read", resource, "allow" if taken else "deny", tx)
        if not taken:
            raise NotFound("this link has been used as many times as it allows")
        return self._opened(file, self._version_row(file["id"], file["version"]))

    # CAR -----------------------------------------------------------------------------

    def export_car(self, ctx: Context, file_id: str, version: int | None = None) -> Iterator[bytes]:
        """The version's UnixFS DAG as a CAR v1 stream (plaintext: an export for its reader).

        A private version's root is computed first, in a pass over the content, because
        the CAR header names it before any block.
        """
        opened = self.open(ctx, file_id, version)
        row = self._version_row(file_id, opened.version.version)
        root = row["unixfs_cid"]
        if root is None:
            builder = UnixFSBuilder()
            for piece in opened.chunks:
                builder.update(piece)
            root = str(builder.finish())
            again = self._opened(self._file_row(file_id), row).chunks
        else:
            again = opened.chunks
        return car.export(root, again)

    # Data-subject requests -----------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """A list of the person's files and versions, then each file's current content."""
        f, v = tables.files, tables.versions
        with self.k.db.read() as conn:
            rows = conn.execute(select(f).where(f.c.owner == did).order_by(f.c.path)).mappings()
            owned = list(rows)
            listing = []
            for row in owned:
                found = conn.execute(
                    select(v.c.version, v.c.size, v.c.unixfs_cid, v.c.created_at)
                    .where(v.c.file_id == row["id"])
                    .order_by(v.c.version)
                ).mappings()
                listing.append({**dict(row), "versions": [dict(x) for x in found]})
        yield json_item("files.json", listing)
        for row in owned:
            folder = "trash" if row["trashed_at"] is not None else "files"
            ver = self._version_row(row["id"], row["version"])
            yield ExportItem(f"{folder}{row['path']}", _Lazy(partial(self._opened, row, ver)))

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Delete every file for good (keys shredded) and every unfinished upload."""
        f, u = tables.files, tables.uploads
        with self.k.db.read() as conn:
            ids = list(conn.execute(select(f.c.id).where(f.c.owner == did)).scalars())
            uploads = list(conn.execute(select(u.c.id).where(u.c.owner == did)).scalars())
        for file_id in ids:
            self.purge(ctx, file_id)
        with self.k.change(ctx, "delete", drive_resource(did)) as tx:
            cids = [cid for upload_id in uploads for cid in self._drop_upload(tx, upload_id)]
        self._delete_unused(cids)
        return {"files_shredded": len(ids), "uploads_dropped": len(uploads)}

    # Quota ---------------------------------------------------------------------------

    def quota(self, ctx: Context) -> QuotaInfo:
        owner = self._owner(ctx)
        used, files = self._usage(owner)
        return QuotaInfo(
            used_bytes=used, limit_bytes=self.k.settings.drive_quota_bytes, files=files
        )

    def _usage(self, owner: str) -> tuple[int, int]:
        f, v = tables.files, tables.versions
        with self.k.db.read() as conn:
            # Versions that share a body (dedup) count once.
            stored = (
                select(v.c.content_tag, func.max(v.c.size).label("size"))
                .join(f, f.c.id == v.c.file_id)
                .where(f.c.owner == owner)
                .group_by(v.c.content_tag)
                .subquery()
            )
            used = conn.execute(select(func.coalesce(func.sum(stored.c.size), 0))).scalar_one()
            files = conn.execute(
                select(func.count()).select_from(f).where(f.c.owner == owner)
            ).scalar_one()
            pending = conn.execute(
                select(func.coalesce(func.sum(tables.uploads.c.size), 0)).where(
                    tables.uploads.c.owner == owner
                )
            ).scalar_one()
        return int(used) + int(pending), int(files)

    def _require_room(self, owner: str, size: int) -> None:
        used, _ = self._usage(owner)
        limit = self.k.settings.drive_quota_bytes
        if used + size > limit:
            raise QuotaExceeded(
                f"{size} more bytes would put the drive at {used + size} of {limit}",
                used_bytes=used,
                limit_bytes=limit,
            )

    # Housekeeping --------------------------------------------------------------------

    def prune_uploads(self) -> int:
        """Drop uploads past their lifetime, with their parts."""
        u = tables.uploads
        with self.k.db.write() as tx:
            stale = list(
                tx.execute(select(u.c.id).where(u.c.expires_at < self.k.clock.now())).scalars()
            )
            cids = [cid for upload_id in stale for cid in self._drop_upload(tx, upload_id)]
        self._delete_unused(cids)
        return len(stale)

    async def run_housekeeping(self, stop: asyncio.Event) -> None:
        """Background task: drop expired uploads every few minutes."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.prune_uploads)
            except Exception:
                log.exception("pruning expired uploads failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING_EVERY_SECONDS)
            except TimeoutError:
                continue

    def _delete_unused(self, cids: list[str]) -> None:
        """Delete the blobs among `cids` that no stored version uses (after the commit)."""
        if not cids:
            return
        sg = tables.segments
        with self.k.db.read() as conn:
            used = set(conn.execute(select(sg.c.blob_cid).where(sg.c.blob_cid.in_(cids))).scalars())
        for cid in set(cids) - used:
            try:
                self.k.blobs.delete(cid)
            except NotFound:
                continue

    # Rows ----------------------------------------------------------------------------

    def _file_row(self, file_id: str) -> RowMapping:
        with self.k.db.read() as conn:
            row = conn.execute(select(tables.files).where(tables.files.c.id == file_id))
            found = row.mappings().first()
        if found is None:
            raise NotFound(f"no file {file_id}")
        return found

    def _version_row(self, file_id: str, version: int) -> RowMapping:
        v = tables.versions
        with self.k.db.read() as conn:
            row = (
                conn.execute(select(v).where(v.c.file_id == file_id, v.c.version == version))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"file {file_id} has no version {version}")
        return row

    def _live_file(self, conn: Connection, owner: str, path: str) -> RowMapping | None:
        f = tables.files
        return (
            conn.execute(
                select(f).where(f.c.owner == owner, f.c.path == path, f.c.trashed_at.is_(None))
            )
            .mappings()
            .first()
        )

    def _file_info(self, row: RowMapping) -> FileInfo:
        return FileInfo(
            id=row["id"],
            owner=row["owner"],
            path=row["path"],
            name=posixpath.basename(row["path"]),
            visibility=row["visibility"],
            media_type=row["media_type"],
            size=row["size"],
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            trashed_at=row["trashed_at"],
        )

    def _version_info(self, row: RowMapping) -> VersionInfo:
        return VersionInfo(
            version=row["version"],
            size=row["size"],
            cid=row["unixfs_cid"],
            encrypted=row["header"] is not None,
            created_at=row["created_at"],
            created_by=row["created_by"],
            readers=len(_readers(row["header"])) if row["header"] is not None else None,
        )


class _Lazy:
    """Chunks opened only when iterated: an export opens one file at a time."""

    def __init__(self, open_: Callable[[], Opened]) -> None:
        self.open = open_

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.open().chunks)


def _chunk_digests(data: bytes) -> bytes:
    """The SHA-256 of each 256 KiB chunk of `data` (one, of nothing, for no bytes)."""
    view = memoryview(data)
    return b"".join(
        hashlib.sha256(view[i : i + CHUNK_BYTES]).digest()
        for i in range(0, max(len(data), 1), CHUNK_BYTES)
    )


class PartChanged(Conflict):
    code = "qdrive.part_changed"
    title = "Other bytes at a position already encrypted"

    def __init__(self, offset: int) -> None:
        super().__init__(
            f"the part at offset {offset} was begun with other bytes, and bytes once "
            "encrypted at a position of a file cannot change there: send the same bytes, "
            "or start a new upload",
            offset=offset,
        )


def _link_info(row: dict[str, Any] | RowMapping, token: str | None) -> LinkInfo:
    return LinkInfo(
        id=row["id"],
        file_id=row["file_id"],
        token=token,
        url_path=f"/qdrive/l/{token}" if token else None,
        password=row["password_hash"] is not None,
        expires_at=row["expires_at"],
        max_downloads=row["max_downloads"],
        downloads=row["downloads"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def _readers(header: bytes) -> list[str]:
    return stream_recipients(header)
