"""sQuid's errors, with stable codes."""

from __future__ import annotations

from anarq.kernel.errors import BadRequest


class InvalidDid(BadRequest):
    code = "squid.invalid_did"
    title = "Not a valid DID"
