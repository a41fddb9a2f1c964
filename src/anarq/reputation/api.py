"""HTTP routes of reputation, mounted at `/reputation`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.reputation.service import ReputationService
from anarq.reputation.tables import DID_MAX

router = APIRouter()
Did = Path(..., min_length=8, max_length=DID_MAX)
Sub = Path(..., min_length=8, max_length=DID_MAX, description="Your sub-identity's DID.")


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share_pct: float = Field(ge=0, le=100, description="The share of your score it starts with.")


async def service(request: Request) -> ReputationService:
    svc: ReputationService = request.app.state.node.service("reputation")
    return svc


def _scored(svc: ReputationService, ctx: Context, did: str | None) -> dict[str, Any]:
    credential = svc.credential(ctx, did)
    subject = credential["credentialSubject"]
    return {
        "did": subject["id"],
        "score": subject["score"],
        "scale": subject["scale"],
        "factors": subject["factors"],
        "credential": credential,
    }


@router.get("/me", summary="Your score, its reasons, and the node's signed credential of it")
def mine(
    ctx: Context = Depends(caller), svc: ReputationService = Depends(service)
) -> dict[str, Any]:
    return _scored(svc, ctx, None)


@router.get("/identities/{did}", summary="Any identity's score (the operator)")
def theirs(
    did: str = Did, ctx: Context = Depends(caller), svc: ReputationService = Depends(service)
) -> dict[str, Any]:
    return _scored(svc, ctx, did)


@router.put("/links/{sub}", summary="Let a sub-identity of yours start from a share of your score")
def link(
    body: LinkRequest,
    sub: str = Sub,
    ctx: Context = Depends(caller),
    svc: ReputationService = Depends(service),
) -> dict[str, Any]:
    return svc.link(ctx, sub, round(body.share_pct * 100))


@router.delete("/links/{sub}", summary="Stop lending your score to a sub-identity", status_code=204)
def unlink(
    sub: str = Sub, ctx: Context = Depends(caller), svc: ReputationService = Depends(service)
) -> None:
    svc.unlink(ctx, sub)
