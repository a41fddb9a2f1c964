"""HTTP routes of the OpenID provider.

Two routers: `router`, mounted at `/oidc` like every module's, for what a signed-in
person or a client's owner does (authorize, consent, register clients); and `protocol`,
mounted at the root without the node's own authentication, for what OAuth clients call
with OAuth's credentials (client secrets, access tokens): discovery, JWKS, token,
userinfo, revocation, and the clients' DID documents.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from anarq.gateway.auth import caller
from anarq.kernel.errors import AnarqError
from anarq.kernel.guard import Context
from anarq.oidc.models import (
    Client,
    ClientCreate,
    ClientCreated,
    Consent,
    ConsentAnswer,
    Pending,
    Redirect,
)
from anarq.oidc.service import InvalidToken, OAuthError, OidcService, RedirectError
from anarq.oidc.tables import CLIENT_ID_MAX, DID_MAX

FORM_MAX_BYTES = 16 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

router = APIRouter()
protocol = APIRouter(tags=["oidc"])


async def service(request: Request) -> OidcService:
    svc: OidcService = request.app.state.node.service("oidc")
    return svc


def _redirect(redirect: Redirect) -> JSONResponse:
    """303 to the client's redirect URI; the body says the same for user agents that
    read JSON."""
    return JSONResponse(
        redirect.model_dump(),
        status_code=303,
        headers={"Location": redirect.redirect_to, **NO_STORE},
    )


# For the person -----------------------------------------------------------------------


@router.get(
    "/authorize",
    summary="Authorization endpoint: a code for the client, or the consent to answer",
    response_model=Pending,
    responses={303: {"description": "To the client's redirect URI, with the code or an error"}},
)
def authorize(
    request: Request, ctx: Context = Depends(caller), svc: OidcService = Depends(service)
) -> Any:
    params = _single_valued(list(request.query_params.multi_items()))
    try:
        outcome = svc.authorize(ctx, params)
    except RedirectError as sent_back:
        return _redirect(sent_back.redirect)
    if isinstance(outcome, Redirect):
        return _redirect(outcome)
    return JSONResponse(outcome.model_dump(mode="json"), headers=NO_STORE)


@router.post(
    "/authorize/consent",
    summary="Answer a consent request: approve (as yourself or a sub-identity) or refuse",
    response_model=Redirect,
    status_code=303,
)
def consent(
    body: ConsentAnswer, ctx: Context = Depends(caller), svc: OidcService = Depends(service)
) -> JSONResponse:
    try:
        return _redirect(svc.answer(ctx, body))
    except RedirectError as sent_back:
        return _redirect(sent_back.redirect)


@router.get("/consents", summary="The applications you signed in to", response_model=list[Consent])
def consents(ctx: Context = Depends(caller), svc: OidcService = Depends(service)) -> list[Consent]:
    return svc.consents(ctx)


@router.delete(
    "/consents/{client_id}",
    summary="Withdraw a consent: the grant is revoked and the app's tokens stop working",
    status_code=204,
)
def withdraw(
    client_id: str = Path(..., min_length=1, max_length=CLIENT_ID_MAX),
    identity: str | None = Query(default=None, min_length=8, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: OidcService = Depends(service),
) -> None:
    svc.withdraw(ctx, client_id, identity)


# For a client's owner -------------------------------------------------------------------


@router.post(
    "/clients",
    summary="Register an application (a relying party); its secret is shown once",
    response_model=ClientCreated,
    status_code=201,
)
def register_client(
    body: ClientCreate, ctx: Context = Depends(caller), svc: OidcService = Depends(service)
) -> ClientCreated:
    return svc.register_client(ctx, body)


@router.get("/clients", summary="Your registered applications", response_model=list[Client])
def list_clients(
    ctx: Context = Depends(caller), svc: OidcService = Depends(service)
) -> list[Client]:
    return svc.clients(ctx)


@router.get("/clients/{client_id}", summary="One application", response_model=Client)
def show_client(
    client_id: str = Path(..., min_length=1, max_length=CLIENT_ID_MAX),
    svc: OidcService = Depends(service),
) -> Client:
    return svc.client(client_id)


@router.delete("/clients/{client_id}", summary="Remove an application", status_code=204)
def remove_client(
    client_id: str = Path(..., min_length=1, max_length=CLIENT_ID_MAX),
    ctx: Context = Depends(caller),
    svc: OidcService = Depends(service),
) -> None:
    svc.remove_client(ctx, client_id)


@router.post("/keys/rotate", summary="Retire the signing keys and make new ones (operator)")
def rotate_keys(
    ctx: Context = Depends(caller), svc: OidcService = Depends(service)
) -> dict[str, Any]:
    return {"kids": svc.rotate_keys(ctx)}


# For OAuth clients (no node authentication: OAuth's own) -------------------------------


@protocol.get("/.well-known/openid-configuration", summary="OpenID provider metadata")
def discovery(svc: OidcService = Depends(service)) -> dict[str, Any]:
    return svc.discovery()


@protocol.get("/oidc/jwks", summary="The keys ID tokens are signed with (JWK set)")
def jwks(svc: OidcService = Depends(service)) -> JSONResponse:
    return JSONResponse(svc.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})


@protocol.get("/oidc/clients/{client_id}/did.json", summary="A client's DID document (did:web)")
def client_did_document(
    client_id: str = Path(..., min_length=1, max_length=CLIENT_ID_MAX),
    svc: OidcService = Depends(service),
) -> dict[str, Any]:
    return svc.did_document(client_id)


@protocol.post(
    "/oidc/token",
    summary="Token endpoint: a code (with its PKCE verifier) or a refresh token for tokens",
)
async def token(request: Request, svc: OidcService = Depends(service)) -> JSONResponse:
    form = await _form(request)
    client = await _client(request, svc, form)
    request_id = getattr(request.state, "request_id", "")
    issued = await run_in_threadpool(svc.token, client, form, request_id)
    return JSONResponse(issued, headers=NO_STORE)


@protocol.get("/oidc/userinfo", summary="The claims an access token releases")
async def userinfo(request: Request, svc: OidcService = Depends(service)) -> JSONResponse:
    return await _userinfo(request, svc)


@protocol.post("/oidc/userinfo", summary="The claims an access token releases (POST)")
async def userinfo_post(request: Request, svc: OidcService = Depends(service)) -> JSONResponse:
    return await _userinfo(request, svc)


async def _userinfo(request: Request, svc: OidcService) -> JSONResponse:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise InvalidToken("send the access token as `Authorization: Bearer <token>`")
    request_id = getattr(request.state, "request_id", "")
    try:
        claims = await run_in_threadpool(svc.userinfo, credential.strip(), request_id)
    except InvalidToken:
        await _failed(request, "invalid access token")
        raise
    return JSONResponse(claims, headers=NO_STORE)


@protocol.post("/oidc/revoke", summary="Revoke a token (RFC 7009)")
async def revoke(request: Request, svc: OidcService = Depends(service)) -> JSONResponse:
    form = await _form(request)
    client = await _client(request, svc, form)
    presented = form.get("token", "")
    if not presented:
        raise OAuthError("invalid_request", "token is missing")
    await run_in_threadpool(svc.revoke_token, client, presented)
    return JSONResponse({}, headers=NO_STORE)


async def _form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body, each parameter at most once."""
    door = request.app.state.door
    if door is not None:
        door.admit_address(request.client.host if request.client else "unknown")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request", "the body must be application/x-www-form-urlencoded", 415
        )
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        raise OAuthError("invalid_request", f"the body is larger than {FORM_MAX_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a valid form") from None
    return _single_valued(pairs)


def _single_valued(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise OAuthError("invalid_request", f"parameter {name!r} is given more than once")
        params[name] = value
    return params


async def _client(request: Request, svc: OidcService, form: dict[str, str]) -> Any:
    basic = None
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "client authentication here is HTTP Basic", 401)
        try:
            client_id, sep, secret = (
                base64.b64decode(credential, validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "the Basic credential is not base64", 401) from None
        if not sep:
            raise OAuthError("invalid_client", "the Basic credential is not id:secret", 401)
        basic = (unquote_plus(client_id), unquote_plus(secret))
    try:
        return await run_in_threadpool(svc.authenticate_client, form, basic)
    except AnarqError as refusal:
        await _failed(request, refusal.detail)
        raise


async def _failed(request: Request, reason: str) -> None:
    door = request.app.state.door
    if door is not None:
        address = request.client.host if request.client else "unknown"
        await run_in_threadpool(door.authentication_failed, address, reason)
