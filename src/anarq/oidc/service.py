"""The OpenID provider: "Sign in with sQuid" for other applications.

The authorization code flow (RFC 6749 §4.1) with PKCE required (RFC 7636, S256 only),
OpenID Connect Core ID tokens, userinfo, rotating refresh tokens, token revocation
(RFC 7009) and the issuer in the authorization response (RFC 9207).

A person's consent is a Qonsent grant: grantor the person, grantee the client's DID,
resource `oidc:claims:<their DID>`. It shows in their grants, has a signed receipt, and
revoking it (here or through Qonsent) ends the client's access at once: every token use
checks the grant. Subjects are pairwise — an HMAC of the client and the DID under a key
only this node holds — so two applications cannot tell they see the same person unless
the person releases their DID (scope `did`).

Codes, tokens and client secrets are stored as SHA-256 digests. A code is used once;
presenting it again revokes what it gave (RFC 6749 §4.1.2). A refresh token is used once
too; a reused one revokes its whole family (OAuth 2.0 Security BCP §4.14).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.errors import AnarqError, BadRequest, Forbidden, NotFound, Unauthenticated
from anarq.kernel.guard import ANONYMOUS, Actor, Context
from anarq.kernel.ids import new_id
from anarq.node.service import NodeService
from anarq.oidc import tables
from anarq.oidc.keys import SigningKeys
from anarq.oidc.models import (
    SCOPES,
    Client,
    ClientCreate,
    ClientCreated,
    Consent,
    ConsentAnswer,
    Pending,
    Redirect,
)
from anarq.qonsent.models import GrantRequest
from anarq.qonsent.service import QonsentService
from anarq.squid.service import SquidService

CODE_LIFETIME = timedelta(seconds=60)
AUTHORIZE_RESOURCE = "oidc:authorize"
# What a failed client authentication at the token or revocation endpoint is audited as.
CLIENTS_RESOURCE = "oidc:clients:*"
REQUEST_LIFETIME = timedelta(minutes=10)
ACCESS_LIFETIME = timedelta(minutes=10)
ID_TOKEN_LIFETIME = timedelta(minutes=10)
REFRESH_LIFETIME = timedelta(days=30)
STATE_MAX = 1000
NONCE_MAX = 255
VERIFIER_RE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class OAuthError(BadRequest):
    """An OAuth error: problem+json with the RFC 6749 `error` and `error_description` members
    that OAuth clients read."""

    code = "oidc.invalid_request"
    title = "OAuth request refused"

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description, error=error, error_description=description)
        self.error = error
        self.status = status  # type: ignore[misc]
        self.code = f"oidc.{error}"  # type: ignore[misc]


class RedirectError(Exception):
    """An authorization error the client learns of through its redirect URI."""

    def __init__(self, redirect: Redirect) -> None:
        super().__init__(redirect.redirect_to)
        self.redirect = redirect


@dataclass(frozen=True)
class AuthorizationRequest:
    client: RowMapping
    redirect_uri: str
    scopes: list[str]
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: set[str]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def claims_resource(did: str) -> str:
    return f"oidc:claims:{did}"


def owner_resource(did: str) -> str:
    """What an identity writes to register clients of its own."""
    return f"oidc:owner:{did}"


class OidcService:
    def __init__(
        self, kernel: Kernel, node: NodeService, squid: SquidService, qonsent: QonsentService
    ) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid
        self.qonsent = qonsent
        self.keys = SigningKeys(kernel, node.identity)
        self._pairwise_key: bytes | None = None

    # Names ------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self.k.settings.effective_public_url.rstrip("/")

    def client_did(self, client_id: str) -> str:
        """The client's DID (did:web, resolved at `/oidc/clients/{id}/did.json`): what its
        consent grants name as grantee."""
        parts = urlsplit(self.issuer)
        host = quote(parts.netloc, safe="")
        path = ":".join(p for p in parts.path.split("/") if p)
        return ":".join(x for x in ("did:web", host, path, "oidc:clients", client_id) if x)

    def subject(self, client_id: str, did: str) -> str:
        """The pairwise subject identifier of `did` at `client_id`."""
        if self._pairwise_key is None:
            secret = self.node.identity.secret().encode()
            self._pairwise_key = hmac.new(secret, b"anarq oidc pairwise subject", "sha256").digest()
        mac = hmac.new(self._pairwise_key, f"{client_id}\n{did}".encode(), "sha256").digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """A guard policy: an identity registers clients under its own name and shares its
        own claims (its consent)."""
        if ctx.actor.kind != "identity":
            return False
        if resource == owner_resource(ctx.actor.id):
            return action in ("write", "delete")
        return resource == claims_resource(ctx.actor.id) and action == "share"

    # Clients ----------------------------------------------------------------------------

    def register_client(self, ctx: Context, request: ClientCreate) -> ClientCreated:
        """Register a relying party; its secret is shown once."""
        if not ctx.actor.authenticated:
            raise Unauthenticated("registering a client needs a signed request or a session")
        client_id = "c_" + secrets.token_urlsafe(16)
        secret = None if request.auth_method == "none" else secrets.token_urlsafe(32)
        now = self.k.clock.now()
        row = {
            "client_id": client_id,
            "name": request.name,
            "owner": ctx.actor.id,
            "redirect_uris": request.redirect_uris,
            "auth_method": request.auth_method,
            "secret_digest": digest(secret) if secret else None,
            "id_token_alg": request.id_token_alg,
            "scopes": " ".join(request.scopes),
            "created_at": now,
            "removed_at": None,
        }
        with self.k.change(ctx, "write", owner_resource(ctx.actor.id)) as tx:
            tx.execute(insert(tables.clients).values(**row))
            self.k.guard.record(ctx, "write", f"oidc:client:{client_id}", "allow", tx)
        return ClientCreated(**self._client(row).model_dump(), client_secret=secret)

    def clients(self, ctx: Context) -> list[Client]:
        """The clients the caller registered (all of them, for the operator)."""
        c = tables.clients
        query = select(c).where(c.c.removed_at.is_(None)).order_by(c.c.created_at)
        if ctx.actor.kind not in ("operator", "node"):
            query = query.where(c.c.owner == ctx.identity("a client list"))
        with self.k.db.read() as conn:
            return [self._client(row) for row in conn.execute(query).mappings()]

    def client(self, client_id: str) -> Client:
        return self._client(self._client_row(client_id))

    def remove_client(self, ctx: Context, client_id: str) -> None:
        """Remove a client: its codes and tokens stop working at once."""
        row = self._client_row(client_id)
        if ctx.actor.kind not in ("operator", "node") and row["owner"] != ctx.actor.id:
            self.k.guard.record(ctx, "delete", f"oidc:client:{client_id}", "deny")
            raise Forbidden("only the client's owner or the operator removes it")
        now = self.k.clock.now()
        resource = owner_resource(row["owner"]) if ctx.actor.kind == "identity" else "oidc:*"
        with self.k.change(ctx, "delete", resource) as tx:
            tx.execute(
                update(tables.clients)
                .where(tables.clients.c.client_id == client_id)
                .values(removed_at=now)
            )
            tx.execute(
                update(tables.tokens)
                .where(tables.tokens.c.client_id == client_id, tables.tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            self.k.guard.record(ctx, "delete", f"oidc:client:{client_id}", "allow", tx)

    def did_document(self, client_id: str) -> dict[str, Any]:
        client = self.client(client_id)
        did = self.client_did(client_id)
        return {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "controller": client.owner
            if client.owner.startswith("did:")
            else self.node.identity.did,
            "service": [
                {
                    "id": f"{did}#oidc-client",
                    "type": "OAuthClient",
                    "serviceEndpoint": client.redirect_uris,
                }
            ],
        }

    def _client_row(self, client_id: str, conn: Connection | None = None) -> RowMapping:
        c = tables.clients
        query = select(c).where(c.c.client_id == client_id, c.c.removed_at.is_(None))
        if conn is not None:
            row = conn.execute(query).mappings().first()
        else:
            with self.k.db.read() as read:
                row = read.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"no client {client_id!r} on this node")
        return row

    def _client(self, row: Any) -> Client:
        return Client(
            client_id=row["client_id"],
            name=row["name"],
            owner=row["owner"],
            redirect_uris=list(row["redirect_uris"]),
            auth_method=row["auth_method"],
            id_token_alg=row["id_token_alg"],
            scopes=row["scopes"].split(),
            created_at=row["created_at"],
            grantee=self.client_did(row["client_id"]),
        )

    def rotate_keys(self, ctx: Context) -> list[str]:
        """Retire the signing keys for new ones (the operator); the new key ids."""
        self.k.check(ctx, "admin", "oidc:keys:*")
        kids = self.keys.rotate()
        self.k.guard.record(ctx, "admin", "oidc:keys:*", "allow")
        return kids

    # Discovery --------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oidc/authorize",
            "token_endpoint": f"{base}/oidc/token",
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "jwks_uri": f"{base}/oidc/jwks",
            "revocation_endpoint": f"{base}/oidc/revoke",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["EdDSA", "Ed25519", "RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": sorted(
                {"iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "amr"}
                | {claim for claims in SCOPES.values() for claim in claims}
            ),
            "prompt_values_supported": ["none", "consent"],
            "authorization_response_iss_parameter_supported": True,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "claims_parameter_supported": False,
        }

    # Authorization ----------------------------------------------------------------------

    def parse_authorization(self, params: dict[str, str]) -> AuthorizationRequest:
        """Check an authorization request. Errors that cannot be sent to a verified
        redirect URI are raised as 400s; the rest go back to the client."""
        client_id = params.get("client_id", "")
        if not client_id:
            raise OAuthError("invalid_request", "client_id is missing")
        try:
            client = self._client_row(client_id)
        except NotFound:
            raise OAuthError("invalid_client", f"no client {client_id!r} on this node") from None
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client["redirect_uris"]:
            raise OAuthError(
                "invalid_request",
                "redirect_uri is missing or is not one the client registered (exact match)",
            )
        state = params.get("state")

        def back(error: str, description: str) -> RedirectError:
            return self._refusal(redirect_uri, state, error, description)

        if state is not None and len(state) > STATE_MAX:
            raise back("invalid_request", f"state is longer than {STATE_MAX} characters")
        if params.get("response_type") != "code":
            raise back(
                "unsupported_response_type", "this provider gives codes only (response_type=code)"
            )
        scopes = params.get("scope", "").split()
        if "openid" not in scopes:
            raise back("invalid_scope", "scope must include openid")
        allowed = set(client["scopes"].split())
        refused = [scope for scope in scopes if scope not in allowed]
        if refused:
            raise back("invalid_scope", f"scope {refused[0]!r} is not one the client may ask for")
        challenge = params.get("code_challenge", "")
        if not challenge:
            raise back("invalid_request", "PKCE is required: send code_challenge (S256)")
        if params.get("code_challenge_method") != "S256":
            raise back("invalid_request", "code_challenge_method must be S256")
        if not 43 <= len(challenge) <= 128 or not set(challenge) <= VERIFIER_RE_CHARS:
            raise back("invalid_request", "code_challenge is not a base64url S256 digest")
        nonce = params.get("nonce")
        if nonce is not None and len(nonce) > NONCE_MAX:
            raise back("invalid_request", f"nonce is longer than {NONCE_MAX} characters")
        for unsupported in ("request", "request_uri"):
            if unsupported in params:
                raise back(f"{unsupported}_not_supported", f"{unsupported} is not supported")
        return AuthorizationRequest(
            client=client,
            redirect_uri=redirect_uri,
            scopes=[scope for scope in SCOPES if scope in scopes],
            state=state,
            nonce=nonce,
            code_challenge=challenge,
            prompt=set(params.get("prompt", "").split()),
        )

    def authorize(self, ctx: Context, params: dict[str, str]) -> Redirect | Pending:
        """The authorization endpoint, for a signed-in person: a code at once if they have
        consented to these scopes before, or the consent they have to answer."""
        try:
            request = self.parse_authorization(params)
        except (OAuthError, RedirectError):
            self.k.guard.record(ctx, "share", AUTHORIZE_RESOURCE, "deny")
            raise
        if not ctx.actor.authenticated or ctx.actor.kind != "identity":
            if "none" in request.prompt:
                raise self._refusal(request.redirect_uri, request.state, "login_required")
            raise Unauthenticated("sign in with your identity (a signed request or a session)")
        did = ctx.actor.id
        client_id = request.client["client_id"]
        hint = params.get("id_token_hint")
        if hint is not None:
            self._check_hint(request, hint, did)
        consent = self._consent_row(client_id, did)
        covered = consent is not None and set(request.scopes) <= set(consent["scopes"].split())
        if covered and "consent" not in request.prompt and self._grant_live(client_id, did):
            return self._issue_code(ctx, request, did)
        if "none" in request.prompt:
            raise self._refusal(request.redirect_uri, request.state, "consent_required")
        now = self.k.clock.now()
        request_id = new_id()
        with self.k.db.write() as tx:
            tx.execute(delete(tables.requests).where(tables.requests.c.expires_at < now))
            tx.execute(
                insert(tables.requests).values(
                    id=request_id,
                    client_id=client_id,
                    user=did,
                    params=dict(params),
                    expires_at=now + REQUEST_LIFETIME,
                )
            )
        return Pending(
            request_id=request_id,
            client_id=client_id,
            client_name=request.client["name"],
            scopes=request.scopes,
            claims=[claim for scope in request.scopes for claim in SCOPES[scope]],
            identities=[did, *self.squid.linked_subs(did)],
            expires_at=now + REQUEST_LIFETIME,
        )

    def _check_hint(self, request: AuthorizationRequest, hint: str, did: str) -> None:
        """`id_token_hint`: an ID token this provider gave the client (expired or not);
        the signed-in person must be its subject."""
        client_id = request.client["client_id"]

        def back(error: str, description: str) -> RedirectError:
            return self._refusal(request.redirect_uri, request.state, error, description)

        try:
            claims = self.keys.verify(hint)
        except Exception:
            raise back(
                "invalid_request", "id_token_hint is not an ID token signed by this provider"
            ) from None
        if claims.get("iss") != self.issuer or claims.get("aud") != client_id:
            raise back(
                "invalid_request", "id_token_hint was issued to another client or by another issuer"
            )
        if claims.get("sub") not in {
            self.subject(client_id, d) for d in (did, *self.squid.linked_subs(did))
        }:
            raise back(
                "login_required", "the signed-in identity is not the one id_token_hint names"
            )

    def answer(self, ctx: Context, answer: ConsentAnswer) -> Redirect:
        """The person's answer on the consent screen: a code, or access_denied."""
        did = ctx.identity("a consent")
        with self.k.db.write() as tx:
            row = (
                tx.execute(
                    delete(tables.requests)
                    # Only the person it was made for can answer it (or spend it).
                    .where(
                        tables.requests.c.id == answer.request_id,
                        tables.requests.c.user == did,
                    )
                    .returning(tables.requests)
                )
                .mappings()
                .first()
            )
        if row is None or row["expires_at"] <= self.k.clock.now():
            raise NotFound("no pending consent request with this id for you (or it expired)")
        request = self.parse_authorization(dict(row["params"]))
        client_id = request.client["client_id"]
        if not answer.approve:
            self.k.guard.record(ctx, "share", claims_resource(did), "deny")
            return self._redirect(
                request.redirect_uri,
                request.state,
                error="access_denied",
                description="the person refused",
            )
        subject = answer.identity or did
        if subject != did and subject not in self.squid.linked_subs(did):
            raise Forbidden(f"{subject} is not you or one of your linked sub-identities")
        acting = Context(
            actor=Actor(id=subject, kind="identity"),
            request_id=ctx.request_id,
            correlation_id=ctx.correlation_id,
        )
        self.node.identity.signing_key()  # the grant's receipt is signed by it
        resource = claims_resource(subject)
        now = self.k.clock.now()
        # Committed first: granting checks ownership on a connection of its own.
        with self.k.db.write() as tx:
            self.qonsent.register_owner(tx, resource, subject)
        with self.k.change(acting, "share", resource) as tx:
            old = tx.execute(
                select(tables.consents.c.grant_id).where(
                    tables.consents.c.client_id == client_id, tables.consents.c.subject == subject
                )
            ).scalar_one_or_none()
            if old is not None:
                self._revoke_grant_quietly(tx, acting, old)
            grant = self.qonsent.grant_in(
                tx,
                acting,
                GrantRequest(
                    grantee=self.client_did(client_id),
                    resource=resource,
                    actions=["read"],
                    purpose=f"sign in to {request.client['name']}: {' '.join(request.scopes)}",
                ),
            )
            tx.execute(
                delete(tables.consents).where(
                    tables.consents.c.client_id == client_id, tables.consents.c.subject == subject
                )
            )
            tx.execute(
                insert(tables.consents).values(
                    client_id=client_id,
                    subject=subject,
                    scopes=" ".join(request.scopes),
                    grant_id=grant.id,
                    created_at=now,
                )
            )
        return self._issue_code(acting, request, subject)

    def _revoke_grant_quietly(self, tx: Connection, ctx: Context, grant_id: str) -> None:
        # Already revoked, e.g. through Qonsent itself: nothing more to do.
        with contextlib.suppress(AnarqError):
            self.qonsent.revoke_in(tx, ctx, grant_id)

    def _issue_code(self, ctx: Context, request: AuthorizationRequest, subject: str) -> Redirect:
        code = secrets.token_urlsafe(32)
        now = self.k.clock.now()
        with self.k.change(ctx, "share", claims_resource(subject)) as tx:
            tx.execute(delete(tables.codes).where(tables.codes.c.expires_at < now - CODE_LIFETIME))
            tx.execute(
                insert(tables.codes).values(
                    digest=digest(code),
                    client_id=request.client["client_id"],
                    subject=subject,
                    redirect_uri=request.redirect_uri,
                    scopes=" ".join(request.scopes),
                    nonce=request.nonce,
                    code_challenge=request.code_challenge,
                    auth_time=now,
                    expires_at=now + CODE_LIFETIME,
                    used_at=None,
                )
            )
        return self._redirect(request.redirect_uri, request.state, code=code)

    def _refusal(
        self, redirect_uri: str, state: str | None, error: str, description: str | None = None
    ) -> RedirectError:
        """An authorization error sent back to the client's (verified) redirect URI."""
        return RedirectError(
            self._redirect(redirect_uri, state, error=error, description=description)
        )

    def _redirect(
        self,
        redirect_uri: str,
        state: str | None,
        *,
        code: str | None = None,
        error: str | None = None,
        description: str | None = None,
    ) -> Redirect:
        query: dict[str, str] = {}
        if code is not None:
            query["code"] = code
        if error is not None:
            query["error"] = error
            if description:
                query["error_description"] = description
        if state is not None:
            query["state"] = state
        query["iss"] = self.issuer
        joiner = "&" if urlsplit(redirect_uri).query else "?"
        return Redirect(redirect_to=f"{redirect_uri}{joiner}{urlencode(query)}")

    # Tokens -----------------------------------------------------------------------------

    def authenticate_client(
        self, form: dict[str, str], basic: tuple[str, str] | None
    ) -> RowMapping:
        """The client calling the token (or revocation) endpoint; a refusal is audited."""
        try:
            return self._authenticate_client(form, basic)
        except OAuthError:
            refused = Context(actor=ANONYMOUS)
            self.k.guard.record(refused, "execute", CLIENTS_RESOURCE, "deny")
            raise

    def _authenticate_client(
        self, form: dict[str, str], basic: tuple[str, str] | None
    ) -> RowMapping:
        """The client calling the token (or revocation) endpoint, by the method it
        registered; `invalid_client` (401) otherwise."""
        if basic is not None:
            client_id, secret = basic
            method = "client_secret_basic"
        elif "client_secret" in form:
            client_id, secret = form.get("client_id", ""), form["client_secret"]
            method = "client_secret_post"
        else:
            client_id, secret, method = form.get("client_id", ""), "", "none"
        if not client_id:
            raise OAuthError("invalid_client", "the client did not identify itself", 401)
        try:
            client = self._client_row(client_id)
        except NotFound:
            raise OAuthError(
                "invalid_client", f"no client {client_id!r} on this node", 401
            ) from None
        if client["auth_method"] != method:
            raise OAuthError(
                "invalid_client",
                f"the client authenticates with {client['auth_method']}, not {method}",
                401,
            )
        if method != "none" and not hmac.compare_digest(
            digest(secret), client["secret_digest"] or ""
        ):
            raise OAuthError("invalid_client", "the client secret is wrong", 401)
        return client

    def client_context(self, client: RowMapping, request_id: str = "") -> Context:
        return Context(
            actor=Actor(id=self.client_did(client["client_id"]), kind="client"),
            request_id=request_id,
        )

    def token(
        self, client: RowMapping, form: dict[str, str], request_id: str = ""
    ) -> dict[str, Any]:
        """The token endpoint, for an authenticated client."""
        grant_type = form.get("grant_type")
        ctx = self.client_context(client, request_id)
        try:
            if grant_type == "authorization_code":
                return self._exchange_code(ctx, client, form)
            if grant_type == "refresh_token":
                return self._refresh(ctx, client, form)
        except OAuthError:
            self.k.guard.record(ctx, "read", f"oidc:client:{client['client_id']}", "deny")
            raise
        raise OAuthError(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )

    def _exchange_code(
        self, ctx: Context, client: RowMapping, form: dict[str, str]
    ) -> dict[str, Any]:
        code, verifier = form.get("code", ""), form.get("code_verifier", "")
        if not code:
            raise OAuthError("invalid_request", "code is missing")
        if not verifier:
            raise OAuthError("invalid_request", "code_verifier is missing (PKCE is required)")
        if not 43 <= len(verifier) <= 128 or not set(verifier) <= VERIFIER_RE_CHARS:
            raise OAuthError(
                "invalid_request", "code_verifier must be 43-128 unreserved characters"
            )
        now = self.k.clock.now()
        code_digest = digest(code)
        c = tables.codes
        with self.k.db.write() as tx:
            row = tx.execute(select(c).where(c.c.digest == code_digest)).mappings().first()
            if row is None or row["client_id"] != client["client_id"]:
                raise OAuthError(
                    "invalid_grant", "the code is unknown, or was issued to another client"
                )
            if row["used_at"] is not None:
                # A replayed code: whatever it gave is taken back.
                tx.execute(
                    update(tables.tokens)
                    .where(
                        tables.tokens.c.family == code_digest, tables.tokens.c.revoked_at.is_(None)
                    )
                    .values(revoked_at=now)
                )
                self.k.guard.record(ctx, "read", claims_resource(row["subject"]), "deny", tx)
                replayed = True
            else:
                replayed = False
                tx.execute(update(c).where(c.c.digest == code_digest).values(used_at=now))
        if replayed:
            raise OAuthError(
                "invalid_grant", "the code was already used; the tokens it gave are revoked"
            )
        if row["expires_at"] <= now:
            raise OAuthError("invalid_grant", "the code has expired")
        if form.get("redirect_uri") != row["redirect_uri"]:
            raise OAuthError(
                "invalid_grant", "redirect_uri differs from the authorization request's"
            )
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        if not hmac.compare_digest(expected.decode(), row["code_challenge"]):
            raise OAuthError(
                "invalid_grant", "code_verifier does not match the code_challenge (PKCE)"
            )
        if not self._grant_live(client["client_id"], row["subject"]):
            raise OAuthError("invalid_grant", "the person's consent was revoked")
        return self._tokens(
            ctx,
            client,
            subject=row["subject"],
            scopes=row["scopes"].split(),
            family=code_digest,
            auth_time=row["auth_time"],
            nonce=row["nonce"],
            id_token=True,
        )

    def _refresh(self, ctx: Context, client: RowMapping, form: dict[str, str]) -> dict[str, Any]:
        presented = form.get("refresh_token", "")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is missing")
        now = self.k.clock.now()
        t = tables.tokens
        token_digest = digest(presented)
        with self.k.db.write() as tx:
            row = (
                tx.execute(select(t).where(t.c.digest == token_digest, t.c.kind == "refresh"))
                .mappings()
                .first()
            )
            if row is None or row["client_id"] != client["client_id"]:
                raise OAuthError("invalid_grant", "the refresh token is unknown to this client")
            reused = row["used_at"] is not None and row["revoked_at"] is None
            if reused:
                tx.execute(
                    update(t)
                    .where(t.c.family == row["family"], t.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
                self.k.guard.record(ctx, "read", claims_resource(row["subject"]), "deny", tx)
            elif row["revoked_at"] is None and row["expires_at"] > now:
                tx.execute(update(t).where(t.c.digest == token_digest).values(used_at=now))
        if reused:
            raise OAuthError(
                "invalid_grant", "the refresh token was already used; its family is revoked"
            )
        if row["revoked_at"] is not None:
            raise OAuthError("invalid_grant", "the refresh token was revoked")
        if row["expires_at"] <= now:
            raise OAuthError("invalid_grant", "the refresh token has expired")
        if not self._grant_live(client["client_id"], row["subject"]):
            raise OAuthError("invalid_grant", "the person's consent was revoked")
        scopes = row["scopes"].split()
        asked = form.get("scope")
        if asked is not None:
            narrower = asked.split()
            if not set(narrower) <= set(scopes):
                raise OAuthError(
                    "invalid_scope", "a refresh may narrow the scopes, never widen them"
                )
            scopes = [scope for scope in scopes if scope in narrower]
        return self._tokens(
            ctx,
            client,
            subject=row["subject"],
            scopes=scopes,
            family=row["family"],
            auth_time=row["auth_time"],
            nonce=None,
            id_token="openid" in scopes,
        )

    def _tokens(
        self,
        ctx: Context,
        client: RowMapping,
        *,
        subject: str,
        scopes: list[str],
        family: str,
        auth_time: datetime,
        nonce: str | None,
        id_token: bool,
    ) -> dict[str, Any]:
        now = self.k.clock.now()
        access = secrets.token_urlsafe(32)
        rows = [self._token_row("access", access, client, subject, scopes, family, auth_time, now)]
        response: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(ACCESS_LIFETIME.total_seconds()),
            "scope": " ".join(scopes),
        }
        if "offline_access" in scopes:
            refresh = secrets.token_urlsafe(32)
            rows.append(
                self._token_row("refresh", refresh, client, subject, scopes, family, auth_time, now)
            )
            response["refresh_token"] = refresh
        if id_token:
            claims: dict[str, Any] = {
                "iss": self.issuer,
                "sub": self.subject(client["client_id"], subject),
                "aud": client["client_id"],
                "azp": client["client_id"],
                "iat": int(now.timestamp()),
                "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
                "auth_time": int(auth_time.timestamp()),
                # Proof of possession of a software-held key (RFC 8176).
                "amr": ["swk"],
            }
            if nonce is not None:
                claims["nonce"] = nonce
            claims.update(self._claims(client["client_id"], subject, scopes))
            response["id_token"] = self.keys.sign(claims, client["id_token_alg"])
        with self.k.db.write() as tx:
            tx.execute(insert(tables.tokens), rows)
            self.k.guard.record(ctx, "read", claims_resource(subject), "allow", tx)
        return response

    def _token_row(
        self,
        kind: str,
        token: str,
        client: RowMapping,
        subject: str,
        scopes: list[str],
        family: str,
        auth_time: datetime,
        now: datetime,
    ) -> dict[str, Any]:
        lifetime = ACCESS_LIFETIME if kind == "access" else REFRESH_LIFETIME
        return {
            "digest": digest(token),
            "kind": kind,
            "family": family,
            "client_id": client["client_id"],
            "subject": subject,
            "scopes": " ".join(scopes),
            "auth_time": auth_time,
            "created_at": now,
            "expires_at": now + lifetime,
            "used_at": None,
            "revoked_at": None,
        }

    def _claims(self, client_id: str, did: str, scopes: list[str]) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": self.subject(client_id, did)}
        if "profile" in scopes:
            name = self.squid.name_of(did)
            if name is not None:
                claims["name"] = name
        if "did" in scopes:
            claims["did"] = did
        return claims

    def userinfo(self, access_token: str, request_id: str = "") -> dict[str, Any]:
        """The claims an access token's scopes release, while the consent stands."""
        now = self.k.clock.now()
        t = tables.tokens
        with self.k.db.read() as conn:
            row = (
                conn.execute(
                    select(t).where(t.c.digest == digest(access_token), t.c.kind == "access")
                )
                .mappings()
                .first()
            )
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
            self.k.guard.record(Context(actor=ANONYMOUS), "read", "oidc:userinfo", "deny")
            raise InvalidToken("the access token is unknown, expired or revoked")
        client = self._client_row(row["client_id"])
        ctx = self.client_context(client, request_id)
        if not self._grant_live(row["client_id"], row["subject"]):
            self.k.guard.record(ctx, "read", claims_resource(row["subject"]), "deny")
            raise InvalidToken("the person's consent was revoked")
        self.k.guard.record(ctx, "read", claims_resource(row["subject"]), "allow")
        return self._claims(row["client_id"], row["subject"], row["scopes"].split())

    def revoke_token(self, client: RowMapping, token: str) -> None:
        """RFC 7009: revoke a token the client holds (a refresh token takes its family
        with it). Unknown tokens are not an error."""
        now = self.k.clock.now()
        t = tables.tokens
        with self.k.db.write() as tx:
            row = tx.execute(select(t).where(t.c.digest == digest(token))).mappings().first()
            if row is None or row["client_id"] != client["client_id"]:
                return
            where = (
                t.c.family == row["family"]
                if row["kind"] == "refresh"
                else t.c.digest == row["digest"]
            )
            tx.execute(update(t).where(where, t.c.revoked_at.is_(None)).values(revoked_at=now))
            ctx = self.client_context(client)
            self.k.guard.record(ctx, "delete", f"oidc:client:{client['client_id']}", "allow", tx)

    # Consents ---------------------------------------------------------------------------

    def consents(self, ctx: Context) -> list[Consent]:
        did = ctx.identity("a list of consents")
        subjects = [did, *self.squid.linked_subs(did)]
        c, k = tables.consents, tables.clients
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(c, k.c.name)
                .join(k, k.c.client_id == c.c.client_id)
                .where(c.c.subject.in_(subjects))
                .order_by(c.c.created_at)
            ).mappings()
            return [
                Consent(
                    client_id=row["client_id"],
                    client_name=row["name"],
                    subject=row["subject"],
                    scopes=row["scopes"].split(),
                    grant_id=row["grant_id"],
                    created_at=row["created_at"],
                )
                for row in rows
                if self._grant_live(row["client_id"], row["subject"])
            ]

    def withdraw(self, ctx: Context, client_id: str, subject: str | None = None) -> None:
        """End a consent: the grant is revoked and every token the client holds for the
        person stops working."""
        did = ctx.identity("a consent")
        subject = subject or did
        if subject != did and subject not in self.squid.linked_subs(did):
            raise Forbidden(f"{subject} is not you or one of your linked sub-identities")
        acting = Context(actor=Actor(id=subject, kind="identity"), request_id=ctx.request_id)
        now = self.k.clock.now()
        c, t = tables.consents, tables.tokens
        with self.k.change(acting, "share", claims_resource(subject)) as tx:
            grant_id = tx.execute(
                delete(c)
                .where(c.c.client_id == client_id, c.c.subject == subject)
                .returning(c.c.grant_id)
            ).scalar_one_or_none()
            if grant_id is None:
                raise NotFound(f"{subject} has no consent for {client_id!r}")
            self._revoke_grant_quietly(tx, acting, grant_id)
            tx.execute(
                update(t)
                .where(t.c.client_id == client_id, t.c.subject == subject, t.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    def _consent_row(self, client_id: str, did: str) -> RowMapping | None:
        c = tables.consents
        with self.k.db.read() as conn:
            return (
                conn.execute(select(c).where(c.c.client_id == client_id, c.c.subject == did))
                .mappings()
                .first()
            )

    def _grant_live(self, client_id: str, did: str) -> bool:
        """Whether the person's consent grant to the client still stands (Qonsent decides)."""
        return self.qonsent.check(self.client_did(client_id), "read", claims_resource(did)).allowed


class InvalidToken(Unauthenticated):
    """A bearer token the userinfo endpoint refuses (RFC 6750 `invalid_token`)."""

    code = "oidc.invalid_token"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="invalid_token", error_description=detail)
