"""Request and response bodies of the OpenID provider."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from anarq.oidc.keys import ALGORITHMS, DEFAULT_ALG
from anarq.oidc.tables import DID_MAX

# What a client may ask for, and the claims each scope releases.
SCOPES = {
    "openid": ("sub",),
    "profile": ("name",),
    # The DID itself: the one identifier an app could correlate, released only on request.
    "did": ("did",),
    # Refresh tokens, so the app keeps access while the person is away.
    "offline_access": (),
}
REDIRECT_URIS_MAX = 10
REDIRECT_URI_MAX = 2000

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


def check_redirect_uri(value: str) -> str:
    """Redirect URIs are absolute, without a fragment; plain http only on loopback
    (native apps, RFC 8252) — anything else must be https or a private-use scheme."""
    parts = urlsplit(value)
    if not parts.scheme or parts.fragment or len(value) > REDIRECT_URI_MAX:
        raise ValueError(f"{value!r} is not an absolute URI without a fragment")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"{value!r}: plain http is allowed only to a loopback address")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise ValueError(f"{value!r} names no host")
    if parts.scheme in ("javascript", "data", "file"):
        raise ValueError(f"{value!r}: the {parts.scheme} scheme cannot be a redirect URI")
    return value


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Shown on the consent screen.")
    redirect_uris: list[Annotated[str, Field(min_length=1, max_length=REDIRECT_URI_MAX)]] = Field(
        min_length=1, max_length=REDIRECT_URIS_MAX
    )
    auth_method: AuthMethod = Field(
        default="client_secret_basic",
        description="How the client authenticates at the token endpoint; `none` for a "
        "public client (a single-page or native app), which PKCE alone protects.",
    )
    id_token_alg: str = Field(default=DEFAULT_ALG, description="EdDSA, Ed25519 or RS256.")
    scopes: list[str] = Field(default=["openid", "profile", "did", "offline_access"])

    @field_validator("redirect_uris")
    @classmethod
    def _redirects(cls, value: list[str]) -> list[str]:
        return [check_redirect_uri(uri) for uri in dict.fromkeys(value)]

    @field_validator("id_token_alg")
    @classmethod
    def _alg(cls, value: str) -> str:
        if value not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {value!r}; one of {', '.join(ALGORITHMS)}")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
        if "openid" not in value:
            raise ValueError("a client's scopes include openid")
        return [scope for scope in SCOPES if scope in value]


class Client(BaseModel):
    client_id: str
    name: str
    owner: str
    redirect_uris: list[str]
    auth_method: AuthMethod
    id_token_alg: str
    scopes: list[str]
    created_at: datetime
    # The DID the client's consent grants name as their grantee.
    grantee: str


class ClientCreated(Client):
    client_secret: str | None = Field(
        description="Shown once; the node keeps only its digest. None for a public client."
    )


class Pending(BaseModel):
    """A consent the person has to give (or refuse) before the client gets a code."""

    request_id: str
    client_id: str
    client_name: str
    scopes: list[str]
    claims: list[str]
    # Who may be chosen to sign in as: the caller and its linked sub-identities.
    identities: list[str]
    expires_at: datetime


class ConsentAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=26, max_length=26)
    approve: bool
    identity: str | None = Field(
        default=None,
        min_length=8,
        max_length=DID_MAX,
        description="Sign in as this sub-identity of the caller (default: the caller).",
    )


class Redirect(BaseModel):
    """Where the person's user agent goes next: the client's redirect URI with the code
    (or the error) in its query."""

    redirect_to: str


class Consent(BaseModel):
    client_id: str
    client_name: str
    subject: str
    scopes: list[str]
    grant_id: str
    created_at: datetime
