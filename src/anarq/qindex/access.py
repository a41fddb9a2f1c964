"""Which resources a caller may read, as one filter: what search and listings apply.

Checking each candidate with `Kernel.check` would cost a Qonsent lookup per document;
instead the caller's grants are read once (`QonsentService.reach`) and turned into a
WHERE clause: the caller's own documents, resources granted exactly, and everything
under a granted pattern (`qdrive:file:*` covers `qdrive:file:<id>`, as Qonsent's
`covering_patterns` has it). The node's operator and the node itself read everything,
as the guard lets them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, bindparam, false, or_, true

from anarq.kernel.guard import Context
from anarq.qonsent.capabilities import Capability
from anarq.qonsent.models import PUBLIC
from anarq.qonsent.service import QonsentService

# Past this many exactly granted resources, they are written into the statement.
INLINE_EXACT_FROM = 1000


@dataclass(frozen=True)
class Reach:
    everything: bool = False
    owner: str | None = None
    exact: frozenset[str] = frozenset()
    # `qdrive:file:` for the pattern `qdrive:file:*`; "" for `*`.
    prefixes: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, ctx: Context, qonsent: QonsentService, action: str, now: datetime) -> Reach:
        if ctx.actor.kind in ("operator", "node"):
            return cls(everything=True)
        actor = ctx.actor.id if ctx.actor.authenticated else PUBLIC
        granted = set(qonsent.reach(actor, action))
        for capability in ctx.capabilities:
            if (
                isinstance(capability, Capability)
                and capability.holder == ctx.actor.id
                and capability.expires_at > now
                and ("admin" in capability.actions or action in capability.actions)
            ):
                granted.add(capability.resource)
        prefixes = tuple(sorted(p.removesuffix("*") for p in granted if p.endswith("*")))
        if "" in prefixes:
            return cls(everything=True)
        return cls(
            owner=ctx.actor.id if ctx.actor.kind == "identity" else None,
            exact=frozenset(r for r in granted if not r.endswith("*")),
            prefixes=prefixes,
        )

    def covers(self, resource: str, owner: str | None = None) -> bool:
        return (
            self.everything
            or (self.owner is not None and owner == self.owner)
            or resource in self.exact
            or resource.startswith(self.prefixes)
        )

    def where(self, resource: ColumnElement[str], owner: ColumnElement[str]) -> ColumnElement[bool]:
        """The filter on rows with these resource and owner columns."""
        if self.everything:
            return true()
        clauses: list[ColumnElement[bool]] = []
        if self.owner is not None:
            clauses.append(owner == self.owner)
        if self.exact:
            # Many grants would pass SQLite's bound-parameter limit: inline them instead
            # (SQLAlchemy quotes each; resources are Qonsent-validated names anyway).
            values: BindParameter[list[str]] = bindparam(
                "reach_exact",
                sorted(self.exact),
                expanding=True,
                literal_execute=len(self.exact) > INLINE_EXACT_FROM,
            )
            clauses.append(resource.in_(values))
        clauses += [resource.startswith(prefix, autoescape=True) for prefix in self.prefixes]
        return or_(*clauses) if clauses else false()
