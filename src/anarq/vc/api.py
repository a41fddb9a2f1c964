"""HTTP routes of the credentials module, mounted at `/vc`."""

from __future__ import annotations

import html
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from anarq.gateway.auth import caller
from anarq.kernel.errors import BadRequest
from anarq.kernel.guard import Context
from anarq.vc.models import (
    Allocation,
    Challenge,
    ChallengeRequest,
    EmailConfirm,
    EmailRequest,
    EmailSent,
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


@router.post(
    "/email",
    summary="Prove an email address: the node mails it a one-use link",
    response_model=EmailSent,
    status_code=202,
)
def request_email(
    body: EmailRequest, ctx: Context = Depends(caller), svc: VcService = Depends(service)
) -> EmailSent:
    return svc.request_email(ctx, body.email)


@router.get(
    "/email/confirm",
    summary="The page the emailed link opens: one button confirms",
    response_class=HTMLResponse,
)
def confirm_page(token: str = Query(..., min_length=20, max_length=100)) -> HTMLResponse:
    # A page, not the confirmation itself: mail scanners that open links confirm nothing.
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>Confirm your email</title>"
        "<main style='font-family:sans-serif;max-width:32rem;margin:4rem auto'>"
        "<h1>Confirm your email address</h1>"
        "<p>Your identity gets a credential saying this address is yours.</p>"
        "<form method=post action='/vc/email/confirm'>"
        f"<input type=hidden name=token value='{html.escape(token, quote=True)}'>"
        "<button type=submit>Confirm</button></form></main>",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.post(
    "/email/confirm",
    summary="Confirm: the identity that asked gets a VerifiedEmailCredential",
    response_model=Held,
    status_code=201,
)
async def confirm_email(request: Request, svc: VcService = Depends(service)) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        token = _token(fields.get("token"))
        held = await run_in_threadpool(svc.confirm_email, token)
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>Email confirmed</title>"
            "<main style='font-family:sans-serif;max-width:32rem;margin:4rem auto'>"
            f"<h1>Confirmed</h1><p>{html.escape(held.credential['credentialSubject']['email'])}"
            " is now confirmed for your identity. You can close this page.</p></main>",
            status_code=201,
        )
    try:
        body = EmailConfirm.model_validate_json(await request.body())
    except ValidationError:
        raise BadRequest('send {"token": "…"} as JSON, or the form the link opens') from None
    return await run_in_threadpool(svc.confirm_email, body.token)


def _token(value: str | None) -> str:
    if value is None or not 20 <= len(value) <= 100:
        raise BadRequest("the form carries no token: open the link from the email again")
    return value
