"""Request and response types of Qlock, with the bounds every input is held to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from anarq.qlock.seal import SEAL_MAX_AAD_BYTES
from anarq.qlock.sign import SIGNATURE_TEXT_MAX_CHARS
from anarq.qlock.tables import HOLDER_MAX

# --- locks ----------------------------------------------------------------------------------

# Segments of letters, digits, `.`, `_`, `-`, joined by `:`. The name becomes the resource
# `qlock:lock:<name>`, so `:` nests: a grant on `qlock:lock:jobs:*` covers `jobs:nightly`.
NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9][A-Za-z0-9._-]*)*$"
HOLDER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
# Below a tenth of a second a lease is shorter than a database round trip under load;
# above an hour a crashed holder blocks everyone too long. Long work extends its lease.
TTL_MIN_MS: Final = 100
TTL_MAX_MS: Final = 60 * 60 * 1000
WAIT_MAX_MS: Final = 30_000
TOKEN_MAX: Final = 2**63 - 1

# --- crypto over HTTP -----------------------------------------------------------------------

# The largest public key form is a hybrid verify key: 1 + 32 + 1952 bytes.
KEY_MAX_BYTES: Final = 2048
MESSAGE_MAX_BYTES: Final = 1024 * 1024
# Sealing over HTTP is for small secrets; files go through Qdrive's streaming encryption.
SEAL_PLAINTEXT_MAX_BYTES: Final = 1024 * 1024
SEAL_RECIPIENTS_MAX: Final = 64
SIGNATURE_MAX_BYTES: Final = SIGNATURE_TEXT_MAX_CHARS * 3 // 4


def base64_chars(size_bytes: int) -> int:
    """The length of padded base64 text for `size_bytes` bytes: the longest text accepted."""
    return 4 * ((size_bytes + 2) // 3)


KeyText = Annotated[str, Field(min_length=1, max_length=base64_chars(KEY_MAX_BYTES))]


class Lease(BaseModel):
    """A held lock: who holds it, until when, and the fencing token that proves it."""

    name: str
    owner: str = Field(description="The actor that acquired it.")
    holder: str = Field(description="The owner's name for the process or task holding it.")
    token: int = Field(
        description="Fencing token: grows with every acquisition of this name. Pass it to "
        "the resource you guard, which refuses any token lower than one it has seen."
    )
    acquired_at: datetime
    expires_at: datetime


class AcquireRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_ms: int = Field(ge=TTL_MIN_MS, le=TTL_MAX_MS, description="Lease lifetime.")
    wait_ms: int = Field(
        default=0,
        ge=0,
        le=WAIT_MAX_MS,
        description="How long to wait while another holds it; keep it inside your client's "
        "timeout (the CLI waits longer by asking again).",
    )
    holder: str | None = Field(
        default=None,
        min_length=1,
        max_length=HOLDER_MAX,
        pattern=HOLDER_PATTERN,
        description="Your name for the process holding it [default: a fresh id].",
    )


class ExtendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: int = Field(ge=1, le=TOKEN_MAX, description="The token acquire returned.")
    ttl_ms: int = Field(ge=TTL_MIN_MS, le=TTL_MAX_MS, description="New lifetime, from now.")


class VerifyRequest(BaseModel):
    """All binary fields are base64 (standard or URL-safe alphabet, padding optional)."""

    model_config = ConfigDict(extra="forbid")

    public_key: KeyText = Field(
        description="Qlock public signing key form: Ed25519 or Ed25519 + ML-DSA-65."
    )
    message: str = Field(max_length=base64_chars(MESSAGE_MAX_BYTES))
    signature: str = Field(min_length=1, max_length=SIGNATURE_TEXT_MAX_CHARS)


class Verification(BaseModel):
    """A signature that verified (one that does not is a `qlock.bad_signature` problem)."""

    valid: bool
    algorithm: str
    key_id: str


class SealRequest(BaseModel):
    """All binary fields are base64 (standard or URL-safe alphabet, padding optional)."""

    model_config = ConfigDict(extra="forbid")

    recipients: list[KeyText] = Field(
        min_length=1,
        max_length=SEAL_RECIPIENTS_MAX,
        description="Qlock recipient key forms: X25519, or X-Wing (ML-KEM-768 + X25519).",
    )
    plaintext: str = Field(max_length=base64_chars(SEAL_PLAINTEXT_MAX_BYTES))
    aad: str | None = Field(
        default=None,
        max_length=base64_chars(SEAL_MAX_AAD_BYTES),
        description="Authenticated, not stored: the opener must pass the same bytes.",
    )


class Sealed(BaseModel):
    envelope: str = Field(description="The sealed envelope, standard base64.")
    recipients: list[str] = Field(description="Key ids it is sealed to, in order.")
    size_bytes: int
