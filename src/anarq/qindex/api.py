"""HTTP routes of Qindex, mounted at `/qindex`: search, and pointers."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Request, Response

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.qindex.models import (
    QUERY_MAX_CHARS,
    Pointer,
    PointerList,
    PointerPut,
    SearchResults,
    SemanticStatus,
)
from anarq.qindex.pointers import LIST_LIMIT_MAX
from anarq.qindex.service import SEARCH_LIMIT_MAX, QindexService, SearchMode, SearchQuery
from anarq.qindex.tables import DID_MAX, KEY_MAX, MODULE_MAX, TAG_MAX, TYPE_MAX

router = APIRouter()

CURSOR_MAX = 300
OWNER = Query(
    None,
    min_length=1,
    max_length=DID_MAX,
    description="Whose namespace [default: your own].",
)


async def service(request: Request) -> QindexService:
    svc: QindexService = request.app.state.node.service("qindex")
    return svc


def _utc(value: datetime | None) -> datetime | None:
    """Dates without a timezone are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Search ----------------------------------------------------------------------------------


@router.get(
    "/search",
    response_model=SearchResults,
    summary="Search what you may read: by words (ranked, prefix, typo-tolerant) or by meaning",
)
def search(
    q: str = Query(..., min_length=1, max_length=QUERY_MAX_CHARS, description="Words to find."),
    module: str | None = Query(None, max_length=MODULE_MAX, description="Only this module's."),
    type: str | None = Query(None, max_length=TYPE_MAX, description="Only this type."),
    owner: str | None = Query(None, max_length=DID_MAX, description="Only this owner's."),
    since: datetime | None = Query(None, description="Updated at or after (ISO 8601)."),
    until: datetime | None = Query(None, description="Updated at or before (ISO 8601)."),
    limit: int = Query(10, ge=1, le=SEARCH_LIMIT_MAX),
    cursor: str | None = Query(None, max_length=CURSOR_MAX, description="From next_cursor."),
    mode: SearchMode = Query(
        "text",
        description="text: documents holding every word; semantic: documents close in "
        "meaning; hybrid: both rankings fused. semantic and hybrid need semantic search "
        "on (409 qindex.semantic_off otherwise).",
    ),
    ctx: Context = Depends(caller),
    svc: QindexService = Depends(service),
) -> SearchResults:
    return svc.search(
        ctx,
        SearchQuery(
            q=q,
            module=module,
            type=type,
            owner=owner,
            since=_utc(since),
            until=_utc(until),
            limit=limit,
            cursor=cursor,
            mode=mode,
        ),
    )


@router.get(
    "/semantic",
    response_model=SemanticStatus,
    summary="Whether this node searches by meaning, and how many documents have a vector",
)
def semantic_status(
    ctx: Context = Depends(caller), svc: QindexService = Depends(service)
) -> SemanticStatus:
    return svc.semantic_status(ctx)


# Pointers --------------------------------------------------------------------------------


@router.get("/pointers", response_model=PointerList, summary="List pointers you may read")
def list_pointers(
    owner: str | None = OWNER,
    prefix: str = Query("", max_length=KEY_MAX, description="Only keys starting so."),
    tag: str | None = Query(None, min_length=1, max_length=TAG_MAX, description="Only so tagged."),
    limit: int = Query(50, ge=1, le=LIST_LIMIT_MAX),
    cursor: str | None = Query(None, max_length=CURSOR_MAX),
    ctx: Context = Depends(caller),
    svc: QindexService = Depends(service),
) -> PointerList:
    return svc.pointers.listing(ctx, owner, prefix=prefix, tag=tag, limit=limit, cursor=cursor)


@router.put(
    "/pointers/{key:path}",
    response_model=Pointer,
    summary="Point a key of your namespace at a CID (adds a version)",
)
def put_pointer(
    key: str,
    body: PointerPut,
    ctx: Context = Depends(caller),
    svc: QindexService = Depends(service),
) -> Pointer:
    return svc.pointers.put(ctx, key, body)


@router.get("/pointers/{key:path}", response_model=Pointer, summary="A pointer's CID")
def get_pointer(
    key: str,
    owner: str | None = OWNER,
    version: int | None = Query(None, ge=1, description="A version [default: the current]."),
    ctx: Context = Depends(caller),
    svc: QindexService = Depends(service),
) -> Pointer:
    return svc.pointers.get(ctx, owner or ctx.actor.id, key, version)


@router.delete(
    "/pointers/{key:path}",
    status_code=204,
    summary="Delete one of your pointers with its history",
)
def delete_pointer(
    key: str, ctx: Context = Depends(caller), svc: QindexService = Depends(service)
) -> Response:
    svc.pointers.delete(ctx, key)
    return Response(status_code=204)


@router.get(
    "/history/{key:path}",
    response_model=list[Pointer],
    summary="A pointer's versions, newest first",
)
def pointer_history(
    key: str,
    owner: str | None = OWNER,
    ctx: Context = Depends(caller),
    svc: QindexService = Depends(service),
) -> list[Pointer]:
    return svc.pointers.history(ctx, owner or ctx.actor.id, key)
