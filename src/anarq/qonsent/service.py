"""Qonsent: who may do what with which resources, why, and until when.

Deny by default. The owner of a resource holds `admin` on it; everyone else needs a
grant. Grants name a grantee (an identity, a DAO, or "public"), a resource or a
pattern (`qdrive:file:*`), actions, a purpose, a validity window and optionally a
number of uses. Revocation takes effect at the next check.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection, RowMapping

from anarq.kernel import Kernel
from anarq.kernel.db import insert_ignore
from anarq.kernel.errors import AnarqError, BadRequest, Forbidden, NotFound
from anarq.kernel.guard import ACTIONS, Context
from anarq.kernel.ids import new_id
from anarq.kernel.subject import ExportItem, json_item
from anarq.node.service import NodeService
from anarq.qonsent import capabilities, receipts, tables
from anarq.qonsent.capabilities import Capability, CapabilityInvalid
from anarq.qonsent.models import PUBLIC, Decision, Grant, GrantRequest
from anarq.squid.service import SquidService

LIST_LIMIT = 500

# `check` is the hottest path of the node: its statements are built once (a statement
# rebuilt per call costs SQLAlchemy a new cache key and compilation), and read only the
# columns a decision needs, never the receipts.
_OWNER_OF = select(tables.owners.c.owner).where(tables.owners.c.resource == bindparam("resource"))
_g = tables.grants
_LIVE_GRANTS = (
    select(_g.c.id, _g.c.actions, _g.c.max_uses, _g.c.uses, _g.c.expires_at)
    .where(
        _g.c.grantee.in_(bindparam("grantees", expanding=True)),
        _g.c.resource.in_(bindparam("patterns", expanding=True)),
        _g.c.revoked_at.is_(None),
        _g.c.starts_at <= bindparam("now"),
        or_(_g.c.expires_at.is_(None), _g.c.expires_at > bindparam("now")),
    )
    .order_by(_g.c.created_at)
)


def covering_patterns(resource: str) -> list[str]:
    """The resource itself and every wildcard pattern that covers it, most specific first.

    `qdrive:file:abc` → `qdrive:file:abc`, `qdrive:file:*`, `qdrive:*`, `*`.
    """
    parts = resource.split(":")
    patterns = [resource]
    if parts[-1] == "*":
        parts = parts[:-1]
    else:
        parts = parts[:-1]
        patterns.append(":".join([*parts, "*"]))
    while parts:
        parts = parts[:-1]
        patterns.append(":".join([*parts, "*"]) if parts else "*")
    return list(dict.fromkeys(patterns))


def _allows(actions: str, action: str) -> bool:
    held = actions.split(",")
    return action in held or "admin" in held


class QonsentService:
    erase_order = 50

    def __init__(self, kernel: Kernel, node: NodeService, squid: SquidService) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid

    # Ownership ---------------------------------------------------------------------

    def register_owner(self, tx: Connection, resource: str, owner: str) -> None:
        """Record `owner` as the owner of a new resource, inside the creating transaction."""
        created = insert_ignore(
            tx,
            tables.owners,
            {"resource": resource, "owner": owner, "created_at": self.k.clock.now()},
        )
        if not created and self.owner_of(resource, conn=tx) != owner:
            raise Forbidden(f"{resource} already belongs to someone else")

    def owner_of(self, resource: str, *, conn: Connection | None = None) -> str | None:
        query = select(tables.owners.c.owner).where(tables.owners.c.resource == resource)
        if conn is not None:
            return conn.execute(query).scalar_one_or_none()
        with self.k.db.read() as read:
            return read.execute(query).scalar_one_or_none()

    # Checking ---------------------------------------------------------------------------

    def check(self, actor: str, action: str, resource: str, *, consume: bool = False) -> Decision:
        """May `actor` do `action` on `resource`? Says which rule decided.

        With `consume`, a grant limited in uses has one use taken (atomically).
        """
        if action not in ACTIONS:
            raise BadRequest(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
        now = self.k.clock.now()
        with self.k.db.read() as conn:
            owner = conn.execute(_OWNER_OF, {"resource": resource}).scalar_one_or_none()
            if owner is not None and owner == actor:
                return Decision(
                    allowed=True, actor=actor, action=action, resource=resource, reason="owner"
                )
            candidates = list(self._live_grants(conn, actor, resource, now))
        for grant in candidates:
            if not _allows(grant["actions"], action):
                continue
            if grant["max_uses"] is not None and not self._take_use(grant, consume):
                continue
            return Decision(
                allowed=True,
                actor=actor,
                action=action,
                resource=resource,
                reason="grant",
                grant_id=grant["id"],
            )
        return Decision(
            allowed=False,
            actor=actor,
            action=action,
            resource=resource,
            reason="no owner rights and no live grant allows it",
        )

    def _live_grants(
        self, conn: Connection, actor: str, resource: str, now: datetime
    ) -> Iterator[RowMapping]:
        rows = conn.execute(
            _LIVE_GRANTS,
            {"grantees": [actor, PUBLIC], "patterns": covering_patterns(resource), "now": now},
        ).mappings()
        yield from rows

    def _take_use(self, grant: RowMapping, consume: bool) -> bool:
        if grant["uses"] >= grant["max_uses"]:
            return False
        if not consume:
            return True
        g = tables.grants
        with self.k.db.write() as tx:
            taken = tx.execute(
                update(g)
                .where(g.c.id == grant["id"], g.c.uses < g.c.max_uses)
                .values(uses=g.c.uses + 1)
                .returning(g.c.id)
            ).first()
        return taken is not None

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """The kernel guard's policy: identities and the public act through Qonsent.

        A verified capability carried by the request counts like a grant.
        """
        now = self.k.clock.now()
        for capability in ctx.capabilities:
            if (
                isinstance(capability, Capability)
                and capability.holder == ctx.actor.id
                and capability.expires_at > now
                and capability.resource in covering_patterns(resource)
                and ("admin" in capability.actions or action in capability.actions)
            ):
                return True
        actor = ctx.actor.id if ctx.actor.authenticated else PUBLIC
        return self.check(actor, action, resource, consume=True).allowed

    # Capabilities ------------------------------------------------------------------------

    def verify_capability(self, chain: list[dict[str, Any]], holder: str) -> Capability:
        """Check a delegation chain end to end; what it lets `holder` do, or refused.

        The first link must be issued by the grantee of a live grant that includes
        `share`; every link is signed by the previous link's audience, never widens
        the resource, the actions or the expiry, and none is revoked.
        """
        now = self.k.clock.now()
        digests: list[str] = []
        issuer, resource, actions, expires = "", "", frozenset[str](), now
        grant: Grant | None = None
        for position, token in enumerate(chain):
            iss, aud, parent, t_resource, t_actions, t_exp = capabilities.fields(token)
            if position == 0:
                if not parent.startswith("grant:"):
                    raise CapabilityInvalid("the first link must name its grant (grant:<id>)")
                try:
                    grant = self.get(parent.removeprefix("grant:"))
                except NotFound:
                    raise CapabilityInvalid("the chain's grant does not exist") from None
                live = (
                    grant.revoked_at is None
                    and grant.starts_at <= now
                    and (grant.expires_at is None or grant.expires_at > now)
                )
                if not live or grant.grantee != iss:
                    raise CapabilityInvalid("the chain's grant is not live, or not the issuer's")
                issuer, resource = grant.grantee, grant.resource
                actions = frozenset(grant.actions)
                expires = grant.expires_at or t_exp
            else:
                if parent != f"token:{digests[-1]}" or iss != issuer:
                    raise CapabilityInvalid("a link does not follow the one before it")
            if "share" not in actions and "admin" not in actions:
                raise CapabilityInvalid(f"{iss} may not delegate: its rights lack share")
            if resource not in covering_patterns(t_resource):
                raise CapabilityInvalid(f"link widens the resource beyond {resource}")
            if "admin" not in actions and not t_actions <= actions:
                raise CapabilityInvalid("link widens the actions beyond its parent's")
            if "admin" in t_actions and "admin" not in actions:
                raise CapabilityInvalid("only admin may delegate admin")
            if t_exp > expires:
                raise CapabilityInvalid("link outlives its parent")
            capabilities.check_signature(token, self.squid.current_key(iss))
            digests.append(capabilities.digest(token))
            issuer, resource, actions, expires = aud, t_resource, t_actions, t_exp
        if expires <= now:
            raise CapabilityInvalid("the capability has expired")
        if issuer != holder:
            raise CapabilityInvalid("the capability is for another identity")
        r = tables.revoked_capabilities
        with self.k.db.read() as conn:
            revoked = conn.execute(select(r.c.digest).where(r.c.digest.in_(digests))).first()
        if revoked is not None:
            raise CapabilityInvalid("a link of this capability has been revoked")
        assert grant is not None
        return Capability(
            holder=holder,
            resource=resource,
            actions=actions,
            expires_at=expires,
            grant_id=grant.id,
            chain_digests=tuple(digests),
        )

    def revoke_capability(self, ctx: Context, chain: list[dict[str, Any]], link: int) -> str:
        """Revoke link `link` of a chain (and so every link below it).

        Its issuer, anyone above it in the chain, the grant's grantor, or the operator may.
        """
        if not 0 <= link < len(chain):
            raise BadRequest(f"link must be 0 to {len(chain) - 1}")
        issuers = [capabilities.fields(token)[0] for token in chain[: link + 1]]
        first_parent = capabilities.fields(chain[0])[2]
        grantor = None
        if first_parent.startswith("grant:"):
            with contextlib.suppress(NotFound):
                grantor = self.get(first_parent.removeprefix("grant:")).grantor
        allowed = ctx.actor.kind in ("operator", "node") or ctx.actor.id in (*issuers, grantor)
        if not allowed:
            self.k.guard.record(ctx, "share", "qonsent:capability:*", "deny")
            raise Forbidden("only the link's issuer, those above it, or the grantor may revoke it")
        target = capabilities.digest(chain[link])
        with self.k.db.write() as tx:
            insert_ignore(
                tx,
                tables.revoked_capabilities,
                {"digest": target, "revoked_by": ctx.actor.id, "revoked_at": self.k.clock.now()},
            )
            self.k.guard.record(ctx, "share", f"qonsent:capability:{target}", "allow", tx)
        return target

    # Granting -----------------------------------------------------------------------------

    def grant(self, ctx: Context, request: GrantRequest) -> Grant:
        """Grant `request.actions` on `request.resource` to `request.grantee`.

        Allowed to whoever holds `admin` on the resource (its owner, the operator) and,
        attenuated, to holders of `share`: they may pass on only actions they hold
        themselves, never `admin`, and never beyond their own grant's expiry.
        """
        self._require_right_to_grant(ctx, request)
        self.node.identity.signing_key()  # never first created inside the write below
        with self.k.change(ctx, "share", request.resource) as tx:
            return self._insert_grant(tx, ctx, request)

    def grant_in(self, tx: Connection, ctx: Context, request: GrantRequest) -> Grant:
        """`grant`, inside the caller's transaction: the grant exists only if that commits
        (a sale's delivery, in the transaction that pays for it). Same rules, same audit;
        the node's key must exist already (it signs the receipt)."""
        try:
            self._require_right_to_grant(ctx, request)
            self.k.guard.authorize(ctx, "share", request.resource)
        except AnarqError:
            # In the caller's transaction (a write on another connection would wait for it):
            # the refusal stands if the caller's change does.
            self.k.guard.record(ctx, "share", request.resource, "deny", tx)
            raise
        grant = self._insert_grant(tx, ctx, request)
        self.k.guard.record(ctx, "share", request.resource, "allow", tx)
        return grant

    def _insert_grant(self, tx: Connection, ctx: Context, request: GrantRequest) -> Grant:
        now = self.k.clock.now()
        starts_at = request.starts_at or now
        if request.expires_at is not None and request.expires_at <= starts_at:
            raise BadRequest("expires_at must be after starts_at")
        grant_id = new_id()
        row = {
            "id": grant_id,
            "grantor": ctx.actor.id,
            "grantee": request.grantee,
            "resource": request.resource,
            "actions": ",".join(request.actions),
            "purpose": request.purpose,
            "starts_at": starts_at,
            "expires_at": request.expires_at,
            "max_uses": request.max_uses,
            "uses": 0,
            "conditions": {},
            "created_at": now,
        }
        grant = _grant({**row, "revoked_at": None})
        receipt = receipts.issue(grant, self.node.identity.did, self.node.identity.signing_key())
        row["receipt"] = json.dumps(receipt, separators=(",", ":"))
        tx.execute(insert(tables.grants).values(**row))
        # The receipt's digest in the audit log makes the receipt provable there.
        self.k.guard.record(
            ctx, "share", f"qonsent:receipt:{receipts.digest(receipt)}", "allow", tx
        )
        self.k.bus.publish(
            tx,
            "qonsent.grant.created",
            {
                "grant_id": grant_id,
                "grantee": request.grantee,
                "resource": request.resource,
                "actions": request.actions,
            },
            actor=ctx.actor.id,
            subject=f"qonsent:grant:{grant_id}",
            correlation_id=ctx.correlation_id or ctx.request_id,
        )
        return grant

    def _require_right_to_grant(self, ctx: Context, request: GrantRequest) -> None:
        if ctx.actor.kind in ("operator", "node"):
            return
        if not ctx.actor.authenticated:
            from anarq.kernel.errors import Unauthenticated

            raise Unauthenticated("granting needs an authenticated caller")
        decision = self.check(ctx.actor.id, "admin", request.resource)
        if decision.allowed:
            return
        if "admin" in request.actions:
            raise Forbidden(f"only an admin of {request.resource} may grant admin")
        now = self.k.clock.now()
        with self.k.db.read() as conn:
            held = [
                g
                for g in self._live_grants(conn, ctx.actor.id, request.resource, now)
                if _allows(g["actions"], "share")
            ]
        for grant in held:
            actions = set(grant["actions"].split(","))
            within_actions = "admin" in actions or set(request.actions) <= actions
            within_time = grant["expires_at"] is None or (
                request.expires_at is not None and request.expires_at <= grant["expires_at"]
            )
            if within_actions and within_time:
                return
        raise Forbidden(
            f"{ctx.actor.id} holds no right to share {', '.join(request.actions)} "
            f"on {request.resource} until {request.expires_at or 'forever'}"
        )

    def revoke(self, ctx: Context, grant_id: str) -> Grant:
        """Revoke a grant now. Its grantor, an admin of its resource, or the operator may."""
        grant = self._revocable(ctx, grant_id, None)
        with self.k.db.write() as tx:
            self._revoke_row(tx, ctx, grant)
        return self.get(grant_id)

    def revoke_in(self, tx: Connection, ctx: Context, grant_id: str) -> None:
        """`revoke`, inside the caller's transaction (a DAO vote's execution). A refusal is
        recorded in that transaction: it stands only if the caller's change does."""
        self._revoke_row(tx, ctx, self._revocable(ctx, grant_id, tx))

    def _revocable(self, ctx: Context, grant_id: str, tx: Connection | None) -> Grant:
        grant = self.get(grant_id)
        if grant.revoked_at is not None:
            raise NotFound(f"grant {grant_id} is already revoked")
        allowed = ctx.actor.kind in ("operator", "node") or ctx.actor.id == grant.grantor
        if not allowed and ctx.actor.authenticated:
            allowed = self.check(ctx.actor.id, "admin", grant.resource).allowed
        if not allowed:
            self.k.guard.record(ctx, "share", grant.resource, "deny", tx)
            raise Forbidden(f"{ctx.actor.id} may not revoke grant {grant_id}")
        return grant

    def _revoke_row(self, tx: Connection, ctx: Context, grant: Grant) -> None:
        g = tables.grants
        revoked = tx.execute(
            update(g)
            .where(g.c.id == grant.id, g.c.revoked_at.is_(None))
            .values(revoked_at=self.k.clock.now())
        ).rowcount
        if revoked != 1:
            raise NotFound(f"grant {grant.id} is already revoked")
        self.k.bus.publish(
            tx,
            "qonsent.grant.revoked",
            {"grant_id": grant.id, "resource": grant.resource},
            actor=ctx.actor.id,
            subject=f"qonsent:grant:{grant.id}",
            correlation_id=ctx.correlation_id or ctx.request_id,
        )
        self.k.guard.record(ctx, "share", grant.resource, "allow", tx)

    def receipt(self, ctx: Context, grant_id: str) -> dict[str, Any]:
        """The signed consent receipt of a grant: for its grantor, grantee and the operator."""
        g = tables.grants
        with self.k.db.read() as conn:
            row = conn.execute(
                select(g.c.grantor, g.c.grantee, g.c.resource, g.c.receipt).where(
                    g.c.id == grant_id
                )
            ).first()
        allowed = row is not None and (
            ctx.actor.kind in ("operator", "node") or ctx.actor.id in (row.grantor, row.grantee)
        )
        if row is None or not allowed or row.receipt is None:
            raise NotFound(f"no receipt for grant {grant_id}")
        document: dict[str, Any] = json.loads(row.receipt)
        return document

    # Listing ------------------------------------------------------------------------------

    def get(self, grant_id: str) -> Grant:
        with self.k.db.read() as conn:
            row = (
                conn.execute(select(tables.grants).where(tables.grants.c.id == grant_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no grant {grant_id}")
        return _grant(row)

    def who_can(self, ctx: Context, resource: str) -> list[Grant]:
        """Every live grant that reaches `resource`. For its admins and the operator."""
        self._require_admin_or_self(ctx, resource=resource)
        now = self.k.clock.now()
        g = tables.grants
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(g)
                .where(
                    g.c.resource.in_(covering_patterns(resource)),
                    g.c.revoked_at.is_(None),
                    or_(g.c.expires_at.is_(None), g.c.expires_at > now),
                )
                .order_by(g.c.created_at)
                .limit(LIST_LIMIT)
            ).mappings()
            return [_grant(row) for row in rows]

    def grantees(self, resource: str) -> list[str]:
        """Who holds a live grant on exactly `resource` (for modules that wrap keys)."""
        now = self.k.clock.now()
        g = tables.grants
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(g.c.grantee)
                .where(
                    g.c.resource == resource,
                    g.c.revoked_at.is_(None),
                    or_(g.c.expires_at.is_(None), g.c.expires_at > now),
                )
                .distinct()
            ).scalars()
            return sorted(rows)

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        g, o = tables.grants, tables.owners
        with self.k.db.read() as conn:
            given = [
                _grant(r).model_dump(mode="json")
                for r in conn.execute(
                    select(g).where(g.c.grantor == did).order_by(g.c.created_at)
                ).mappings()
            ]
            received = [
                _grant(r).model_dump(mode="json")
                for r in conn.execute(
                    select(g).where(g.c.grantee == did).order_by(g.c.created_at)
                ).mappings()
            ]
            owned = [dict(r) for r in conn.execute(select(o).where(o.c.owner == did)).mappings()]
        yield json_item("grants-given.json", given)
        yield json_item("grants-received.json", received)
        yield json_item("owned-resources.json", owned)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Revoke every live grant the person gave or holds (records stay, as revoked)."""
        g = tables.grants
        now = self.k.clock.now()
        with self.k.change(ctx, "delete", f"qonsent:subject:{did}") as tx:
            revoked = tx.execute(
                update(g)
                .where(or_(g.c.grantor == did, g.c.grantee == did), g.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
        return {"grants_revoked": revoked}

    def reach(self, actor: str, action: str) -> list[str]:
        """Every resource or pattern `actor` may do `action` on through a live grant, its
        own or the public's (ownership aside). For modules that filter many resources at
        once, such as search. Grants limited in uses are left out: a filter cannot take
        a use for each thing it lets through.
        """
        if action not in ACTIONS:
            raise BadRequest(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
        now = self.k.clock.now()
        g = tables.grants
        grantees = [PUBLIC] if actor == PUBLIC else [actor, PUBLIC]
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(g.c.resource, g.c.actions).where(
                    g.c.grantee.in_(grantees),
                    g.c.revoked_at.is_(None),
                    g.c.max_uses.is_(None),
                    g.c.starts_at <= now,
                    or_(g.c.expires_at.is_(None), g.c.expires_at > now),
                )
            ).all()
        return sorted({row.resource for row in rows if _allows(row.actions, action)})

    def what_can(self, ctx: Context, actor: str) -> list[Grant]:
        """Every live grant held by `actor`. For the actor itself and the operator."""
        self._require_admin_or_self(ctx, actor=actor)
        now = self.k.clock.now()
        g = tables.grants
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(g)
                .where(
                    g.c.grantee == actor,
                    g.c.revoked_at.is_(None),
                    or_(g.c.expires_at.is_(None), g.c.expires_at > now),
                )
                .order_by(g.c.created_at)
                .limit(LIST_LIMIT)
            ).mappings()
            return [_grant(row) for row in rows]

    def granted_by(self, ctx: Context) -> list[Grant]:
        """Grants the caller made (what I expose), newest first."""
        g = tables.grants
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(g)
                .where(g.c.grantor == ctx.actor.id)
                .order_by(g.c.created_at.desc())
                .limit(LIST_LIMIT)
            ).mappings()
            return [_grant(row) for row in rows]

    def _require_admin_or_self(
        self, ctx: Context, *, resource: str | None = None, actor: str | None = None
    ) -> None:
        if ctx.actor.kind in ("operator", "node"):
            return
        if actor is not None and ctx.actor.id == actor:
            return
        if (
            resource is not None
            and ctx.actor.authenticated
            and self.check(ctx.actor.id, "admin", resource).allowed
        ):
            return
        self.k.guard.record(ctx, "admin", resource or f"qonsent:actor:{actor}", "deny")
        if not ctx.actor.authenticated:
            from anarq.kernel.errors import Unauthenticated

            raise Unauthenticated("listing grants needs an authenticated caller")
        raise Forbidden("only admins of a resource, or the identity itself, may list its grants")


def _grant(row: RowMapping | dict[str, Any]) -> Grant:
    values = dict(row)
    values.pop("receipt", None)
    values["actions"] = values["actions"].split(",")
    return Grant(**values)
