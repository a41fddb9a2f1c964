"""Content identifiers: CIDv1, codec `raw`, multihash sha2-256, multibase base32 (`bafkrei…`)."""

from __future__ import annotations

import hashlib

from multiformats import CID, multihash

from anarq.kernel.errors import InvalidCid

CID_MAX_CHARS = 100


def cid_for_digest(sha256_digest: bytes) -> str:
    assert len(sha256_digest) == 32
    return str(CID("base32", 1, "raw", multihash.wrap(sha256_digest, "sha2-256")))


def cid_for_bytes(data: bytes) -> str:
    return cid_for_digest(hashlib.sha256(data).digest())


def digest_of(cid: str) -> bytes:
    """The sha2-256 digest a CID names; `InvalidCid` for anything else."""
    if not cid or len(cid) > CID_MAX_CHARS:
        raise InvalidCid(f"{cid[:CID_MAX_CHARS]!r} is not a CID")
    try:
        parsed = CID.decode(cid)
    except Exception as exc:  # the decoder raises many types for garbage; all mean 'not a CID'
        raise InvalidCid(f"{cid!r} is not a CID: {exc}") from None
    if parsed.version != 1 or parsed.hashfun.name != "sha2-256" or parsed.codec.name != "raw":
        raise InvalidCid(f"{cid!r} is not a CIDv1 raw sha2-256 identifier")
    if str(parsed) != cid:
        raise InvalidCid(f"{cid!r} is not in canonical base32 form (expected {parsed})")
    digest: bytes = parsed.raw_digest
    return digest
