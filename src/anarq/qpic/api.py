"""HTTP routes of QpiC, mounted at `/qpic`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.qpic.albums import album_resource, parse_tokens, photo_resource
from anarq.qpic.imaging import THUMB_SIZES
from anarq.qpic.models import (
    PAGE_MAX,
    Album,
    AlbumChange,
    AlbumCreate,
    Dupes,
    ImportRequest,
    Photo,
    PhotoIds,
    PhotoPage,
    Share,
    ShareRequest,
    Timeline,
    Unlock,
    UnlockRequest,
)
from anarq.qpic.service import DEFAULT_PAGE, QpicService
from anarq.qpic.tables import ID
from anarq.qpic.views import Served

router = APIRouter()
CURSOR = Query(None, max_length=200, description="From the previous page's next_cursor.")
LIMIT = Query(DEFAULT_PAGE, ge=1, le=PAGE_MAX)


async def service(request: Request) -> QpicService:
    svc: QpicService = request.app.state.node.service("qpic")
    return svc


def tokens(
    unlock: str | None = Header(
        None,
        alias="X-Anarq-Album-Unlock",
        max_length=1000,
        description="Unlock tokens of locked albums (comma-separated).",
    ),
) -> list[str]:
    return parse_tokens(unlock)


def _stream(served: Served, *, cache: bool = False) -> StreamingResponse:
    return StreamingResponse(
        served.chunks,
        media_type=served.media_type,
        headers={
            "Content-Length": str(served.size),
            "Cache-Control": "private, max-age=3600" if cache else "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# Importing -------------------------------------------------------------------------------


@router.post(
    "/upload",
    status_code=201,
    response_model=Photo,
    summary="Import an image or video sent as the raw body (up to the body limit)",
)
async def upload(
    request: Request,
    name: str = Query(..., min_length=1, max_length=900, description="File name, e.g. a.jpg"),
    album_id: str | None = Query(None, min_length=1, max_length=ID),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Photo:
    data = await request.body()
    return await run_in_threadpool(svc.upload, ctx, name, data, album_id)


@router.post(
    "/photos",
    status_code=201,
    response_model=Photo,
    summary="Import a file already in your drive (how big files come in)",
)
def import_file(
    body: ImportRequest, ctx: Context = Depends(caller), svc: QpicService = Depends(service)
) -> Photo:
    return svc.import_file(ctx, body.file_id, body.album_id)


# Reading ---------------------------------------------------------------------------------


@router.get("/photos", response_model=PhotoPage, summary="Your photos, or an album's")
def list_photos(
    album: str | None = Query(None, min_length=1, max_length=ID, description="An album id."),
    cursor: str | None = CURSOR,
    limit: int = LIMIT,
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> PhotoPage:
    return svc.photos(ctx, album_id=album, cursor=cursor, limit=limit, tokens=unlocked)


@router.get("/shared", response_model=PhotoPage, summary="Photos shared with you")
def shared_with_me(
    ctx: Context = Depends(caller), svc: QpicService = Depends(service)
) -> PhotoPage:
    return svc.shared_with_me(ctx)


@router.get("/photos/{photo_id}", response_model=Photo, summary="A photo's description")
def get_photo(
    photo_id: str,
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Photo:
    return svc.photo(ctx, photo_id, unlocked)


@router.get("/photos/{photo_id}/thumb", summary="A thumbnail (WebP), streamed from Qdrive")
def get_thumb(
    photo_id: str,
    size: int = Query(
        256, description="Longest side in pixels.", json_schema_extra={"enum": list(THUMB_SIZES)}
    ),
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> StreamingResponse:
    return _stream(svc.thumb(ctx, photo_id, size, unlocked), cache=True)


@router.get(
    "/photos/{photo_id}/content",
    summary="The photo: the original for its owner, the metadata-free copy for others",
)
def get_content(
    photo_id: str,
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> StreamingResponse:
    return _stream(svc.content(ctx, photo_id, unlocked))


@router.get("/photos/{photo_id}/poster", summary="A video's poster frame (JPEG)")
def get_poster(
    photo_id: str,
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> StreamingResponse:
    return _stream(svc.poster(ctx, photo_id, unlocked), cache=True)


@router.get("/photos/{photo_id}/proxy", summary="A video's 480p H.264 proxy (MP4)")
def get_proxy(
    photo_id: str,
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> StreamingResponse:
    return _stream(svc.proxy(ctx, photo_id, unlocked))


@router.delete(
    "/photos/{photo_id}",
    status_code=204,
    summary="Remove a photo; its original goes to the drive's trash (forever=true: deleted)",
)
def delete_photo(
    photo_id: str,
    forever: bool = Query(False),
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Response:
    svc.delete(ctx, photo_id, forever=forever, tokens=unlocked)
    return Response(status_code=204)


@router.get(
    "/timeline", response_model=Timeline, summary="Your photos by capture day, newest first"
)
def timeline(
    year: int | None = Query(None, ge=1, le=9998),
    month: int | None = Query(None, ge=1, le=12),
    cursor: str | None = CURSOR,
    limit: int = LIMIT,
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Timeline:
    return svc.timeline(ctx, year=year, month=month, cursor=cursor, limit=limit, tokens=unlocked)


@router.get("/dupes", response_model=Dupes, summary="Groups of near-duplicate photos")
def duplicates(
    distance: int = Query(8, ge=0, le=32, description="Most bits two pHashes may differ in."),
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Dupes:
    return svc.duplicates(ctx, distance, unlocked)


# Sharing ---------------------------------------------------------------------------------


@router.post(
    "/photos/{photo_id}/shares",
    status_code=201,
    response_model=Share,
    summary="Share a photo: a metadata-free copy and its thumbnails become readable to them",
)
def share_photo(
    photo_id: str,
    body: ShareRequest,
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Share:
    return svc.share(ctx, photo_id, body.grantee, body.expires_at)


@router.get("/photos/{photo_id}/shares", response_model=list[Share], summary="Who sees a photo")
def list_photo_shares(
    photo_id: str, ctx: Context = Depends(caller), svc: QpicService = Depends(service)
) -> list[Share]:
    return svc.shares(ctx, photo_resource(photo_id))


@router.delete(
    "/photos/{photo_id}/shares/{grantee}", status_code=204, summary="Stop sharing a photo"
)
def unshare_photo(
    photo_id: str, grantee: str, ctx: Context = Depends(caller), svc: QpicService = Depends(service)
) -> Response:
    svc.unshare(ctx, photo_id, grantee)
    return Response(status_code=204)


# Albums ----------------------------------------------------------------------------------


@router.post("/albums", status_code=201, response_model=Album, summary="Create an album")
def create_album(
    body: AlbumCreate, ctx: Context = Depends(caller), svc: QpicService = Depends(service)
) -> Album:
    return svc.create_album(ctx, body)


@router.get("/albums", response_model=list[Album], summary="Your albums")
def list_albums(
    parent: str | None = Query(None, min_length=1, max_length=ID, description="Only its children."),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> list[Album]:
    return svc.list_albums(ctx, parent)


@router.get("/albums/{album_id}", response_model=Album, summary="An album")
def get_album(
    album_id: str, ctx: Context = Depends(caller), svc: QpicService = Depends(service)
) -> Album:
    return svc.album(ctx, album_id)


@router.patch("/albums/{album_id}", response_model=Album, summary="Rename or move an album")
def change_album(
    album_id: str,
    body: AlbumChange,
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Album:
    return svc.change_album(ctx, album_id, body, unlocked)


@router.delete("/albums/{album_id}", status_code=204, summary="Delete an album (its photos stay)")
def delete_album(
    album_id: str,
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Response:
    svc.delete_album(ctx, album_id, unlocked)
    return Response(status_code=204)


@router.post("/albums/{album_id}/photos", response_model=Album, summary="Add photos to an album")
def add_photos(
    album_id: str,
    body: PhotoIds,
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Album:
    return svc.add_to_album(ctx, album_id, body.photo_ids)


@router.delete(
    "/albums/{album_id}/photos/{photo_id}",
    status_code=204,
    summary="Take a photo out of an album (the photo stays)",
)
def remove_photo(
    album_id: str,
    photo_id: str,
    unlocked: list[str] = Depends(tokens),
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Response:
    svc.remove_from_album(ctx, album_id, photo_id, unlocked)
    return Response(status_code=204)


@router.post(
    "/albums/{album_id}/unlock",
    response_model=Unlock,
    summary="Unlock a locked album with its passphrase: a token valid for 10 minutes",
)
def unlock_album(
    album_id: str,
    body: UnlockRequest,
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Unlock:
    return svc.unlock(ctx, album_id, body.passphrase)


@router.post(
    "/albums/{album_id}/shares",
    status_code=201,
    response_model=Share,
    summary="Share an album and every photo in it",
)
def share_album(
    album_id: str,
    body: ShareRequest,
    ctx: Context = Depends(caller),
    svc: QpicService = Depends(service),
) -> Share:
    return svc.share_album(ctx, album_id, body.grantee, body.expires_at)


@router.get("/albums/{album_id}/shares", response_model=list[Share], summary="Who sees an album")
def list_album_shares(
    album_id: str, ctx: Context = Depends(caller), svc: QpicService = Depends(service)
) -> list[Share]:
    return svc.shares(ctx, album_resource(album_id))


@router.delete(
    "/albums/{album_id}/shares/{grantee}", status_code=204, summary="Stop sharing an album"
)
def unshare_album(
    album_id: str, grantee: str, ctx: Context = Depends(caller), svc: QpicService = Depends(service)
) -> Response:
    svc.unshare_album(ctx, album_id, grantee)
    return Response(status_code=204)
