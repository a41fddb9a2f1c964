"""Mutable pointers: each identity's keys, each pointing at a CID, with every version kept.

A key lives in its owner's namespace. Its Qonsent resource is
`qindex:pointer:<owner DID>:<key, percent-encoded>` (`did:key:z6Mk…` keeps its colons, so
the whole namespace is the pattern `qindex:pointer:did:key:z6Mk…:*`). The owner writes,
reads and grants; anyone else reads with a grant of `read` on the pointer or on the
namespace pattern. Each write adds a version that names the CID it replaced (`prev_cid`),
so a history is a chain back to the first.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from urllib.parse import quote, unquote

from multiformats import CID
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidCid,
    NotFound,
    Unauthenticated,
)
from anarq.kernel.guard import Context
from anarq.qindex import tables
from anarq.qindex.access import Reach
from anarq.qindex.models import Pointer, PointerList, PointerPut, valid_key
from anarq.qindex.tables import CID_MAX, KEY_MAX, RESOURCE_MAX
from anarq.qonsent.service import QonsentService

LIST_LIMIT_MAX = 200
HISTORY_MAX = 1000

_p, _v, _t = tables.pointers, tables.pointer_versions, tables.pointer_tags


def _segment(text: str) -> str:
    # Qonsent resource segments allow letters, digits and `._~@%+=-`: percent-encode the rest.
    return quote(text, safe="").replace("_", "%5F")


def namespace_prefix(owner: str) -> str:
    """`qindex:pointer:did:key:z6Mk…:`: every pointer of `owner` starts so."""
    return "qindex:pointer:" + ":".join(_segment(part) for part in owner.split(":")) + ":"


def pointer_resource(owner: str, key: str) -> str:
    return namespace_prefix(owner) + _segment(key)


def check_cid(cid: str) -> str:
    """A CID (v0 or v1, any codec and hash): what a pointer may point at."""
    if not cid or len(cid) > CID_MAX:
        raise InvalidCid(f"a CID is 1 to {CID_MAX} characters")
    try:
        CID.decode(cid)
    except Exception:  # the decoder raises many types for garbage; all mean 'not a CID'
        raise InvalidCid(f"{cid!r} is not a CID") from None
    return cid


def check_key(owner: str, key: str) -> str:
    if not valid_key(key):
        raise BadRequest(
            f"a key is 1 to {KEY_MAX} characters: segments of letters, digits and ._~@+=- "
            "joined by single slashes"
        )
    if len(pointer_resource(owner, key)) > RESOURCE_MAX:
        raise BadRequest("the key is too long once encoded into its resource name")
    return key


class Pointers:
    def __init__(self, kernel: Kernel, qonsent: QonsentService) -> None:
        self.k = kernel
        self.qonsent = qonsent

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """An identity does anything in its own pointer namespace (a guard policy)."""
        return ctx.actor.kind == "identity" and resource.startswith(namespace_prefix(ctx.actor.id))

    # Writing -------------------------------------------------------------------------

    def put(self, ctx: Context, key: str, request: PointerPut) -> Pointer:
        """Point `key` of the caller's namespace at `request.cid`: a new version.

        With `expected_version`, refuses (409) unless the pointer is at that version.
        Tags given replace the current ones; omitted, they stay.
        """
        owner = _identity(ctx)
        check_key(owner, key)
        cid = check_cid(request.cid)
        resource = pointer_resource(owner, key)
        now = self.k.clock.now()
        with self.k.change(ctx, "write", resource) as tx:
            current = _pointer_row(tx, owner, key)
            version = current["version"] if current else 0
            if request.expected_version is not None and request.expected_version != version:
                raise Conflict(
                    f"{key} is at version {version}, not {request.expected_version}",
                    version=version,
                )
            tags = request.tags if request.tags is not None else _tags(tx, owner, key)
            self._advance(tx, owner, key, current, cid, now)
            tx.execute(
                insert(_v).values(
                    owner=owner,
                    key=key,
                    version=version + 1,
                    cid=cid,
                    prev_cid=current["cid"] if current else None,
                    tags=tags,
                    created_at=now,
                    created_by=ctx.actor.id,
                )
            )
            tx.execute(delete(_t).where(_t.c.owner == owner, _t.c.key == key))
            if tags:
                tx.execute(insert(_t), [{"owner": owner, "key": key, "tag": t} for t in tags])
            if current is None:
                # Registered owner of the pointer and of the namespace: the owner may grant both.
                self.qonsent.register_owner(tx, resource, owner)
                self.qonsent.register_owner(tx, namespace_prefix(owner) + "*", owner)
            self.k.bus.publish(
                tx,
                "qindex.pointer.updated",
                {
                    "owner": owner,
                    "key": key,
                    "version": version + 1,
                    "cid": cid,
                    "prev_cid": current["cid"] if current else None,
                },
                actor=ctx.actor.id,
                subject=resource,
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        return self.get(ctx, owner, key)

    def _advance(
        self,
        tx: Connection,
        owner: str,
        key: str,
        current: RowMapping | None,
        cid: str,
        now: datetime,
    ) -> None:
        """Move the pointer row on by one version; a concurrent writer makes it a 409."""
        if current is None:
            try:
                with tx.begin_nested():
                    tx.execute(
                        insert(_p).values(
                            owner=owner, key=key, version=1, cid=cid, created_at=now, updated_at=now
                        )
                    )
            except IntegrityError:
                raise Conflict(f"{key} was created meanwhile; read it and try again") from None
            return
        moved = tx.execute(
            update(_p)
            .where(_p.c.owner == owner, _p.c.key == key, _p.c.version == current["version"])
            .values(version=current["version"] + 1, cid=cid, updated_at=now)
        ).rowcount
        if moved != 1:
            raise Conflict(f"{key} changed meanwhile; read it and try again")

    def delete(self, ctx: Context, key: str) -> None:
        """Remove one of the caller's pointers with its whole history."""
        owner = _identity(ctx)
        check_key(owner, key)
        resource = pointer_resource(owner, key)
        with self.k.change(ctx, "delete", resource) as tx:
            if _pointer_row(tx, owner, key) is None:
                raise NotFound(f"no pointer {key}")
            for table in (_t, _v, _p):
                tx.execute(delete(table).where(table.c.owner == owner, table.c.key == key))
            self.k.bus.publish(
                tx,
                "qindex.pointer.deleted",
                {"owner": owner, "key": key},
                actor=ctx.actor.id,
                subject=resource,
                correlation_id=ctx.correlation_id or ctx.request_id,
            )

    # Reading -------------------------------------------------------------------------

    def get(self, ctx: Context, owner: str, key: str, version: int | None = None) -> Pointer:
        """A pointer's current version, or version `version`. Needs read on the pointer."""
        check_key(owner, key)
        self.k.check(ctx, "read", pointer_resource(owner, key))
        with self.k.db.read() as conn:
            current = _pointer_row(conn, owner, key)
            if current is None:
                raise NotFound(f"no pointer {key} in {owner}'s namespace")
            row = (
                conn.execute(
                    select(_v).where(
                        _v.c.owner == owner,
                        _v.c.key == key,
                        _v.c.version == (version or current["version"]),
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"{key} has no version {version}")
        return _pointer(row)

    def history(self, ctx: Context, owner: str, key: str) -> list[Pointer]:
        """Every version of a pointer, newest first (each names the CID before it)."""
        check_key(owner, key)
        self.k.check(ctx, "read", pointer_resource(owner, key))
        with self.k.db.read() as conn:
            rows = (
                conn.execute(
                    select(_v)
                    .where(_v.c.owner == owner, _v.c.key == key)
                    .order_by(_v.c.version.desc())
                    .limit(HISTORY_MAX)
                )
                .mappings()
                .all()
            )
        if not rows:
            raise NotFound(f"no pointer {key} in {owner}'s namespace")
        return [_pointer(row) for row in rows]

    def listing(
        self,
        ctx: Context,
        owner: str | None,
        *,
        prefix: str = "",
        tag: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> PointerList:
        """Pointers of `owner` (the caller's own by default) that the caller may read,
        by key, optionally only keys starting with `prefix` or carrying `tag`."""
        if owner is None:
            owner = _identity(ctx)
        assert 1 <= limit <= LIST_LIMIT_MAX
        reach = Reach.of(ctx, self.qonsent, "read", self.k.clock.now())
        query = select(_p.c.key).where(_p.c.owner == owner)
        if not (reach.everything or reach.owner == owner):
            namespace = namespace_prefix(owner)
            if not namespace.startswith(reach.prefixes):
                readable = sorted(_key_of(r, namespace) for r in reach.exact)
                query = query.where(_p.c.key.in_([k for k in readable if k]))
        if prefix:
            query = query.where(_p.c.key.startswith(prefix, autoescape=True))
        if tag is not None:
            query = query.where(
                _p.c.key.in_(select(_t.c.key).where(_t.c.owner == owner, _t.c.tag == tag))
            )
        if cursor is not None:
            query = query.where(_p.c.key > _decode_cursor(cursor))
        with self.k.db.read() as conn:
            keys = list(conn.execute(query.order_by(_p.c.key).limit(limit + 1)).scalars())
            page = keys[:limit]
            rows = (
                conn.execute(
                    select(_v)
                    .join(
                        _p,
                        (_p.c.owner == _v.c.owner)
                        & (_p.c.key == _v.c.key)
                        & (_p.c.version == _v.c.version),
                    )
                    .where(_v.c.owner == owner, _v.c.key.in_(page))
                    .order_by(_v.c.key)
                )
                .mappings()
                .all()
            )
        next_cursor = _encode_cursor(page[-1]) if len(keys) > limit else None
        return PointerList(pointers=[_pointer(row) for row in rows], next_cursor=next_cursor)


def _identity(ctx: Context) -> str:
    if not ctx.actor.authenticated:
        raise Unauthenticated("pointers live in an identity's namespace: sign the request")
    if ctx.actor.kind != "identity":
        raise Forbidden("pointers live in an identity's namespace: sign the request as one")
    return ctx.actor.id


def _pointer_row(conn: Connection, owner: str, key: str) -> RowMapping | None:
    return conn.execute(select(_p).where(_p.c.owner == owner, _p.c.key == key)).mappings().first()


def _tags(conn: Connection, owner: str, key: str) -> list[str]:
    query = select(_t.c.tag).where(_t.c.owner == owner, _t.c.key == key).order_by(_t.c.tag)
    return list(conn.execute(query).scalars())


def _pointer(row: RowMapping) -> Pointer:
    return Pointer(
        owner=row["owner"],
        key=row["key"],
        version=row["version"],
        cid=row["cid"],
        prev_cid=row["prev_cid"],
        tags=list(row["tags"]),
        updated_at=row["created_at"],
        updated_by=row["created_by"],
    )


def _key_of(resource: str, namespace: str) -> str:
    """The key a resource of `namespace` names, or "" if it is not one."""
    return unquote(resource[len(namespace) :]) if resource.startswith(namespace) else ""


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("cursor is not one this listing gave") from None
    if not valid_key(key):
        raise BadRequest("cursor is not one this listing gave")
    return key
