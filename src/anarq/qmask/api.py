"""HTTP routes of Qmask, mounted at `/qmask`."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from anarq.gateway.auth import caller
from anarq.kernel.errors import BadRequest
from anarq.kernel.guard import Context
from anarq.qmask.models import (
    NAME_PATTERN,
    AnonymizeRequest,
    AnonymizeResult,
    Applied,
    ApplyRequest,
    Detected,
    DetectRequest,
    Profile,
    ProfileRequest,
    ProfileSummary,
    RedactedText,
    RedactRequest,
)
from anarq.qmask.service import QmaskService
from anarq.qmask.tables import DID_MAX, NAME_MAX

router = APIRouter()
REMOVED_HEADER = "X-Anarq-Removed"
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in ("image/jpeg", "image/png", "image/webp", "image/gif")
        },
    }
}
IMAGE_RESPONSE = {
    200: {
        "description": f"The stripped image; `{REMOVED_HEADER}` lists what was removed.",
        "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


async def service(request: Request) -> QmaskService:
    svc: QmaskService = request.app.state.node.service("qmask")
    return svc


# Profiles --------------------------------------------------------------------------------


@router.post(
    "/profiles",
    status_code=201,
    response_model=Profile,
    summary="Save a profile (a taken name gets a new version)",
)
def create_profile(
    body: ProfileRequest, ctx: Context = Depends(caller), svc: QmaskService = Depends(service)
) -> Profile:
    return svc.create_profile(ctx, body)


@router.get(
    "/profiles", response_model=list[ProfileSummary], summary="Your profiles and the built-ins"
)
def list_profiles(
    ctx: Context = Depends(caller), svc: QmaskService = Depends(service)
) -> list[ProfileSummary]:
    return svc.profiles(ctx)


@router.get("/profiles/{name}", response_model=Profile, summary="A profile, at a version")
def get_profile(
    name: str,
    owner: str | None = Query(None, min_length=8, max_length=DID_MAX, description="[default: you]"),
    version: int | None = Query(None, ge=1, description="[default: the latest]"),
    ctx: Context = Depends(caller),
    svc: QmaskService = Depends(service),
) -> Profile:
    return svc.profile(ctx, _name(name), owner=owner, version=version)


def _name(name: str) -> str:
    if not (1 <= len(name) <= NAME_MAX and re.match(NAME_PATTERN, name)):
        raise BadRequest(f"a profile name matches {NAME_PATTERN}, up to {NAME_MAX} characters")
    return name


# Transforms ------------------------------------------------------------------------------


@router.post("/apply", response_model=Applied, summary="Mask records with a profile")
def apply(
    body: ApplyRequest, ctx: Context = Depends(caller), svc: QmaskService = Depends(service)
) -> Applied:
    return svc.apply(ctx, body.profile, body.records, owner=body.owner, version=body.version)


@router.post("/detect", response_model=Detected, summary="Find personal data in a text")
def detect(
    body: DetectRequest, ctx: Context = Depends(caller), svc: QmaskService = Depends(service)
) -> Detected:
    return Detected(entities=svc.detect(ctx, body))


@router.post("/redact", response_model=RedactedText, summary="Replace personal data in a text")
def redact(
    body: RedactRequest, ctx: Context = Depends(caller), svc: QmaskService = Depends(service)
) -> RedactedText:
    return svc.redact(ctx, body)


@router.post(
    "/image/strip",
    summary="Strip an image's metadata (raw image body); the image comes back upright",
    openapi_extra=IMAGE_BODY,
    responses=IMAGE_RESPONSE,  # type: ignore[arg-type]
    response_class=Response,
)
async def strip_image(
    request: Request,
    keep_icc: bool = Query(True, description="Keep the colour profile."),
    profile: str | None = Query(
        None, max_length=NAME_MAX, description="Strip as this profile's image rules say."
    ),
    ctx: Context = Depends(caller),
    svc: QmaskService = Depends(service),
) -> Response:
    data = await request.body()
    stripped = await run_in_threadpool(
        lambda: svc.strip(ctx, data, keep_icc=keep_icc, profile=_name(profile) if profile else None)
    )
    return Response(
        stripped.data,
        media_type=stripped.media_type,
        headers={
            REMOVED_HEADER: ",".join(stripped.removed) or "none",
            "X-Anarq-Orientation": str(stripped.orientation or 1),
        },
    )


@router.post(
    "/anonymize",
    response_model=AnonymizeResult,
    summary="k-anonymize rows (JSON or CSV) over their quasi-identifiers",
)
def anonymize(
    body: AnonymizeRequest, ctx: Context = Depends(caller), svc: QmaskService = Depends(service)
) -> AnonymizeResult:
    return svc.anonymize(ctx, body)
