"""HTTP routes of sQuid, mounted at `/squid`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request, Response

from anarq.gateway.auth import caller
from anarq.kernel.guard import Context
from anarq.squid.models import (
    AidLink,
    Challenge,
    Identity,
    Registration,
    Resolution,
    Rotation,
    Session,
    SessionRequest,
    SubIdentityRequest,
)
from anarq.squid.service import SquidService
from anarq.squid.tables import DID_MAX

router = APIRouter()


async def service(request: Request) -> SquidService:
    svc: SquidService = request.app.state.node.service("squid")
    return svc


@router.post(
    "/identities",
    summary="Register the signing did:key as a root identity",
    response_model=Identity,
    status_code=201,
)
def register(
    body: Registration, ctx: Context = Depends(caller), svc: SquidService = Depends(service)
) -> Identity:
    return svc.register(ctx, body)


@router.get(
    "/identities/{did}",
    summary="Resolve a DID: its document and this node's record",
    response_model=Resolution,
)
def resolve(
    did: str = Path(..., min_length=8, max_length=DID_MAX), svc: SquidService = Depends(service)
) -> Resolution:
    return svc.resolve(did)


@router.get("/me", summary="The identity that signed this request", response_model=Identity)
def me(ctx: Context = Depends(caller), svc: SquidService = Depends(service)) -> Identity:
    from anarq.kernel.errors import Unauthenticated

    if ctx.actor.kind != "identity":
        raise Unauthenticated("sign the request with your identity's key")
    return svc.identity(ctx.actor.id)


@router.post(
    "/identities/{did}/rotate",
    summary="Move to the pre-committed next key",
    response_model=Identity,
)
def rotate(
    body: Rotation,
    did: str = Path(..., min_length=8, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: SquidService = Depends(service),
) -> Identity:
    return svc.rotate(ctx, did, body)


@router.post(
    "/identities/{did}/revoke",
    summary="Revoke an identity (itself or the operator)",
    response_model=Identity,
)
def revoke(
    did: str = Path(..., min_length=8, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: SquidService = Depends(service),
) -> Identity:
    return svc.revoke(ctx, did)


@router.post(
    "/identities/{did}/subs",
    summary="Create a sub-identity (signed by the root)",
    response_model=Identity,
    status_code=201,
)
def create_sub(
    body: SubIdentityRequest,
    did: str = Path(..., min_length=8, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: SquidService = Depends(service),
) -> Identity:
    return svc.create_sub(ctx, did, body)


@router.get(
    "/identities/{did}/subs",
    summary="A root's linked sub-identities (never its AIDs)",
    response_model=list[Identity],
)
def list_subs(
    did: str = Path(..., min_length=8, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: SquidService = Depends(service),
) -> list[Identity]:
    return svc.subs(ctx, did)


@router.post("/aid-links/verify", summary="Check a root's revealed link to an anonymous identity")
def verify_aid_link(body: AidLink, svc: SquidService = Depends(service)) -> dict[str, bool]:
    return {"linked": svc.verify_aid_link(body)}


@router.get(
    "/sessions/challenge",
    summary="A fresh challenge to sign for a browser sign-in",
    response_model=Challenge,
)
def challenge(response: Response, svc: SquidService = Depends(service)) -> Challenge:
    response.headers["Cache-Control"] = "no-store"  # every sign-in needs its own
    return svc.challenge()


@router.post(
    "/sessions",
    summary="Exchange a signed challenge for a session token",
    response_model=Session,
    status_code=201,
)
def open_session(body: SessionRequest, svc: SquidService = Depends(service)) -> Session:
    return svc.open_session(body)


@router.delete(
    "/sessions/current", summary="Log out: end the session of this token", status_code=204
)
def end_session(
    request: Request, ctx: Context = Depends(caller), svc: SquidService = Depends(service)
) -> None:
    from anarq.kernel.errors import Unauthenticated

    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip()
    if ctx.actor.kind != "identity" or not token:
        raise Unauthenticated("log out with the session's bearer token")
    svc.end_session(token)
