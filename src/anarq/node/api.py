"""HTTP routes of the node module, mounted at `/node`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from anarq.gateway.auth import caller
from anarq.kernel.errors import PayloadTooLarge
from anarq.kernel.guard import Context
from anarq.node.models import ActivityRow, NodeInfo, Profile, ProfileUpdate, Worker
from anarq.node.service import AVATAR_MAX_BYTES, NodeService

router = APIRouter()


async def service(request: Request) -> NodeService:
    svc: NodeService = request.app.state.node.service("node")
    return svc


@router.get("/info", summary="What this node is", response_model=NodeInfo)
async def get_info(svc: NodeService = Depends(service)) -> NodeInfo:
    cached = svc.cached_info()
    if cached is not None:
        return cached
    fresh: NodeInfo = await run_in_threadpool(svc.info)
    return fresh


@router.get("/profile", summary="The node's public profile", response_model=Profile)
def get_profile(svc: NodeService = Depends(service)) -> Profile:
    return svc.profile()


@router.patch(
    "/profile", summary="Change the node's public profile (operator)", response_model=Profile
)
def patch_profile(
    changes: ProfileUpdate,
    ctx: Context = Depends(caller),
    svc: NodeService = Depends(service),
) -> Profile:
    return svc.update_profile(ctx, changes)


@router.put(
    "/avatar",
    summary="Upload the node's avatar image (operator)",
    response_model=Profile,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}}
                for t in ("image/png", "image/jpeg", "image/webp", "image/gif")
            },
        }
    },
)
async def put_avatar(
    request: Request,
    ctx: Context = Depends(caller),
    svc: NodeService = Depends(service),
) -> Profile:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > AVATAR_MAX_BYTES:
            raise PayloadTooLarge(f"avatar is larger than {AVATAR_MAX_BYTES} bytes")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return await run_in_threadpool(svc.set_avatar, ctx, bytes(data), media_type)


@router.get(
    "/avatar",
    summary="The node's avatar image",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/*": {}}}},
)
def get_avatar(svc: NodeService = Depends(service)) -> StreamingResponse:
    cid, media_type = svc.avatar()
    chunks = svc.k.blobs.open(cid)
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type=media_type,
        headers={"ETag": f'"{cid}"', "Cache-Control": "public, max-age=300"},
    )


@router.get(
    "/workers", summary="Worker processes serving this node (operator)", response_model=list[Worker]
)
def get_workers(
    include_stopped: bool = False,
    ctx: Context = Depends(caller),
    svc: NodeService = Depends(service),
) -> list[Worker]:
    return svc.workers(ctx, include_stopped=include_stopped)


@router.get(
    "/activity",
    summary="Events dispatched on this node, by type (operator)",
    response_model=list[ActivityRow],
)
def get_activity(
    ctx: Context = Depends(caller), svc: NodeService = Depends(service)
) -> list[ActivityRow]:
    return svc.activity(ctx)
