"""The OpenID provider's tables: registered clients, its signing keys, consents, codes and
tokens. Codes, tokens and client secrets are stored as SHA-256 digests only."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200
CLIENT_ID_MAX = 64
SCOPE_MAX = 500

# A relying party: an application that signs people in with their sQuid.
clients = Table(
    "oidc_clients",
    metadata,
    Column("client_id", String(CLIENT_ID_MAX), primary_key=True),
    Column("name", String(100), nullable=False),
    # Who registered it (an identity, or the operator); they may change or remove it.
    Column("owner", String(DID_MAX), nullable=False),
    Column("redirect_uris", JSON, nullable=False),
    # client_secret_basic | client_secret_post | none (a public client: PKCE alone).
    Column("auth_method", String(32), nullable=False),
    Column("secret_digest", String(64), nullable=True),
    # The ID token's algorithm: EdDSA (Ed25519) or RS256.
    Column("id_token_alg", String(16), nullable=False),
    Column("scopes", String(SCOPE_MAX), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("removed_at", UtcDateTime(), nullable=True),
)

# The provider's signing keys, sealed under the node secret like the node's own key.
keys = Table(
    "oidc_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("sealed_private_key", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # A retired key still verifies (it stays in the JWKS) but no longer signs.
    Column("retired_at", UtcDateTime(), nullable=True),
)
Index("ix_oidc_keys_alg", keys.c.alg, keys.c.retired_at)

# What a person agreed to share with a client: the scopes, and the Qonsent grant that
# carries the consent (revoking that grant ends the consent and every token).
consents = Table(
    "oidc_consents",
    metadata,
    Column("client_id", String(CLIENT_ID_MAX), primary_key=True),
    Column("subject", String(DID_MAX), primary_key=True),
    Column("scopes", String(SCOPE_MAX), nullable=False),
    Column("grant_id", String(26), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
Index("ix_oidc_consents_subject", consents.c.subject)

# A consent request waiting for the person's answer (the consent screen's state).
requests = Table(
    "oidc_requests",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("client_id", String(CLIENT_ID_MAX), nullable=False),
    Column("user", String(DID_MAX), nullable=False),
    Column("params", JSON, nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_oidc_requests_expires", requests.c.expires_at)

# Authorization codes: single use, short lived, bound to the client, redirect URI and
# the PKCE challenge.
codes = Table(
    "oidc_codes",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("client_id", String(CLIENT_ID_MAX), nullable=False),
    Column("subject", String(DID_MAX), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scopes", String(SCOPE_MAX), nullable=False),
    Column("nonce", String(255), nullable=True),
    Column("code_challenge", String(128), nullable=False),
    Column("auth_time", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
)
Index("ix_oidc_codes_expires", codes.c.expires_at)

# Access and refresh tokens. A `family` is everything issued from one code: a replayed
# code or a reused refresh token revokes the whole family.
tokens = Table(
    "oidc_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),  # access | refresh
    Column("family", String(64), nullable=False),
    Column("client_id", String(CLIENT_ID_MAX), nullable=False),
    Column("subject", String(DID_MAX), nullable=False),
    Column("scopes", String(SCOPE_MAX), nullable=False),
    Column("auth_time", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    # A refresh token is used once: it is marked when it is exchanged.
    Column("used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
)
Index("ix_oidc_tokens_family", tokens.c.family)
Index("ix_oidc_tokens_subject_client", tokens.c.subject, tokens.c.client_id)
Index("ix_oidc_tokens_expires", tokens.c.expires_at)

TABLES = (clients, keys, consents, requests, codes, tokens)
