"""HTTP routes of the credentials module, mounted at `/vc`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.vc.models import (
    Allocation,
    Challenge,
    ChallengeRequest,
    Held,
    IssueRequest,
    PublishList,
    StoreRequest,
    VerifyRequest,
)
from anarq.vc.service import VcService
from anarq.vc.tables import CREDENTIAL_ID_MAX

router = APIRouter()
CredentialId = Path(..., min_length=1, max_length=CREDENTIAL_ID_MAX)
ListId = Path(..., min_length=26, max_length=26)


async def service(request: Request) -> VcService:
    svc: VcService = request.app.state.node.service("vc")
    return svc


@router.post(
    "/issue",
    summary="Ask the node for a credential about you (DID control, DAO membership, purchase)",
    response_model=Held,
    status_code=201,
)
def issue(
    body: IssueRequest, ctx: Context = Depends(caller), svc: VcService = Depends(service)
) -> Held:
    return svc.issue(ctx, body)


@router.get("/credentials", summary="Credentials you hold (or issued)", response_model=list[Held])
def credentials(
    role: Literal["holder", "issuer"] = Query("holder"),
    ctx: Context = Depends(caller),
    svc: VcService = Depends(service),
) -> list[Held]:
    return svc.held(ctx, role)


@router.post(
    "/credentials",
    summary="Hand over a credential you issued (signed on your device) to its holder",
    response_model=Held,
    status_code=201,
)
def store(
    body: StoreRequest, ctx: Context = Depends(caller), svc: VcService = Depends(service)
) -> Held:
    return svc.store(ctx, body.credential)


@router.get("/credentials/{credential_id}", summary="One credential", response_model=Held)
def credential(
    credential_id: str = CredentialId,
    ctx: Context = Depends(caller),
    svc: VcService = Depends(service),
) -> Held:
    return svc.credential(ctx, credential_id)


@router.post(
    "/credentials/{credential_id}/revoke",
    summary="Revoke a credential the node issued (its holder or the operator)",
    response_model=Held,
)
def revoke(
    credential_id: str = CredentialId,
    ctx: Context = Depends(caller),
    svc: VcService = Depends(service),
) -> Held:
    return svc.revoke(ctx, credential_id)


@router.post(
    "/status",
    summary="A status entry for a credential you are about to sign",
    response_model=Allocation,
    status_code=201,
)
def allocate(ctx: Context = Depends(caller), svc: VcService = Depends(service)) -> Allocation:
    return svc.allocate(ctx)


@router.get("/status/{list_id}", summary="A status list credential (Bitstring Status List)")
def status_list(list_id: str = ListId, svc: VcService = Depends(service)) -> dict[str, Any]:
    return svc.status_list(list_id)


@router.put("/status/{list_id}", summary="Publish your status list, signed: how you revoke")
def publish(
    body: PublishList,
    list_id: str = ListId,
    ctx: Context = Depends(caller),
    svc: VcService = Depends(service),
) -> dict[str, Any]:
    return svc.publish_list(ctx, list_id, body.credential)


@router.post(
    "/challenges",
    summary="A challenge for a presentation to you, the verifier (one use, ten minutes)",
    response_model=Challenge,
    status_code=201,
)
def challenge(
    body: ChallengeRequest, ctx: Context = Depends(caller), svc: VcService = Depends(service)
) -> Challenge:
    return svc.challenge(ctx, body.domain)


@router.post("/verify", summary="Verify a credential, or a presentation against your challenge")
def verify(
    body: VerifyRequest, ctx: Context = Depends(caller), svc: VcService = Depends(service)
) -> dict[str, Any]:
    return svc.verify(ctx, body)
