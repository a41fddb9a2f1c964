"""HTTP routes of data-subject requests, mounted at `/privacy`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.privacy.service import PrivacyService, stream_and_delete

router = APIRouter()


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: str = Field(
        min_length=8, max_length=200, description="Your own DID, repeated: erasure is final."
    )


async def service(request: Request) -> PrivacyService:
    svc: PrivacyService = request.app.state.node.service("privacy")
    return svc


@router.get(
    "/export",
    summary="Everything this node holds about you, as a ZIP with a node-signed manifest",
)
async def export(
    request: Request, ctx: Context = Depends(caller), svc: PrivacyService = Depends(service)
) -> StreamingResponse:
    services = request.app.state.node.services
    path = await run_in_threadpool(svc.export, ctx, services)
    return StreamingResponse(
        stream_and_delete(path),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="anarq-export.zip"'},
    )


@router.post(
    "/erase",
    summary="Erase everything this node holds about you; returns a node-signed receipt",
)
def erase(
    body: ErasureRequest,
    request: Request,
    ctx: Context = Depends(caller),
    svc: PrivacyService = Depends(service),
) -> dict[str, Any]:
    return svc.erase(ctx, request.app.state.node.services, body.confirm)
