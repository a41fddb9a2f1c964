"""HTTP routes of Qonsent, mounted at `/qonsent`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request

from anarq.gateway.auth import caller
from anarq.kernel.guard import ACTIONS, Context
from anarq.qonsent.models import (
    CapabilityChain,
    CapabilityRevocation,
    CapabilityRights,
    Decision,
    Grant,
    GrantRequest,
)
from anarq.qonsent.service import QonsentService
from anarq.qonsent.tables import DID_MAX, RESOURCE_MAX

router = APIRouter()


async def service(request: Request) -> QonsentService:
    svc: QonsentService = request.app.state.node.service("qonsent")
    return svc


@router.post(
    "/grants", summary="Grant actions on a resource", response_model=Grant, status_code=201
)
def create_grant(
    body: GrantRequest, ctx: Context = Depends(caller), svc: QonsentService = Depends(service)
) -> Grant:
    return svc.grant(ctx, body)


@router.get("/grants/{grant_id}", summary="One grant", response_model=Grant)
def get_grant(
    grant_id: str, ctx: Context = Depends(caller), svc: QonsentService = Depends(service)
) -> Grant:
    grant = svc.get(grant_id)
    if ctx.actor.id != grant.grantor:
        svc.what_can(ctx, grant.grantee)  # only its grantor, grantee or the operator see it
    return grant


@router.delete(
    "/grants/{grant_id}", summary="Revoke a grant, effective at once", response_model=Grant
)
def revoke_grant(
    grant_id: str, ctx: Context = Depends(caller), svc: QonsentService = Depends(service)
) -> Grant:
    return svc.revoke(ctx, grant_id)


@router.get(
    "/check",
    summary="May an actor do an action on a resource? With the reason",
    response_model=Decision,
)
def check(
    action: str = Query(..., pattern=f"^({'|'.join(ACTIONS)})$"),
    resource: str = Query(..., min_length=1, max_length=RESOURCE_MAX),
    actor: str | None = Query(None, max_length=DID_MAX, description="Default: the caller."),
    ctx: Context = Depends(caller),
    svc: QonsentService = Depends(service),
) -> Decision:
    subject = actor or ctx.actor.id
    if subject != ctx.actor.id:
        svc.who_can(ctx, resource)  # asking about someone else needs admin rights
    return svc.check(subject, action, resource)


@router.get(
    "/who-can", summary="Live grants that reach a resource (its admins)", response_model=list[Grant]
)
def who_can(
    resource: str = Query(..., min_length=1, max_length=RESOURCE_MAX),
    ctx: Context = Depends(caller),
    svc: QonsentService = Depends(service),
) -> list[Grant]:
    return svc.who_can(ctx, resource)


@router.get(
    "/what-can", summary="Live grants an actor holds (the actor itself)", response_model=list[Grant]
)
def what_can(
    actor: str | None = Query(None, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: QonsentService = Depends(service),
) -> list[Grant]:
    return svc.what_can(ctx, actor or ctx.actor.id)


@router.get(
    "/granted", summary="Grants the caller has made (what I expose)", response_model=list[Grant]
)
def granted(ctx: Context = Depends(caller), svc: QonsentService = Depends(service)) -> list[Grant]:
    return svc.granted_by(ctx)


@router.get(
    "/grants/{grant_id}/receipt",
    summary="The signed consent receipt of a grant (grantor, grantee, operator)",
)
def receipt(
    grant_id: str = Path(..., min_length=26, max_length=26),
    ctx: Context = Depends(caller),
    svc: QonsentService = Depends(service),
) -> dict[str, Any]:
    return svc.receipt(ctx, grant_id)


@router.post(
    "/capabilities/verify",
    summary="What a capability chain lets the caller do",
    response_model=CapabilityRights,
)
def verify_capability(
    body: CapabilityChain, ctx: Context = Depends(caller), svc: QonsentService = Depends(service)
) -> CapabilityRights:
    if ctx.actor.kind != "identity":
        from anarq.kernel.errors import Unauthenticated

        raise Unauthenticated("sign the request as the capability's holder")
    capability = svc.verify_capability(body.chain, ctx.actor.id)
    return CapabilityRights(
        holder=capability.holder,
        resource=capability.resource,
        actions=sorted(capability.actions),
        expires_at=capability.expires_at,
        grant_id=capability.grant_id,
    )


@router.post("/capabilities/revoke", summary="Revoke a link of a capability chain and all below")
def revoke_capability(
    body: CapabilityRevocation,
    ctx: Context = Depends(caller),
    svc: QonsentService = Depends(service),
) -> dict[str, str]:
    return {"revoked": svc.revoke_capability(ctx, body.chain, body.link)}
