"""Who is calling: turns the `Authorization` header into the `Context` services receive.

No header means anonymous (services refuse anonymous changes). A header that
does not authenticate is refused outright with 401 rather than downgraded, so a
typo in a token never silently turns into a public request.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from anarq.kernel.errors import Unauthenticated
from anarq.kernel.guard import ANONYMOUS, Actor, Context, SignedRequest

MAX_CREDENTIAL_CHARS = 4096
# Failed authentications are audited against this resource name.
AUTH_RESOURCE = "gateway:authentication:*"
CAPABILITY_HEADER = "x-anarq-capability"


class Authenticator(Protocol):
    def authenticate_bearer(self, token: str) -> Actor | None: ...


class SignatureVerifier(Protocol):
    def authenticate_signed(self, request: SignedRequest) -> Actor: ...


class Door(Protocol):
    """Rate limits and lockouts (Qerberos's security desk)."""

    def admit_address(self, address: str) -> None: ...

    def admit_identity(self, did: str) -> None: ...

    def authentication_failed(self, address: str, reason: str) -> None: ...

    def authentication_succeeded(self, address: str) -> None: ...


async def caller(request: HTTPConnection) -> Context:
    """FastAPI dependency: the caller's context. Credential lookups run off the event loop.

    The door checks the address before anything else (rate limit, lockout after
    repeated failures) and the identity's own rate once it is known. A WebSocket
    handshake passes the same door; it has no body to sign.
    """
    request_id: str = getattr(request.state, "request_id", "")
    door: Door | None = request.app.state.door
    address = request.client.host if request.client else "unknown"
    if door is not None:
        door.admit_address(address)
    try:
        ctx = await _authenticate(request, request_id)
    except Unauthenticated as refusal:
        refused = Context(actor=ANONYMOUS, request_id=request_id)
        guard = request.app.state.node.kernel.guard
        await run_in_threadpool(guard.record, refused, "execute", AUTH_RESOURCE, "deny")
        if door is not None:
            await run_in_threadpool(door.authentication_failed, address, refusal.detail)
        raise
    if door is not None and ctx.actor.authenticated:
        if ctx.actor.kind == "identity":
            door.admit_identity(ctx.actor.id)
        door.authentication_succeeded(address)
    carried = request.headers.get(CAPABILITY_HEADER)
    if carried is not None:
        ctx = await _with_capability(request, ctx, carried)
    return ctx


async def _with_capability(request: HTTPConnection, ctx: Context, carried: str) -> Context:
    """Verify a delegation chain the caller presents and attach what it allows."""
    if ctx.actor.kind != "identity":
        raise Unauthenticated("a capability is used by signing the request as its holder")
    verifiers = [
        service
        for service in request.app.state.node.services.values()
        if hasattr(service, "verify_capability")
    ]
    if not verifiers:
        raise Unauthenticated("this node does not accept capabilities")
    from anarq.qonsent.capabilities import decode_chain

    chain = decode_chain(carried)
    capability = await run_in_threadpool(verifiers[0].verify_capability, chain, ctx.actor.id)
    return replace(ctx, capabilities=(*ctx.capabilities, capability))


async def _authenticate(request: HTTPConnection, request_id: str) -> Context:
    if "signature-input" in request.headers or "signature" in request.headers:
        verifiers: list[SignatureVerifier] = request.app.state.signature_verifiers
        if not verifiers:
            raise Unauthenticated("this node does not accept signed requests")
        signed = SignedRequest(
            method=request.method if isinstance(request, Request) else "GET",
            url=str(request.url),
            headers=[
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]
            ],
            body=await request.body() if isinstance(request, Request) else b"",
        )
        signer = await run_in_threadpool(verifiers[0].authenticate_signed, signed)
        return Context(actor=signer, request_id=request_id)
    header = request.headers.get("authorization")
    if header is None:
        return Context(actor=ANONYMOUS, request_id=request_id)
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or len(credential) > MAX_CREDENTIAL_CHARS:
        raise Unauthenticated("Authorization must be `Bearer <token>`")
    authenticators: list[Authenticator] = request.app.state.authenticators
    for authenticator in authenticators:
        actor: Actor | None = await run_in_threadpool(authenticator.authenticate_bearer, credential)
        if actor is not None:
            return Context(actor=actor, request_id=request_id)
    raise Unauthenticated("the bearer token is not valid or has been revoked")
