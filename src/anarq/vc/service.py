"""Verifiable credentials on this node: the node as an issuer of facts it holds, a wallet
for its identities' credentials, a host of issuers' status lists, and a verifier.

Two kinds of issuer:
- the node, for what it can attest itself — that a caller controls its DID, is a member
  of a DAO here, completed a purchase here. It signs with its Ed25519 key and keeps its
  status list signed itself.
- an identity, signing on its own device (the node never holds its key): it asks for a
  status entry, signs the credential, and hands it here for its holder. It revokes by
  publishing its status list again, signed, with the credential's bit set.

Verifying needs no network: did:key issuers resolve from the DID itself. Status lists
hosted here are read from the database; others are not fetched by the node.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.clock import parse_rfc3339, rfc3339
from anarq.kernel.errors import AnarqError, BadRequest, Conflict, Forbidden, NotFound, RateLimited
from anarq.kernel.guard import Actor, Context
from anarq.kernel.ids import new_id
from anarq.node.service import NodeService
from anarq.vc import credentials as vcs
from anarq.vc import email, statuslist, tables
from anarq.vc.models import (
    DOCUMENT_MAX_BYTES,
    Allocation,
    Challenge,
    EmailSent,
    Held,
    IssueRequest,
    VerifyRequest,
)

CHALLENGE_LIFETIME = timedelta(minutes=10)
EMAIL_LIFETIME = timedelta(hours=1)
EMAILS_PER_HOUR = 5
KIND_TYPES = {
    "did-control": "DidControlCredential",
    "dao-member": "DaoMembershipCredential",
    "purchase": "PurchaseCredential",
}


class CredentialRefused(BadRequest):
    code = "vc.invalid"
    title = "Credential refused"


def issuer_resource(did: str) -> str:
    return f"vc:issuer:{did}"


def holder_resource(did: str) -> str:
    return f"vc:holder:{did}"


class VcService:
    def __init__(self, kernel: Kernel, node: NodeService, dao: Any, market: Any) -> None:
        self.k = kernel
        self.node = node
        self.dao = dao
        self.market = market

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """A guard policy: an identity issues under its own name and keeps its own wallet."""
        if ctx.actor.kind != "identity":
            return False
        if resource in (issuer_resource(ctx.actor.id), holder_resource(ctx.actor.id)):
            return action in ("read", "write")
        return False

    def list_url(self, list_id: str) -> str:
        return f"{self.k.settings.effective_public_url.rstrip('/')}/vc/status/{list_id}"

    # The node as issuer --------------------------------------------------------------

    def issue(self, ctx: Context, request: IssueRequest) -> Held:
        """A credential the node signs about the caller, after checking the fact."""
        holder = ctx.identity("a credential")
        subject: dict[str, Any] = {"id": holder}
        if request.kind == "did-control":
            # The request itself was signed with the DID's key: that is the proof.
            subject["controls"] = holder
        elif request.kind == "dao-member":
            assert request.dao is not None
            info = self.dao.dao(request.dao)
            members = {m.did: m for m in self.dao.members(request.dao)}
            member = members.get(holder)
            if member is None or int(member.power) <= 0:
                self.k.guard.record(ctx, "write", holder_resource(holder), "deny")
                raise Forbidden(f"{holder} is not a member of {request.dao}")
            subject["memberOf"] = {"id": info.did, "name": info.name}
        else:
            assert request.order is not None
            try:
                order = self.market.order(ctx, request.order)
            except NotFound:
                order = None
            if order is None or order.buyer != holder or order.status != "settled":
                self.k.guard.record(ctx, "write", holder_resource(holder), "deny")
                raise Forbidden("only a settled purchase of yours earns a purchase credential")
            subject["purchased"] = {
                "order": order.id,
                "listing": order.listing_id,
                "title": order.title,
                "seller": order.seller,
            }
        return self._issue_as_node(
            ctx, holder, subject, KIND_TYPES[request.kind], timedelta(days=request.valid_days)
        )

    def _issue_as_node(
        self, ctx: Context, holder: str, subject: dict[str, Any], kind: str, valid: timedelta
    ) -> Held:
        """Sign, with the node's key, a credential about `holder`, with a status entry on
        the node's list, and keep it for them: one transaction."""
        issuer = self.node.identity.did
        seed = self.node.identity.signing_key().ed25519_seed()
        now = self.k.clock.now()
        with self.k.change(ctx, "write", holder_resource(holder)) as tx:
            list_id, index = self._allocate(tx, issuer)
            document = vcs.build(
                issuer,
                subject,
                [kind],
                valid_from=now,
                valid_until=now + valid,
                status=statuslist.entry(self.list_url(list_id), index),
            )
            signed = vcs.issue(document, seed, created=now)
            self._store(tx, signed, holder, kind, list_id, index)
            if self._list_row(tx, list_id)["signed"] is None:
                self._sign_node_list(tx, list_id)
        return self._held_by_id(signed["id"])

    def _sign_node_list(self, tx: Connection, list_id: str) -> None:
        row = self._list_row(tx, list_id)
        unsigned = statuslist.credential(
            self.list_url(list_id),
            row["issuer"],
            row["bits"],
            row["purpose"],
            valid_from=rfc3339(self.k.clock.now()),
        )
        seed = self.node.identity.signing_key().ed25519_seed()
        signed = vcs.issue(unsigned, seed, created=self.k.clock.now())
        tx.execute(
            update(tables.status_lists)
            .where(tables.status_lists.c.id == list_id)
            .values(signed=json.dumps(signed), updated_at=self.k.clock.now())
        )

    # Verified email ------------------------------------------------------------------

    def request_email(self, ctx: Context, address: str) -> EmailSent:
        """Mail `address` a one-use link; following it earns the caller a
        VerifiedEmailCredential for that address."""
        did = ctx.identity("a verified email")
        now = self.k.clock.now()
        e = tables.email_checks
        with self.k.db.read() as conn:
            recent = conn.execute(
                select(func.count())
                .select_from(e)
                .where(e.c.did == did, e.c.created_at > now - timedelta(hours=1))
            ).scalar_one()
        if recent >= EMAILS_PER_HOUR:
            raise RateLimited(f"at most {EMAILS_PER_HOUR} confirmation emails an hour")
        token = secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.k.change(ctx, "write", holder_resource(did)) as tx:
            tx.execute(delete(e).where(e.c.expires_at < now))
            tx.execute(
                insert(e).values(
                    digest=digest,
                    did=did,
                    email=address,
                    created_at=now,
                    expires_at=now + EMAIL_LIFETIME,
                )
            )
        base = self.k.settings.effective_public_url.rstrip("/")
        host = urlsplit(base).hostname or "localhost"
        body = (
            f"Someone asked {self.k.settings.node_name} to confirm that this address belongs "
            f"to the identity\n\n    {did}\n\n"
            f"If that was you, open this link within an hour:\n\n"
            f"    {base}/vc/email/confirm?token={token}\n\n"
            f"or run: anarq vc email --confirm {token}\n\n"
            "If it was not you, ignore this message: nothing happens without the link.\n"
        )
        try:
            email.send(
                self.k.settings.smtp_url,
                self.k.settings.smtp_from or f"anarq@{host}",
                address,
                "Confirm your email address",
                body,
            )
        except AnarqError:
            with self.k.db.write() as tx:
                tx.execute(delete(e).where(e.c.digest == digest))
            raise
        return EmailSent(email=address, expires_at=now + EMAIL_LIFETIME)

    def confirm_email(self, token: str) -> Held:
        """Follow the link: the identity that asked gets its credential (once)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        e = tables.email_checks
        now = self.k.clock.now()
        with self.k.db.write() as tx:
            row = tx.execute(delete(e).where(e.c.digest == digest).returning(e)).mappings().first()
        if row is None or row["expires_at"] <= now:
            raise CredentialRefused("the link is unknown, used or expired: ask for a new one")
        holder = row["did"]
        acting = Context(actor=Actor(id=holder, kind="identity"))
        subject = {"id": holder, "email": row["email"]}
        return self._issue_as_node(
            acting, holder, subject, "VerifiedEmailCredential", timedelta(days=365)
        )

    # Identities as issuers -----------------------------------------------------------

    def allocate(self, ctx: Context) -> Allocation:
        """A status entry for a credential the caller will sign; on a new list, the list
        credential the caller signs and publishes first."""
        issuer = ctx.identity("an issuer")
        with self.k.change(ctx, "write", issuer_resource(issuer)) as tx:
            list_id, index = self._allocate(tx, issuer)
            row = self._list_row(tx, list_id)
        url = self.list_url(list_id)
        to_sign = None
        if row["signed"] is None:
            to_sign = statuslist.credential(
                url, issuer, row["bits"], row["purpose"], valid_from=rfc3339(self.k.clock.now())
            )
        return Allocation(
            credential_status=statuslist.entry(url, index), list_url=url, list_to_sign=to_sign
        )

    def store(self, ctx: Context, credential: dict[str, Any]) -> Held:
        """Keep a credential the caller issued, for its holder (its subject)."""
        issuer = ctx.identity("an issuer")
        _size_check(credential)
        report = vcs.verify_credential(credential, now=self.k.clock.now())
        if not report.verified:
            self.k.guard.record(ctx, "write", issuer_resource(issuer), "deny")
            raise CredentialRefused("the credential does not verify: " + "; ".join(report.errors))
        if report.issuer != issuer:
            self.k.guard.record(ctx, "write", issuer_resource(issuer), "deny")
            raise Forbidden("you hand over credentials you issued, signed by you")
        holder = report.subject
        if holder is None or not holder.startswith("did:"):
            raise CredentialRefused(
                "the credential's subject must have a DID (credentialSubject.id)"
            )
        status = credential.get("credentialStatus")
        list_id = index = None
        with self.k.change(ctx, "write", issuer_resource(issuer)) as tx:
            if status is not None:
                list_id, index = self._own_entry(tx, issuer, status)
            kinds = [t for t in report.types if t != "VerifiableCredential"]
            kind = (kinds or ["VerifiableCredential"])[-1]
            self._store(tx, credential, holder, kind, list_id, index)
        return self._held_by_id(credential["id"])

    def _own_entry(self, tx: Connection, issuer: str, status: Any) -> tuple[str, int]:
        url = status.get("statusListCredential", "") if isinstance(status, dict) else ""
        prefix = self.list_url("")
        if not isinstance(url, str) or not url.startswith(prefix):
            raise CredentialRefused("credentialStatus must name a status list hosted here")
        list_id = url.removeprefix(prefix)
        row = self._list_row(tx, list_id)
        try:
            index = int(status["statusListIndex"])
        except (KeyError, TypeError, ValueError):
            raise CredentialRefused("statusListIndex must be an integer (as text)") from None
        if status.get("statusPurpose") != row["purpose"]:
            raise CredentialRefused(f"the status entry's purpose must be {row['purpose']}")
        if row["issuer"] != issuer or not 0 <= index < row["next_index"]:
            raise CredentialRefused("the status entry was not allocated to you")
        return list_id, index

    def publish_list(self, ctx: Context, list_id: str, signed: dict[str, Any]) -> dict[str, Any]:
        """Take a new version of the caller's status list, signed by them. Bits are only
        ever set (a revocation is final); credentials whose bit is now set are revoked."""
        issuer = ctx.identity("an issuer")
        _size_check(signed)
        with self.k.db.read() as conn:
            row = self._list_row(conn, list_id)
        if row["issuer"] != issuer:
            self.k.guard.record(ctx, "write", issuer_resource(issuer), "deny")
            raise Forbidden("a status list is published by its issuer")
        report = vcs.verify_credential(signed, now=self.k.clock.now())
        if not report.verified or report.issuer != issuer:
            self.k.guard.record(ctx, "write", issuer_resource(issuer), "deny")
            raise CredentialRefused(
                "the list does not verify as yours: " + "; ".join(report.errors)
            )
        subject = signed.get("credentialSubject", {})
        if (
            signed.get("id") != self.list_url(list_id)
            or subject.get("statusPurpose") != row["purpose"]
        ):
            raise CredentialRefused("this is not the list at this address (id or purpose differ)")
        try:
            bits = statuslist.decode(subject.get("encodedList"))
        except statuslist.StatusListInvalid as exc:
            raise CredentialRefused(str(exc)) from None
        now = self.k.clock.now()
        with self.k.change(ctx, "write", issuer_resource(issuer)) as tx:
            # Compared with the list as it is now, under its lock: of two publications
            # made from the same version, the second cannot clear the first's bits.
            current = self._list_row(tx, list_id, lock=True)
            old = current["bits"]
            if len(bits) != len(old) or any(o & ~n for o, n in zip(old, bits, strict=True)):
                raise CredentialRefused(
                    "a published list may set bits, never clear them (publish it again "
                    "from the list as it is now)"
                )
            newly = [
                i
                for i in range(current["next_index"])
                if statuslist.is_set(bits, i) and not statuslist.is_set(old, i)
            ]
            tx.execute(
                update(tables.status_lists)
                .where(tables.status_lists.c.id == list_id)
                .values(bits=bytes(bits), signed=json.dumps(signed), updated_at=now)
            )
            if newly:
                c = tables.credentials
                tx.execute(
                    update(c)
                    .where(
                        c.c.status_list == list_id,
                        c.c.status_index.in_(newly),
                        c.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=now)
                )
        return {"list": list_id, "revoked": len(newly)}

    def revoke(self, ctx: Context, credential_id: str) -> Held:
        """Revoke a credential the node issued: for its holder or the operator. (An
        identity revokes its own credentials by publishing its list.)"""
        row = self._row(credential_id)
        if row["issuer"] != self.node.identity.did:
            raise CredentialRefused(
                "the node revokes only what it issued; the issuer publishes its own list"
            )
        if ctx.actor.kind not in ("operator", "node") and ctx.actor.id != row["holder"]:
            self.k.guard.record(ctx, "write", holder_resource(row["holder"]), "deny")
            raise NotFound(f"no credential {credential_id}")
        if row["revoked_at"] is not None:
            raise Conflict(f"{credential_id} is already revoked")
        now = self.k.clock.now()
        resource = holder_resource(row["holder"])
        with self.k.change(
            ctx, "write", resource if ctx.actor.kind == "identity" else "vc:*"
        ) as tx:
            listed = self._list_row(tx, row["status_list"], lock=True)
            bits = bytearray(listed["bits"])
            statuslist.set_bit(bits, row["status_index"])
            tx.execute(
                update(tables.status_lists)
                .where(tables.status_lists.c.id == row["status_list"])
                .values(bits=bytes(bits))
            )
            tx.execute(
                update(tables.credentials)
                .where(tables.credentials.c.id == credential_id)
                .values(revoked_at=now)
            )
            self._sign_node_list(tx, row["status_list"])
        return self._held_by_id(credential_id)

    # Reading -------------------------------------------------------------------------

    def held(self, ctx: Context, role: str = "holder") -> list[Held]:
        did = ctx.identity("a wallet")
        c = tables.credentials
        column = c.c.holder if role == "holder" else c.c.issuer
        with self.k.db.read() as conn:
            rows = conn.execute(select(c).where(column == did).order_by(c.c.issued_at)).mappings()
            return [_held(row) for row in rows]

    def credential(self, ctx: Context, credential_id: str) -> Held:
        row = self._row(credential_id)
        allowed = ctx.actor.kind in ("operator", "node") or ctx.actor.id in (
            row["holder"],
            row["issuer"],
        )
        if not allowed:
            raise NotFound(f"no credential {credential_id}")
        return _held(row)

    def vouchers(self, did: str) -> int:
        """How many other issuers stand behind a live credential `did` holds here."""
        c = tables.credentials
        with self.k.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count(func.distinct(c.c.issuer))).where(
                        c.c.holder == did, c.c.issuer != did, c.c.revoked_at.is_(None)
                    )
                ).scalar_one()
            )

    def status_list(self, list_id: str) -> dict[str, Any]:
        """The signed status list credential (public: anyone verifying needs it)."""
        with self.k.db.read() as conn:
            row = self._list_row(conn, list_id)
        if row["signed"] is None:
            raise NotFound(f"status list {list_id} is not published yet")
        document: dict[str, Any] = json.loads(row["signed"])
        return document

    # The node as verifier ------------------------------------------------------------

    def challenge(self, ctx: Context, domain: str | None) -> Challenge:
        """A challenge for a presentation to the caller (the verifier): one use."""
        verifier = ctx.identity("a verifier's challenge")
        now = self.k.clock.now()
        value = secrets.token_urlsafe(24)
        with self.k.db.write() as tx:
            tx.execute(delete(tables.challenges).where(tables.challenges.c.expires_at < now))
            tx.execute(
                insert(tables.challenges).values(
                    challenge=value,
                    verifier=verifier,
                    domain=domain,
                    expires_at=now + CHALLENGE_LIFETIME,
                )
            )
        return Challenge(challenge=value, domain=domain, expires_at=now + CHALLENGE_LIFETIME)

    def verify(self, ctx: Context, request: VerifyRequest) -> dict[str, Any]:
        """Verify a credential (anyone), or a presentation against a challenge this node
        gave the caller (spent by the attempt: a presentation is accepted once)."""
        now = self.k.clock.now()
        if request.credential is not None:
            _size_check(request.credential)
            return vcs.verify_credential(
                request.credential, now=now, status_lookup=self._local_list
            ).as_dict()
        assert request.presentation is not None and request.challenge is not None
        _size_check(request.presentation)
        verifier = ctx.identity("a presentation's verifier")
        c = tables.challenges
        with self.k.db.write() as tx:
            spent = (
                tx.execute(
                    delete(c)
                    .where(c.c.challenge == request.challenge, c.c.verifier == verifier)
                    .returning(c)
                )
                .mappings()
                .first()
            )
        if spent is None or spent["expires_at"] <= now:
            raise CredentialRefused("the challenge is unknown, expired or already used")
        if spent["domain"] != request.domain:
            raise CredentialRefused("the domain is not the one the challenge was given for")
        return vcs.verify_presentation(
            request.presentation,
            challenge=request.challenge,
            domain=request.domain,
            now=now,
            status_lookup=self._local_list,
        ).as_dict()

    def _local_list(self, url: str) -> dict[str, Any] | None:
        prefix = self.list_url("")
        if not url.startswith(prefix):
            return None  # the node does not fetch other hosts' lists (no server-side fetches)
        try:
            return self.status_list(url.removeprefix(prefix))
        except NotFound:
            return None

    # Storage -------------------------------------------------------------------------

    def _allocate(self, tx: Connection, issuer: str) -> tuple[str, int]:
        s = tables.status_lists
        row = (
            tx.execute(
                select(s.c.id, s.c.next_index)
                .where(s.c.issuer == issuer, s.c.purpose == "revocation")
                .where(s.c.next_index < statuslist.MIN_ENTRIES)
                .order_by(s.c.updated_at)
                .limit(1)
                .with_for_update()
            )
            .mappings()
            .first()
        )
        if row is None:
            list_id = new_id()
            tx.execute(
                insert(s).values(
                    id=list_id,
                    issuer=issuer,
                    purpose="revocation",
                    bits=bytes(statuslist.empty()),
                    next_index=1,
                    signed=None,
                    updated_at=self.k.clock.now(),
                )
            )
            return list_id, 0
        # Random order within a list would hide issuance order; sequential is what
        # the unique index and a simple counter give, and the list's size hides the rest.
        tx.execute(update(s).where(s.c.id == row["id"]).values(next_index=row["next_index"] + 1))
        return str(row["id"]), int(row["next_index"])

    def _store(
        self,
        tx: Connection,
        document: dict[str, Any],
        holder: str,
        kind: str,
        list_id: str | None,
        index: int | None,
    ) -> None:
        c = tables.credentials
        credential_id = document.get("id")
        if (
            not isinstance(credential_id, str)
            or not 1 <= len(credential_id) <= tables.CREDENTIAL_ID_MAX
        ):
            raise CredentialRefused(
                "a credential kept here has an id (a URI, at most 100 characters)"
            )
        clash = tx.execute(
            select(c.c.id).where(
                or_(
                    c.c.id == credential_id,
                    (c.c.status_list == list_id) & (c.c.status_index == index),
                )
            )
        ).first()
        if clash is not None:
            raise Conflict("a credential with this id or this status entry is already kept here")
        valid_until = document.get("validUntil")
        tx.execute(
            insert(c).values(
                id=credential_id,
                issuer=vcs.issuer_of(document),
                holder=holder,
                kind=kind[:80],
                document=json.dumps(document),
                status_list=list_id,
                status_index=index,
                issued_at=self.k.clock.now(),
                valid_until=parse_rfc3339(valid_until) if isinstance(valid_until, str) else None,
                revoked_at=None,
            )
        )
        self.k.bus.publish(
            tx,
            "vc.credential.issued",
            {
                "id": credential_id,
                "issuer": vcs.issuer_of(document),
                "holder": holder,
                "kind": kind,
            },
            actor=vcs.issuer_of(document),
            subject=f"vc:credential:{credential_id}",
        )

    def _list_row(self, conn: Connection, list_id: str, *, lock: bool = False) -> RowMapping:
        s = tables.status_lists
        query = select(s).where(s.c.id == list_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"no status list {list_id}")
        return row

    def _row(self, credential_id: str) -> RowMapping:
        c = tables.credentials
        with self.k.db.read() as conn:
            row = conn.execute(select(c).where(c.c.id == credential_id)).mappings().first()
        if row is None:
            raise NotFound(f"no credential {credential_id}")
        return row

    def _held_by_id(self, credential_id: str) -> Held:
        return _held(self._row(credential_id))


def _held(row: RowMapping) -> Held:
    return Held(
        id=row["id"],
        issuer=row["issuer"],
        holder=row["holder"],
        kind=row["kind"],
        issued_at=row["issued_at"],
        valid_until=row["valid_until"],
        revoked_at=row["revoked_at"],
        credential=json.loads(row["document"]),
    )


def _size_check(document: dict[str, Any]) -> None:
    if len(json.dumps(document)) > DOCUMENT_MAX_BYTES:
        raise CredentialRefused(f"a credential is at most {DOCUMENT_MAX_BYTES} bytes of JSON")
