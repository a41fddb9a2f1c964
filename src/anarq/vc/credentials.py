"""W3C Verifiable Credentials Data Model 2.0: build, present and verify credentials and
presentations secured with `eddsa-jcs-2022` proofs.

Verification is offline given the issuer's DID: issuers and holders are did:keys, whose
DID documents follow from the DIDs themselves. Only the revocation check needs the
issuer's status list, which the caller fetches (or passes in) through `status_lookup`.
Every check is reported, so a verifier sees why a credential fails, not only that it does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from anarq.kernel.clock import parse_rfc3339, rfc3339
from anarq.vc import dataintegrity, statuslist
from anarq.vc.dataintegrity import ProofInvalid, Resolver, resolve_did_key

CONTEXT_V2 = statuslist.CONTEXT_V2
# Status list credentials by URL; None when the list cannot be had.
StatusLookup = Callable[[str], dict[str, Any] | None]


class CredentialInvalid(Exception):
    """Not a credential (or presentation) in the data model; the message says why."""


@dataclass
class Report:
    """What was checked and how it went. `verified` only if nothing failed; a status
    that could not be checked is reported (`status: unchecked`), not passed silently."""

    verified: bool = True
    issuer: str | None = None
    holder: str | None = None
    types: list[str] = field(default_factory=list)
    subject: str | None = None
    status: str = "none"  # none | active | revoked | unchecked
    checks: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    credentials: list[Report] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail})
        if not ok:
            self.verified = False
            self.errors.append(f"{name}: {detail}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "issuer": self.issuer,
            "holder": self.holder,
            "types": self.types,
            "subject": self.subject,
            "status": self.status,
            "checks": self.checks,
            "errors": self.errors,
            "credentials": [report.as_dict() for report in self.credentials],
        }


def new_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def build(
    issuer: str,
    subject: dict[str, Any],
    types: list[str],
    *,
    valid_from: datetime,
    valid_until: datetime | None = None,
    status: dict[str, Any] | None = None,
    name: str | None = None,
    credential_id: str | None = None,
) -> dict[str, Any]:
    """An unsigned credential."""
    document: dict[str, Any] = {
        "@context": [CONTEXT_V2],
        "id": credential_id or new_id(),
        "type": ["VerifiableCredential", *[t for t in types if t != "VerifiableCredential"]],
        "issuer": issuer,
        "validFrom": rfc3339(valid_from),
        "credentialSubject": subject,
    }
    if name:
        document["name"] = name
    if valid_until is not None:
        document["validUntil"] = rfc3339(valid_until)
    if status is not None:
        document["credentialStatus"] = status
    return document


def issue(document: dict[str, Any], seed: bytes, *, created: datetime) -> dict[str, Any]:
    """Sign a credential as its issuer (a did:key)."""
    issuer = issuer_of(document)
    return dataintegrity.sign(document, seed, dataintegrity.did_key_method(issuer), created=created)


def present(
    credentials: list[dict[str, Any]],
    holder: str,
    seed: bytes,
    *,
    challenge: str,
    domain: str | None,
    created: datetime,
) -> dict[str, Any]:
    """A verifiable presentation of `credentials` by `holder`, bound to the verifier's
    `challenge` (and `domain`) so it cannot be replayed elsewhere."""
    document: dict[str, Any] = {
        "@context": [CONTEXT_V2],
        "id": new_id(),
        "type": ["VerifiablePresentation"],
        "holder": holder,
        "verifiableCredential": credentials,
    }
    return dataintegrity.sign(
        document,
        seed,
        dataintegrity.did_key_method(holder),
        purpose="authentication",
        created=created,
        challenge=challenge,
        domain=domain,
    )


def issuer_of(document: dict[str, Any]) -> str:
    issuer = document.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or not issuer:
        raise CredentialInvalid("issuer must be a URL or an object with an id")
    return issuer


def check_shape(document: Any) -> None:
    """The data model's requirements a verifier checks before any signature."""
    if not isinstance(document, dict):
        raise CredentialInvalid("a credential is a JSON object")
    contexts = document.get("@context")
    if not isinstance(contexts, list) or not contexts or contexts[0] != CONTEXT_V2:
        raise CredentialInvalid(f"@context must be a list starting with {CONTEXT_V2}")
    types = document.get("type")
    if not isinstance(types, list) or "VerifiableCredential" not in types:
        raise CredentialInvalid("type must be a list including VerifiableCredential")
    issuer_of(document)
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict | list) or not subject:
        raise CredentialInvalid("credentialSubject must be an object (or a list of them)")
    for name in ("validFrom", "validUntil"):
        if name in document:
            _instant(document[name], name)


def verify_credential(
    document: Any,
    *,
    now: datetime,
    status_lookup: StatusLookup | None = None,
    resolve: Resolver = resolve_did_key,
) -> Report:
    """Check a credential: its shape, its issuer's proof, its validity period and, with a
    `status_lookup`, its revocation."""
    report = Report()
    try:
        check_shape(document)
    except CredentialInvalid as exc:
        report.check("shape", False, str(exc))
        return report
    report.issuer = issuer_of(document)
    report.types = [t for t in document["type"] if isinstance(t, str)]
    subject = document["credentialSubject"]
    if isinstance(subject, dict) and isinstance(subject.get("id"), str):
        report.subject = subject["id"]
    report.check("shape", True)
    try:
        proof = dataintegrity.verify(document, resolve)
        signer = str(proof["verificationMethod"]).partition("#")[0]
        if signer != report.issuer:
            report.check("proof", False, f"signed by {signer}, not by the issuer")
        else:
            report.check("proof", True, str(proof["verificationMethod"]))
    except ProofInvalid as exc:
        report.check("proof", False, str(exc))
    valid_from = (
        _instant(document.get("validFrom"), "validFrom") if "validFrom" in document else None
    )
    valid_until = (
        _instant(document.get("validUntil"), "validUntil") if "validUntil" in document else None
    )
    if valid_from is not None and now < valid_from:
        report.check("validity", False, f"not valid before {document['validFrom']}")
    elif valid_until is not None and now >= valid_until:
        report.check("validity", False, f"expired at {document['validUntil']}")
    else:
        report.check("validity", True)
    status = document.get("credentialStatus")
    if status is not None:
        _check_status(report, status, status_lookup, resolve, now)
    return report


def verify_presentation(
    document: Any,
    *,
    challenge: str,
    domain: str | None,
    now: datetime,
    status_lookup: StatusLookup | None = None,
    resolve: Resolver = resolve_did_key,
) -> Report:
    """Check a presentation: the holder's proof bound to `challenge` and `domain`, every
    credential in it, and that the holder is the subject of each."""
    report = Report()
    if not isinstance(document, dict) or "VerifiablePresentation" not in (
        document.get("type") or []
    ):
        report.check("shape", False, "type must include VerifiablePresentation")
        return report
    holder = document.get("holder")
    if not isinstance(holder, str):
        report.check("shape", False, "a presentation names its holder")
        return report
    report.holder = holder
    report.types = list(document["type"])
    report.check("shape", True)
    try:
        proof = dataintegrity.verify(
            document, resolve, purpose="authentication", challenge=challenge, domain=domain
        )
        signer = str(proof["verificationMethod"]).partition("#")[0]
        if signer != holder:
            report.check("proof", False, f"signed by {signer}, not by the holder")
        else:
            report.check("proof", True, "bound to the challenge and domain")
    except ProofInvalid as exc:
        report.check("proof", False, str(exc))
    held = document.get("verifiableCredential", [])
    held = held if isinstance(held, list) else [held]
    for credential in held:
        inner = verify_credential(credential, now=now, status_lookup=status_lookup, resolve=resolve)
        report.credentials.append(inner)
        if not inner.verified:
            report.check("credential", False, "; ".join(inner.errors))
        elif inner.subject != holder:
            report.check("credential", False, f"{inner.subject} is the subject, not the holder")
    if not held:
        report.check("credential", False, "the presentation holds no credential")
    return report


def _check_status(
    report: Report,
    status: Any,
    status_lookup: StatusLookup | None,
    resolve: Resolver,
    now: datetime,
) -> None:
    if not isinstance(status, dict) or status.get("type") != "BitstringStatusListEntry":
        report.check("status", False, "credentialStatus is not a BitstringStatusListEntry")
        return
    url, purpose = status.get("statusListCredential"), status.get("statusPurpose")
    try:
        index = int(status.get("statusListIndex", ""))
    except (TypeError, ValueError):
        report.check("status", False, "statusListIndex is not an integer")
        return
    if not isinstance(url, str) or purpose not in ("revocation", "suspension"):
        report.check("status", False, "the status entry names no list or no known purpose")
        return
    listed = status_lookup(url) if status_lookup is not None else None
    if listed is None:
        report.status = "unchecked"
        report.checks.append(
            {"check": "status", "ok": None, "detail": f"status list {url} not available"}
        )
        return
    inner = verify_credential(listed, now=now, resolve=resolve)
    if not inner.verified:
        report.check("status", False, "the status list does not verify: " + "; ".join(inner.errors))
        return
    if inner.issuer != report.issuer:
        report.check("status", False, "the status list is not the credential issuer's")
        return
    subject = listed.get("credentialSubject", {})
    if listed.get("id") != url or subject.get("statusPurpose") != purpose:
        report.check("status", False, "the status list is not the one the entry names")
        return
    try:
        revoked = statuslist.is_set(statuslist.decode(subject.get("encodedList")), index)
    except statuslist.StatusListInvalid as exc:
        report.check("status", False, str(exc))
        return
    if revoked:
        report.status = "revoked"
        report.check("status", False, f"{purpose}: the issuer has revoked it")
    else:
        report.status = "active"
        report.check("status", True, f"bit {index} of {url} is clear")


def _instant(value: Any, name: str) -> datetime:
    try:
        if not isinstance(value, str):
            raise ValueError
        return parse_rfc3339(value)
    except ValueError:
        raise CredentialInvalid(f"{name} must be an RFC 3339 date-time with a time zone") from None
