"""sQuid: identities owned by their keys, and the proof that a request comes from one.

A root identity is a `did:key` (Ed25519) created on the user's device; registering it
with the node is a request signed by that key. Every authenticated request is signed
with RFC 9421 HTTP Message Signatures (Ed25519, and ML-DSA-65 beside it for hybrid
identities; see `httpsig`) over method, authority, path, query and (with a body) its
RFC 9530 `Content-Digest`, with `created` and a single-use `nonce`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.db import insert_ignore
from anarq.kernel.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthenticated
from anarq.kernel.guard import Actor, Context, SignedRequest
from anarq.kernel.subject import ExportItem, json_item
from anarq.node.service import NodeService
from anarq.qlock import InvalidKey, RecipientKey, VerifyKey, decode_signature, verify
from anarq.squid import didkey, httpsig, tables
from anarq.squid.models import (
    AidLink,
    Challenge,
    Identity,
    IdentityType,
    Registration,
    Resolution,
    Rotation,
    Session,
    SessionRequest,
    SubIdentityRequest,
)

# A signature older than this, or this far in the future, is refused.
SIGNATURE_WINDOW = timedelta(seconds=120)
NONCE_MAX_CHARS = 64
NONCE_MIN_CHARS = 16
NONCE_PRUNE_EVERY_SECONDS = 30.0


class SquidService:
    erase_order = 100  # the identity goes last: the other erasures act in its name

    def __init__(self, kernel: Kernel, node: NodeService) -> None:
        self.k = kernel
        self.node = node
        self._pruned_at = 0.0

    # Keys ------------------------------------------------------------------------------

    def current_key(self, did: str) -> VerifyKey:
        """The key that signs for `did` now: the registered one, else the did:key's own."""
        row = self._row(did)
        if row is not None:
            if row["revoked_at"] is not None:
                raise Unauthenticated(f"{did} has been revoked")
            return VerifyKey.from_bytes(base64.b64decode(row["public_key"]))
        return VerifyKey.from_ed25519(didkey.decode(did).public_key)

    def recipient_key(self, did: str) -> RecipientKey:
        """The key to seal data to for `did`: its did:key's X25519 key-agreement key."""
        try:
            return self.current_key(did).derive_recipient_key()
        except (InvalidKey, ValueError, Unauthenticated) as exc:
            raise BadRequest(f"{did!r} is not a did:key this node can seal to: {exc}") from None

    def _row(self, did: str, conn: Connection | None = None) -> RowMapping | None:
        query = select(tables.identities).where(tables.identities.c.did == did)
        if conn is not None:
            return conn.execute(query).mappings().first()
        with self.k.db.read() as read:
            return read.execute(query).mappings().first()

    # Authentication ------------------------------------------------------------------------

    def authenticate_signed(self, request: SignedRequest) -> Actor:
        """The identity that signed `request`; `Unauthenticated` saying why if none did."""
        try:
            verified = httpsig.verify_request(
                httpsig.RequestView(request.method, request.url, request.headers),
                request.body,
                self.current_key,
                max_age=SIGNATURE_WINDOW,
            )
        except httpsig.SignatureRefused as exc:
            raise Unauthenticated(f"request signature refused: {exc}") from None
        now = self.k.clock.now()
        if verified.created > now + SIGNATURE_WINDOW:
            raise Unauthenticated("request signature is dated in the future")
        if not NONCE_MIN_CHARS <= len(verified.nonce) <= NONCE_MAX_CHARS:
            raise Unauthenticated(
                f"signed requests need a nonce of {NONCE_MIN_CHARS} to {NONCE_MAX_CHARS} characters"
            )
        self._spend_nonce(verified.nonce, verified.did, now)
        return Actor(id=verified.did, kind="identity")

    def _spend_nonce(self, nonce: str, did: str, now: datetime) -> None:
        with self.k.db.write() as tx:
            # Pruning spent nonces is housekeeping, not part of every request.
            if time.monotonic() - self._pruned_at > NONCE_PRUNE_EVERY_SECONDS:
                tx.execute(delete(tables.nonces).where(tables.nonces.c.expires_at < now))
                self._pruned_at = time.monotonic()
            fresh = insert_ignore(
                tx,
                tables.nonces,
                {"nonce": nonce, "did": did, "expires_at": now + 2 * SIGNATURE_WINDOW},
            )
        if not fresh:
            raise Unauthenticated("request nonce was already used (replay refused)")

    # Identities --------------------------------------------------------------------------

    def self_policy(self, ctx: Context, action: str, resource: str) -> bool:
        """An identity administers its own identity record (a guard policy)."""
        return ctx.actor.kind == "identity" and resource == f"squid:identity:{ctx.actor.id}"

    def register(self, ctx: Context, registration: Registration) -> Identity:
        """Register the calling did:key as a root identity of this node.

        The request must be signed by the identity itself; a hybrid key, if given,
        must carry the same Ed25519 key as the DID.
        """
        if ctx.actor.kind != "identity":
            raise Unauthenticated("register with a request signed by the identity's own key")
        did = ctx.actor.id
        ed25519 = didkey.decode(did).public_key
        key = VerifyKey.from_ed25519(ed25519)
        if registration.public_key is not None:
            try:
                key = VerifyKey.from_bytes(base64.b64decode(registration.public_key, validate=True))
            except (InvalidKey, ValueError) as exc:
                raise BadRequest(f"public_key is not a Qlock public key: {exc}") from None
            if key.ed25519_bytes() != ed25519:
                raise BadRequest("public_key's Ed25519 part is not the key the DID names")
        now = self.k.clock.now()
        with self.k.change(ctx, "write", f"squid:identity:{did}") as tx:
            created = insert_ignore(
                tx,
                tables.identities,
                {
                    "did": did,
                    "name": registration.name,
                    "type": IdentityType.ROOT.value,
                    "status": "active",
                    "parent_did": None,
                    "next_key_hash": registration.next_key_hash,
                    "verification_level": 0,
                    "governance": "self",
                    "privacy": "public",
                    "public_key": base64.b64encode(key.to_bytes()).decode(),
                    "key_id": key.key_id,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if not created:
                raise Conflict(f"{did} is already registered")
            self._key_event(tx, did, 0, "create", key, registration.next_key_hash, ctx)
            self.k.bus.publish(
                tx,
                "squid.identity.created",
                {"did": did, "type": "ROOT"},
                actor=did,
                subject=f"squid:identity:{did}",
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        return self.identity(did)

    def rotate(self, ctx: Context, did: str, rotation: Rotation) -> Identity:
        """Move `did` to its pre-committed next key. Signed by the current key.

        The new key must hash to the commitment made at registration (or at the last
        rotation), and commits in turn to the key after it.
        """
        if ctx.actor.id != did:
            raise Forbidden("an identity rotates its own keys, signing with its current key")
        try:
            new_key = VerifyKey.from_bytes(base64.b64decode(rotation.new_public_key, validate=True))
        except (InvalidKey, ValueError) as exc:
            raise BadRequest(f"new_public_key is not a Qlock public key: {exc}") from None
        i = tables.identities
        with self.k.change(ctx, "write", f"squid:identity:{did}") as tx:
            row = self._row(did, tx)
            if row is None or row["revoked_at"] is not None:
                raise NotFound(f"{did} is not an active identity on this node")
            committed = row["next_key_hash"]
            if committed is None:
                raise Conflict(f"{did} committed to no next key, so it cannot rotate")
            if hashlib.sha256(new_key.to_bytes()).hexdigest() != committed:
                raise Forbidden("the new key is not the one committed to at the last rotation")
            tx.execute(
                update(i)
                .where(i.c.did == did)
                .values(
                    public_key=base64.b64encode(new_key.to_bytes()).decode(),
                    key_id=new_key.key_id,
                    next_key_hash=rotation.next_key_hash,
                    updated_at=self.k.clock.now(),
                )
            )
            seq = self._next_seq(tx, did)
            self._key_event(tx, did, seq, "rotate", new_key, rotation.next_key_hash, ctx)
            self.k.bus.publish(
                tx,
                "squid.identity.rotated",
                {"did": did, "key_id": new_key.key_id},
                actor=did,
                subject=f"squid:identity:{did}",
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        return self.identity(did)

    def revoke(self, ctx: Context, did: str) -> Identity:
        """Revoke an identity: its signatures are refused from now on. Itself or the operator."""
        if ctx.actor.id != did and ctx.actor.kind not in ("operator", "node"):
            raise Forbidden("only the identity itself or the node's operator may revoke it")
        i = tables.identities
        with self.k.change(ctx, "delete", f"squid:identity:{did}") as tx:
            row = self._row(did, tx)
            if row is None or row["revoked_at"] is not None:
                raise NotFound(f"{did} is not an active identity on this node")
            now = self.k.clock.now()
            tx.execute(
                update(i)
                .where(i.c.did == did)
                .values(status="revoked", revoked_at=now, updated_at=now)
            )
            key = VerifyKey.from_bytes(base64.b64decode(row["public_key"]))
            self._key_event(tx, did, self._next_seq(tx, did), "revoke", key, None, ctx)
            self.k.bus.publish(
                tx,
                "squid.identity.revoked",
                {"did": did},
                actor=ctx.actor.id,
                subject=f"squid:identity:{did}",
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        return self.identity(did)

    def _key_event(
        self,
        tx: Connection,
        did: str,
        seq: int,
        kind: str,
        key: VerifyKey,
        next_key_hash: str | None,
        ctx: Context,
    ) -> None:
        tx.execute(
            insert(tables.key_events).values(
                did=did,
                seq=seq,
                kind=kind,
                public_key=base64.b64encode(key.to_bytes()).decode(),
                next_key_hash=next_key_hash,
                request_id=ctx.request_id[:64],
                time=self.k.clock.now(),
            )
        )

    def _next_seq(self, tx: Connection, did: str) -> int:
        e = tables.key_events
        latest = tx.execute(select(func.max(e.c.seq)).where(e.c.did == did)).scalar_one_or_none()
        return int(latest if latest is not None else -1) + 1

    # Browser sessions ----------------------------------------------------------------

    # Data-subject requests -----------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        i, e, ss = tables.identities, tables.key_events, tables.sessions
        with self.k.db.read() as conn:
            identity = conn.execute(select(i).where(i.c.did == did)).mappings().first()
            events = conn.execute(select(e).where(e.c.did == did).order_by(e.c.seq)).mappings()
            history = [dict(row) for row in events]
            subs = [
                dict(r) for r in conn.execute(select(i).where(i.c.parent_did == did)).mappings()
            ]
            sessions = [
                {k: row[k] for k in ("created_at", "expires_at", "ended_at")}
                for row in conn.execute(select(ss).where(ss.c.did == did)).mappings()
            ]
        yield json_item("identity.json", dict(identity) if identity else None)
        yield json_item("key-events.json", history)
        yield json_item("sub-identities.json", subs)
        yield json_item("sessions.json", sessions)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Revoke the identity and its sub-identities, drop their names, end sessions."""
        i, ss = tables.identities, tables.sessions
        now = self.k.clock.now()
        with self.k.change(ctx, "delete", f"squid:identity:{did}") as tx:
            rows = tx.execute(
                update(i)
                .where((i.c.did == did) | (i.c.parent_did == did))
                .values(
                    name="erased",
                    status="revoked",
                    link_commitment=None,
                    revoked_at=func.coalesce(i.c.revoked_at, now),
                    updated_at=now,
                )
            ).rowcount
            ended = tx.execute(
                update(ss).where(ss.c.did == did, ss.c.ended_at.is_(None)).values(ended_at=now)
            ).rowcount
            self.k.bus.publish(
                tx,
                "squid.identity.revoked",
                {"did": did, "erased": True},
                actor=ctx.actor.id,
                subject=f"squid:identity:{did}",
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        return {"identities": rows, "sessions": ended}

    def challenge(self) -> Challenge:
        """A challenge for a browser sign-in, valid for a few minutes.

        Stateless: the challenge carries its expiry and a MAC under a key derived from
        the node key, so asking for one writes nothing (anyone may ask) and any worker
        can check it. It is spent, once, when a session is opened with it.
        """
        expires = self.k.clock.now() + CHALLENGE_LIFETIME
        body = f"{int(expires.timestamp())}.{secrets.token_urlsafe(18)}"
        value = f"{body}.{self._challenge_mac(body)}"
        return Challenge(challenge=value, expires_at=expires, sign=challenge_text(value))

    def _challenge_mac(self, body: str) -> str:
        key = hashlib.sha256(b"anarq-challenge/v1" + self.node.identity.signing_key().to_bytes())
        mac = hmac.new(key.digest(), body.encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def open_session(self, request: SessionRequest) -> Session:
        """Exchange a signed challenge for a short-lived session token.

        The challenge must be this node's, unexpired and unused; the signature is
        checked against the identity's current key. No private key travels.
        """
        now = self.k.clock.now()
        body, _, mac = request.challenge.rpartition(".")
        expiry = body.partition(".")[0]
        if (
            not body
            or not expiry.isdigit()
            or not hmac.compare_digest(mac, self._challenge_mac(body))
            or int(expiry) < now.timestamp()
        ):
            raise Unauthenticated("unknown or expired challenge; ask for a new one")
        try:
            verify(
                self.current_key(request.did),
                challenge_text(request.challenge),
                decode_signature(request.signature),
            )
        except Unauthenticated:
            raise
        except Exception:
            raise Unauthenticated("the challenge was not signed by this identity's key") from None
        self._spend_nonce(
            hashlib.sha256(request.challenge.encode()).hexdigest()[:64], request.did, now
        )
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = now + SESSION_LIFETIME
        with self.k.db.write() as tx:
            tx.execute(
                insert(tables.sessions).values(
                    token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                    did=request.did,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return Session(token=token, did=request.did, expires_at=expires)

    def authenticate_bearer(self, token: str) -> Actor | None:
        """The identity behind a live session token, else None (a gateway authenticator)."""
        if not token.startswith(SESSION_PREFIX):
            return None
        s = tables.sessions
        with self.k.db.read() as conn:
            did = conn.execute(
                select(s.c.did).where(
                    s.c.token_sha256 == hashlib.sha256(token.encode()).hexdigest(),
                    s.c.ended_at.is_(None),
                    s.c.expires_at > self.k.clock.now(),
                )
            ).scalar_one_or_none()
        if did is None:
            return None
        row = self._row(did)
        if row is not None and row["revoked_at"] is not None:
            return None
        return Actor(id=did, kind="identity")

    def end_session(self, token: str) -> None:
        """Log out: the token stops working at once."""
        s = tables.sessions
        with self.k.db.write() as tx:
            tx.execute(
                update(s)
                .where(
                    s.c.token_sha256 == hashlib.sha256(token.encode()).hexdigest(),
                    s.c.ended_at.is_(None),
                )
                .values(ended_at=self.k.clock.now())
            )

    # Sub-identities ------------------------------------------------------------------

    def create_sub(self, ctx: Context, root: str, request: SubIdentityRequest) -> Identity:
        """A root identity creates a sub-identity of type DAO, ENTERPRISE, CONSENTIDA or AID.

        Signed by the root; the sub's own key signs its consent (`proof`). An AID is
        stored with no parent, only a commitment the root can open to prove the link.
        Each root holds at most `max_sub_identities`.
        """
        if ctx.actor.id != root:
            raise Forbidden("a root identity creates its own sub-identities, signing as itself")
        if request.type is IdentityType.ROOT:
            raise BadRequest("a sub-identity is DAO, ENTERPRISE, CONSENTIDA or AID, not ROOT")
        anonymous = request.type is IdentityType.AID
        if anonymous != (request.link_commitment is not None):
            raise BadRequest("link_commitment is required for an AID and refused for the others")
        sub_key = VerifyKey.from_ed25519(didkey.decode(request.did).public_key)
        try:
            verify(sub_key, sub_statement(root, request.did), decode_signature(request.proof))
        except Exception:
            raise BadRequest(
                "proof is not the sub-identity key's signature of its consent"
            ) from None
        governance, privacy = SUB_RULES[request.type]
        i, counts = tables.identities, tables.aid_counts
        now = self.k.clock.now()
        with self.k.change(ctx, "write", f"squid:identity:{root}") as tx:
            parent = self._row(root, tx)
            if parent is None or parent["revoked_at"] is not None or parent["type"] != "ROOT":
                raise NotFound(f"{root} is not an active root identity on this node")
            linked = tx.execute(
                select(func.count()).select_from(i).where(i.c.parent_did == root)
            ).scalar_one()
            hidden = tx.execute(
                select(counts.c.count).where(counts.c.root_did == root)
            ).scalar_one_or_none()
            if int(linked) + int(hidden or 0) >= self.k.settings.max_sub_identities:
                raise Conflict(
                    f"{root} already holds {self.k.settings.max_sub_identities} "
                    "sub-identities, the most this node allows"
                )
            created = insert_ignore(
                tx,
                i,
                {
                    "did": request.did,
                    "name": request.name,
                    "type": request.type.value,
                    "status": "active",
                    "parent_did": None if anonymous else root,
                    "link_commitment": request.link_commitment,
                    "verification_level": 0,
                    "governance": governance,
                    "privacy": privacy,
                    "public_key": base64.b64encode(sub_key.to_bytes()).decode(),
                    "key_id": sub_key.key_id,
                    "next_key_hash": None,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if not created:
                raise Conflict(f"{request.did} is already registered")
            if anonymous and not insert_ignore(tx, counts, {"root_did": root, "count": 1}):
                tx.execute(
                    update(counts).where(counts.c.root_did == root).values(count=counts.c.count + 1)
                )
            self._key_event(tx, request.did, 0, "create", sub_key, None, ctx)
            self.k.bus.publish(
                tx,
                "squid.identity.created",
                {"did": request.did, "type": request.type.value},
                # An AID's creation must not name its root, not even in an event.
                actor=request.did if anonymous else root,
                subject=f"squid:identity:{request.did}",
            )
        return self.identity(request.did)

    def subs(self, ctx: Context, root: str) -> list[Identity]:
        """The sub-identities linked to `root` (never its AIDs). For the root and the operator."""
        if ctx.actor.id != root and ctx.actor.kind not in ("operator", "node"):
            raise Forbidden("only the root itself or the operator lists its sub-identities")
        with self.k.db.read() as conn:
            rows = (
                conn.execute(
                    select(tables.identities.c.did).where(tables.identities.c.parent_did == root)
                )
                .scalars()
                .all()
            )
        return [self.identity(did) for did in rows]

    def name_of(self, did: str) -> str | None:
        """The identity's name, or None if it is not registered here."""
        row = self._row(did)
        return None if row is None else str(row["name"])

    def standing(self, did: str) -> tuple[datetime, str] | None:
        """When the identity was registered here and its status, or None."""
        row = self._row(did)
        return None if row is None else (row["created_at"], str(row["status"]))

    def parent_of(self, did: str) -> str | None:
        """The root of a linked sub-identity (never an AID's), or None."""
        row = self._row(did)
        return None if row is None or row["parent_did"] is None else str(row["parent_did"])

    def linked_subs(self, root: str) -> list[str]:
        """The DIDs of `root`'s active linked sub-identities."""
        i = tables.identities
        with self.k.db.read() as conn:
            return list(
                conn.execute(
                    select(i.c.did).where(i.c.parent_did == root, i.c.status == "active")
                ).scalars()
            )

    def verify_aid_link(self, link: AidLink) -> bool:
        """Does the root's revealed salt open the AID's link commitment?"""
        row = self._row(link.aid)
        if row is None or row["link_commitment"] is None:
            raise NotFound(f"{link.aid} is not an anonymous sub-identity on this node")
        return hmac.compare_digest(aid_commitment(link.root, link.salt), row["link_commitment"])

    def identity(self, did: str) -> Identity:
        row = self._row(did)
        if row is None:
            raise NotFound(f"{did} is not registered on this node")
        with self.k.db.read() as conn:
            rotations = conn.execute(
                select(func.count())
                .select_from(tables.key_events)
                .where(tables.key_events.c.did == did, tables.key_events.c.kind == "rotate")
            ).scalar_one()
        return _identity(row).model_copy(update={"rotations": int(rotations)})

    def resolve(self, did: str) -> Resolution:
        """The DID document (did:key derivation) and this node's record of the identity."""
        document = didkey.resolve(did)
        row = self._row(did)
        return Resolution(
            did_document=document,
            registered=row is not None,
            identity=self.identity(did) if row is not None else None,
        )


SESSION_PREFIX = "anq_ses_"
SESSION_LIFETIME = timedelta(hours=1)
CHALLENGE_LIFETIME = timedelta(minutes=5)
CHALLENGE_CONTEXT = "anarq-sign-in/v1"


def challenge_text(challenge: str) -> bytes:
    """What a browser sign-in signs: a fixed context, so the signature means nothing else."""
    return f"{CHALLENGE_CONTEXT}\n{challenge}".encode()


SUB_STATEMENT = "anarq-sub-identity/v1"
# Type → (governance, default privacy), after MODULES.md: a DAO governs itself by vote
# and is visible to its members; an enterprise and a minor's identity (CONSENTIDA) answer
# to their parent/guardian; an AID is anonymous and governs itself.
SUB_RULES = {
    IdentityType.DAO: ("dao", "dao"),
    IdentityType.ENTERPRISE: ("parent", "public"),
    IdentityType.CONSENTIDA: ("parent", "private"),
    IdentityType.AID: ("self", "anonymous"),
}


def sub_statement(root: str, sub: str) -> bytes:
    """What a sub-identity's key signs to consent to being `root`'s sub-identity."""
    return f"{SUB_STATEMENT}\n{root}\n{sub}".encode()


def aid_commitment(root: str, salt_hex: str) -> str:
    return hashlib.sha256(f"{root}\n{salt_hex}".encode()).hexdigest()


def _identity(row: RowMapping) -> Identity:
    key = VerifyKey.from_bytes(base64.b64decode(row["public_key"]))
    return Identity(
        did=row["did"],
        name=row["name"],
        type=IdentityType(row["type"]),
        status=row["status"],
        parent_did=row["parent_did"],
        verification_level=row["verification_level"],
        governance=row["governance"],
        privacy=row["privacy"],
        key_id=row["key_id"],
        hybrid=key.is_hybrid,
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
