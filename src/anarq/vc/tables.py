"""Verifiable credentials this node issued or holds for its identities, the issuers'
Bitstring status lists, and the challenges verifiers hand out for presentations."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, String, Table, Text

from anarq.kernel.db import UtcDateTime, metadata

DID_MAX = 200
CREDENTIAL_ID_MAX = 100

credentials = Table(
    "vc_credentials",
    metadata,
    Column("id", String(CREDENTIAL_ID_MAX), primary_key=True),
    Column("issuer", String(DID_MAX), nullable=False),
    Column("holder", String(DID_MAX), nullable=False),
    # The credential's most specific type (e.g. DaoMembershipCredential).
    Column("kind", String(80), nullable=False),
    # The signed credential, as issued (JSON).
    Column("document", Text, nullable=False),
    Column("status_list", String(26), nullable=True),
    Column("status_index", Integer, nullable=True),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("valid_until", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
)
Index("ix_vc_credentials_holder", credentials.c.holder, credentials.c.issued_at)
Index("ix_vc_credentials_issuer", credentials.c.issuer, credentials.c.issued_at)
Index(
    "ux_vc_credentials_status", credentials.c.status_list, credentials.c.status_index, unique=True
)

# One issuer's revocation list: 131,072 bits, the next free index, and the signed list
# credential the world fetches (signed by the issuer: the node, or an identity's device).
status_lists = Table(
    "vc_status_lists",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("issuer", String(DID_MAX), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("bits", LargeBinary, nullable=False),
    Column("next_index", Integer, nullable=False),
    Column("signed", Text, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)
Index("ix_vc_status_lists_issuer", status_lists.c.issuer, status_lists.c.purpose)

# Challenges this node handed out as a verifier: each is good for one presentation.
challenges = Table(
    "vc_challenges",
    metadata,
    Column("challenge", String(64), primary_key=True),
    # The identity that asked for it: only it may spend it.
    Column("verifier", String(DID_MAX), nullable=False),
    Column("domain", String(255), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_vc_challenges_expires", challenges.c.expires_at)

# Email confirmations waiting for their link to be followed (the token's digest only).
email_checks = Table(
    "vc_email_checks",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("did", String(DID_MAX), nullable=False),
    Column("email", String(254), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_vc_email_checks_did", email_checks.c.did, email_checks.c.created_at)

TABLES = (credentials, status_lists, challenges, email_checks)
