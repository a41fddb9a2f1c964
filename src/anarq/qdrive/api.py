"""HTTP routes of Qdrive, mounted at `/qdrive`."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from anarq.gateway.auth import caller
from anarq.gateway.streaming import in_batches
from anarq.kernel.guard import Context
from anarq.qdrive.car import CAR_MEDIA_TYPE
from anarq.qdrive.models import (
    MEDIA_TYPE_PATTERN,
    FileInfo,
    LinkInfo,
    LinkRequest,
    Listing,
    MoveRequest,
    QuotaInfo,
    ShareInfo,
    ShareRequest,
    Upload,
    UploadRequest,
    VersionInfo,
    Visibility,
)
from anarq.qdrive.service import DriveService
from anarq.qdrive.tables import PATH_MAX

router = APIRouter()

FILE_ID = Annotated[str, "file id"]
VERSION = Query(None, ge=1, description="A version number [default: the current one].")


async def service(request: Request) -> DriveService:
    svc: DriveService = request.app.state.node.service("qdrive")
    return svc


# Uploads ---------------------------------------------------------------------------------


@router.post("/uploads", status_code=201, response_model=Upload, summary="Start an upload")
def start_upload(
    body: UploadRequest, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> Upload:
    return svc.start_upload(ctx, body)


@router.get("/uploads/{upload_id}", response_model=Upload, summary="Where an upload stands")
def get_upload(
    upload_id: str, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> Upload:
    return svc.upload(ctx, upload_id)


@router.patch(
    "/uploads/{upload_id}",
    response_model=Upload,
    summary="Send the next part (raw bytes) starting at Upload-Offset",
)
async def append_part(
    upload_id: str,
    request: Request,
    upload_offset: int = Header(..., ge=0, alias="Upload-Offset"),
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> Upload:
    data = await request.body()
    return await run_in_threadpool(svc.append, ctx, upload_id, upload_offset, data)


@router.post(
    "/uploads/{upload_id}/complete",
    status_code=201,
    response_model=FileInfo,
    summary="Store the uploaded file (a new file, or a new version)",
)
def complete_upload(
    upload_id: str, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> FileInfo:
    return svc.complete(ctx, upload_id)


@router.delete("/uploads/{upload_id}", status_code=204, summary="Abandon an upload")
def abort_upload(
    upload_id: str, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> Response:
    svc.abort(ctx, upload_id)
    return Response(status_code=204)


# Files -----------------------------------------------------------------------------------


@router.put(
    "/files",
    status_code=201,
    response_model=FileInfo,
    summary="Store a small file in one request (raw body)",
)
async def put_file(
    request: Request,
    path: str = Query(..., min_length=1, max_length=PATH_MAX),
    visibility: Visibility = Query("private"),
    overwrite: bool = Query(False),
    content_type: str = Header("application/octet-stream"),
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> FileInfo:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not re.match(MEDIA_TYPE_PATTERN, media_type) or len(media_type) > 120:
        media_type = "application/octet-stream"
    data = await request.body()
    return await run_in_threadpool(
        lambda: svc.put(
            ctx, path, data, visibility=visibility, media_type=media_type, overwrite=overwrite
        )
    )


@router.get("/files", response_model=Listing, summary="List a folder of your drive")
def list_files(
    folder: str = Query("/", max_length=PATH_MAX),
    trash: bool = Query(False, description="List the trash instead."),
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> Listing:
    return svc.listing(ctx, folder, trash=trash)


@router.get(
    "/resolve",
    response_model=FileInfo,
    summary="Find a file by path (in your drive), id, or CID",
)
def resolve(
    ref: str = Query(..., min_length=1, max_length=PATH_MAX),
    trash: bool = Query(False, description="Paths: look in the trash too."),
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> FileInfo:
    row = svc.resolve(ctx, ref, include_trash=trash)
    return svc.file(ctx, row["id"])


@router.get("/files/{file_id}", response_model=FileInfo, summary="A file's description")
def get_file(
    file_id: FILE_ID, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> FileInfo:
    return svc.file(ctx, file_id)


@router.get("/files/{file_id}/content", summary="Download a version's content (streamed)")
def download(
    file_id: FILE_ID,
    version: int | None = VERSION,
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> StreamingResponse:
    opened = svc.open(ctx, file_id, version)
    return StreamingResponse(
        in_batches(opened.chunks),
        media_type=opened.file.media_type,
        headers={
            "Content-Length": str(opened.version.size),
            "ETag": f'"{opened.file.id}.{opened.version.version}"',
            "X-Anarq-Version": str(opened.version.version),
        },
    )


@router.get(
    "/files/{file_id}/sealed",
    summary="Download a private version as its Qlock stream, to decrypt with your own key",
)
def download_sealed(
    file_id: FILE_ID,
    version: int | None = VERSION,
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> StreamingResponse:
    return StreamingResponse(
        in_batches(svc.sealed(ctx, file_id, version)),
        media_type="application/vnd.anarq.qlock-stream",
    )


@router.get(
    "/files/{file_id}/versions", response_model=list[VersionInfo], summary="A file's versions"
)
def list_versions(
    file_id: FILE_ID, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> list[VersionInfo]:
    return svc.versions(ctx, file_id)


@router.post("/move", response_model=list[FileInfo], summary="Rename a file or move a folder")
def move(
    body: MoveRequest, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> list[FileInfo]:
    return svc.move(ctx, body.source, body.target)


@router.delete(
    "/files/{file_id}",
    summary="Move to the trash; with forever=true, delete for good (keys shredded)",
)
def delete_file(
    file_id: FILE_ID,
    forever: bool = Query(False),
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> Response:
    if forever:
        svc.purge(ctx, file_id)
        return Response(status_code=204)
    info = svc.trash(ctx, file_id)
    return Response(info.model_dump_json(), media_type="application/json")


@router.post(
    "/files/{file_id}/restore", response_model=FileInfo, summary="Bring a file back from the trash"
)
def restore(
    file_id: FILE_ID, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> FileInfo:
    return svc.restore(ctx, file_id)


@router.post(
    "/files/{file_id}/shares",
    status_code=201,
    response_model=ShareInfo,
    summary="Share with an identity: a grant, and the file's keys wrapped for it",
)
def share(
    file_id: FILE_ID,
    body: ShareRequest,
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> ShareInfo:
    return svc.share(ctx, file_id, body.grantee, list(body.actions), body.expires_at)


@router.get(
    "/files/{file_id}/shares", response_model=list[ShareInfo], summary="Who a file is shared with"
)
def list_shares(
    file_id: FILE_ID, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> list[ShareInfo]:
    return svc.shares(ctx, file_id)


@router.delete(
    "/files/{file_id}/shares/{grantee}",
    status_code=204,
    summary="Stop sharing with an identity (its grants are revoked at once)",
)
def unshare(
    file_id: FILE_ID,
    grantee: str,
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> Response:
    svc.unshare(ctx, file_id, grantee)
    return Response(status_code=204)


@router.get("/quota", response_model=QuotaInfo, summary="Space used and allowed")
def quota(ctx: Context = Depends(caller), svc: DriveService = Depends(service)) -> QuotaInfo:
    return svc.quota(ctx)


# Links -----------------------------------------------------------------------------------


@router.post(
    "/files/{file_id}/links",
    status_code=201,
    response_model=LinkInfo,
    summary="Make a share link (optionally expiring, password-protected, download-capped)",
)
def create_link(
    file_id: FILE_ID,
    body: LinkRequest,
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> LinkInfo:
    return svc.create_link(
        ctx,
        file_id,
        expires_at=body.expires_at,
        password=body.password,
        max_downloads=body.max_downloads,
    )


@router.get("/files/{file_id}/links", response_model=list[LinkInfo], summary="A file's share links")
def list_links(
    file_id: FILE_ID, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> list[LinkInfo]:
    return svc.links(ctx, file_id)


@router.delete("/links/{link_id}", response_model=LinkInfo, summary="Revoke a share link")
def revoke_link(
    link_id: str, ctx: Context = Depends(caller), svc: DriveService = Depends(service)
) -> LinkInfo:
    return svc.revoke_link(ctx, link_id)


@router.get(
    "/l/{token}",
    summary="Download through a share link (no identity needed; the token is the key)",
)
def open_link(
    token: str,
    password: str | None = Header(None, alias="X-Anarq-Link-Password", max_length=200),
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> StreamingResponse:
    opened = svc.open_link(ctx, token, password)
    return StreamingResponse(
        in_batches(opened.chunks),
        media_type=opened.file.media_type,
        headers={
            "Content-Length": str(opened.version.size),
            "Content-Disposition": _attachment(opened.file.name),
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/files/{file_id}/car",
    summary="Export a version as a CAR v1 file (its IPFS UnixFS DAG)",
)
def export_car(
    file_id: FILE_ID,
    version: int | None = VERSION,
    ctx: Context = Depends(caller),
    svc: DriveService = Depends(service),
) -> StreamingResponse:
    return StreamingResponse(svc.export_car(ctx, file_id, version), media_type=CAR_MEDIA_TYPE)


def _attachment(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
