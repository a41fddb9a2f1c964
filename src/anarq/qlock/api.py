"""HTTP routes of Qlock, mounted at `/qlock`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.qlock.models import (
    NAME_PATTERN,
    TOKEN_MAX,
    AcquireRequest,
    ExtendRequest,
    Lease,
    Sealed,
    SealRequest,
    Verification,
    VerifyRequest,
)
from anarq.qlock.service import QlockService
from anarq.qlock.tables import NAME_MAX

router = APIRouter()

LOCK_NAME = Path(
    ...,
    min_length=1,
    max_length=NAME_MAX,
    pattern=NAME_PATTERN,
    description="Segments of letters, digits, `.` `_` `-`, joined by `:` (e.g. `jobs:nightly`).",
)


async def service(request: Request) -> QlockService:
    svc: QlockService = request.app.state.node.service("qlock")
    return svc


@router.post(
    "/verify",
    summary="Check a signature against a public key (400 if it does not verify)",
    response_model=Verification,
)
def verify(
    body: VerifyRequest, ctx: Context = Depends(caller), svc: QlockService = Depends(service)
) -> Verification:
    return svc.verify(ctx, body.public_key, body.message, body.signature)


@router.post("/seal", summary="Seal a small plaintext to recipient keys", response_model=Sealed)
def seal(
    body: SealRequest, ctx: Context = Depends(caller), svc: QlockService = Depends(service)
) -> Sealed:
    return svc.seal(ctx, body.recipients, body.plaintext, body.aad)


@router.post(
    "/locks/{name}",
    summary="Acquire a lock, waiting up to wait_ms while it is held",
    response_model=Lease,
    status_code=201,
)
async def acquire(
    body: AcquireRequest,
    name: str = LOCK_NAME,
    ctx: Context = Depends(caller),
    svc: QlockService = Depends(service),
) -> Lease:
    # Async so that a waiting acquirer holds no thread; each attempt runs in one.
    return await svc.locks.acquire_async(ctx, name, body.ttl_ms, body.wait_ms, holder=body.holder)


@router.post(
    "/locks/{name}/extend",
    summary="Extend a held lease (its owner, with the current token)",
    response_model=Lease,
)
def extend(
    body: ExtendRequest,
    name: str = LOCK_NAME,
    ctx: Context = Depends(caller),
    svc: QlockService = Depends(service),
) -> Lease:
    return svc.locks.extend(ctx, name, body.token, body.ttl_ms)


@router.delete(
    "/locks/{name}",
    summary="Release a held lease (its owner, with the current token)",
    status_code=204,
    response_class=Response,
)
def release(
    name: str = LOCK_NAME,
    token: int = Query(..., ge=1, le=TOKEN_MAX),
    ctx: Context = Depends(caller),
    svc: QlockService = Depends(service),
) -> Response:
    svc.locks.release(ctx, name, token)
    return Response(status_code=204)


@router.get("/locks/{name}", summary="The live lease on a lock (404 if free)", response_model=Lease)
def show(
    name: str = LOCK_NAME, ctx: Context = Depends(caller), svc: QlockService = Depends(service)
) -> Lease:
    return svc.locks.show(ctx, name)
